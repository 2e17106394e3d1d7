"""Chaos: the bridge is SIGKILLed at random while a procurement is busy; nothing may be lost
or doubled.

    .venv/bin/python bench/chaos.py [--rounds 20] [--database postgres|sqlite] [--seed N]
                                    [--kills-per-round 1]

Run by hand, not in CI. One throwaway Synapse, one fresh database (a PostgreSQL database
created and dropped here, or a SQLite file), one callback endpoint standing in for the
procurement system (it verifies every signature and records every POST), and the bridge as an
operator runs it, `python -m bridge -c config.yaml`, in its own process group.

Procurement 26908 is in stage `commission`: a manager, a commission of three, one supplier
with one member, everyone in their rooms before the chaos starts. Then each round, at once
(each webhook, question and file at a random moment of the round's first 2 s):

* the ERP sends 3 `notice.posted` to the organisation chat, 1 `document.published` to the
  supplier's chat, 1 `vote.requested` (quorum 2, the whole commission votes) and
  1 `approval.requested` (parallel, two of the commission), each with a unique text, file or
  id, and sends a webhook again under the same `webhook-id` on a connection error or a 5xx,
  as a real sender does;
* the manager asks «помощь» twice in the organisation chat; the supplier's member posts a
  file; the commission answers the round's poll once it shows up; the two approvers join
  the approval's room once invited and write «согласовать»;
* a killer waits a random 0.05–2 s (the seed's RNG), SIGKILLs the bridge's process group and
  starts it again at once, waiting for /health to answer 200 (--kills-per-round N: N times,
  each that long after the bridge is back).

Rounds follow each other. After the last the script waits (at most --settle seconds) until
every expected effect is visible, or the bridge's queues are empty and nothing changes any
more, then counts every effect from the outside: the rooms' history read by the manager, the
document registry and the votes' ballots through the REST API, the callbacks received.

Reading the result: one line per kind of effect with how many were expected, found exactly
once, lost (not found) and doubled (found more than once). A callback delivered twice under
the same `webhook-id` is at-least-once delivery and counts once; two ids for one fact are a
doubled effect. Lost and doubled must be 0 everywhere, and there must be no dead letters;
otherwise each missing or doubled item is listed with its round, the exit status is 1 and the
work directory (the bridge's log `bridge.log`, with every kill marked «chaos: SIGKILL», and
Synapse's) is kept for the post-mortem.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import asyncpg
from aiohttp import web
from mautrix.api import HTTPAPI, Method
from mautrix.client import ClientAPI
from mautrix.types import RoomID, UserID
from ruamel.yaml import YAML
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from bridge.config import Config, new_whsec
from bridge.demo.seed import seed_vote
from bridge.localsynapse import LocalSynapse, free_port

ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"
DOMAIN = "localhost"
BOT = f"@procbot:{DOMAIN}"
PROCUREMENT = "26908"
SUPPLIER = "torgprofi"
CONTEXT = "org.procurement.context"
POLL_START = "org.matrix.msc3381.poll.start"
POLL_END = "org.matrix.msc3381.poll.end"
POLL_RESPONSE = "org.matrix.msc3381.poll.response"
TEXT = "org.matrix.msc1767.text"
HELP, APPROVE = "помощь", "согласовать"
NOTICES_PER_ROUND, HELP_PER_ROUND = 3, 2
# How long a person waits for what the bridge owes them (a poll, an invite): a kill, a
# restart and the homeserver's redelivery fit in it many times over.
PATIENCE_S = 120.0
BRIDGE_START_S = 60.0
# The ERP gives up on a webhook after this long: the bridge never comes back then.
ERP_PATIENCE_S = 120.0
# Settled without every effect only after the queues stay empty and nothing changes this long.
QUIET_S = 15.0

T = TypeVar("T")
Event = dict[str, Any]


class WaitedTooLong(Exception):
    """A wait ran out of time; the message says who waited for what."""


class BridgeDied(Exception):
    """The bridge exited on its own, or did not come up again after a kill."""


async def wait_for(
    condition: Callable[[], Awaitable[T | None]], within: float, what: str, every: float = 0.1
) -> T:
    """Polls `condition` until it gives something truthy; WaitedTooLong after `within` s."""
    deadline = time.monotonic() + within
    while True:
        if found := await condition():
            return found
        if time.monotonic() > deadline:
            raise WaitedTooLong(f"timed out after {within:.0f} s waiting for {what}")
        await asyncio.sleep(every)


# People on the homeserver ----------------------------------------------------------------------


class Person:
    """Someone in Element: keeps syncing, accepts every invite, waits for what they need."""

    def __init__(self, homeserver: str, user_id: str, token: str, name: str) -> None:
        self.user_id = user_id
        self.name = name
        self.session = aiohttp.ClientSession()
        self.client = ClientAPI(
            UserID(user_id), api=HTTPAPI(homeserver, token=token, client_session=self.session)
        )
        self.since: str | None = None
        self.timeline: dict[str, list[Event]] = {}
        self.room_keys: dict[str, str] = {}  # room id → procurement room key (its context)
        self._synced = asyncio.Event()
        self._syncing: asyncio.Task[None] | None = None

    @classmethod
    async def register(cls, synapse: LocalSynapse, localpart: str, name: str) -> Person:
        login = await synapse.register(localpart, f"pw-{localpart}", displayname=name)
        return cls(synapse.url, login["user_id"], login["access_token"], name)

    def start_syncing(self) -> None:
        self._syncing = asyncio.create_task(self._keep_syncing(), name=f"sync {self.name}")

    async def close(self) -> None:
        if self._syncing:
            self._syncing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._syncing
        await self.session.close()

    async def _keep_syncing(self) -> None:
        while True:
            try:
                await self._sync_once()
            except Exception as e:  # Synapse stays up; a hiccup must not end the person
                print(f"  ({self.name}: sync failed: {e!r})", flush=True)
                await asyncio.sleep(0.5)
            # Wake whoever waits for something to show up in this person's view.
            self._synced.set()
            self._synced = asyncio.Event()

    async def _sync_once(self) -> None:
        query = {
            "timeout": "1000",
            "filter": json.dumps(
                {
                    "presence": {"types": []},
                    "account_data": {"types": []},
                    "room": {"timeline": {"limit": 100}},
                }
            ),
        }
        if self.since:
            query["since"] = self.since
        resp = await self.client.api.request(
            Method.GET, "/_matrix/client/v3/sync", query_params=query
        )
        self.since = resp["next_batch"]
        rooms = resp.get("rooms", {})
        for room_id, room in rooms.get("join", {}).items():
            self._take(room_id, room)
        for room_id in rooms.get("invite", {}):
            await self._accept(room_id)

    def _take(self, room_id: str, room: dict[str, Any]) -> None:
        timeline = room.get("timeline", {}).get("events", [])
        for event in [*room.get("state", {}).get("events", []), *timeline]:
            if event.get("type") == CONTEXT and event.get("state_key") == "":
                self.room_keys[room_id] = str(event["content"].get("key"))
        for event in timeline:
            event["room_id"] = room_id
            self.timeline.setdefault(room_id, []).append(event)

    async def _accept(self, room_id: str) -> None:
        try:
            await self.client.join_room_by_id(RoomID(room_id))
        except Exception as e:
            print(f"  ({self.name} could not join {room_id}: {e!r})", flush=True)

    async def until(self, found: Callable[[], T | None], within: float, what: str) -> T:
        """Waits, sync by sync, until `found` gives something truthy."""
        deadline = time.monotonic() + within
        while True:
            if result := found():
                return result
            synced = self._synced  # taken before any await: no sync slips past unseen
            left = deadline - time.monotonic()
            if left <= 0:
                raise WaitedTooLong(f"{self.name} waited {within:.0f} s for {what} in vain")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(synced.wait(), left)

    def room_of(self, key: str) -> str | None:
        return next((room for room, k in self.room_keys.items() if k == key), None)

    def rooms_of(self, key: str) -> list[str]:
        return [room for room, k in self.room_keys.items() if k == key]

    async def send(self, room_id: str, event_type: str, content: dict[str, Any]) -> str:
        path = f"/_matrix/client/v3/rooms/{room_id}/send/{event_type}/{uuid.uuid4().hex}"
        resp = await self.client.api.request(Method.PUT, path, content)
        return str(resp["event_id"])

    async def say(self, room_id: str, text: str) -> str:
        return await self.send(room_id, "m.room.message", {"msgtype": "m.text", "body": text})

    async def post_file(self, room_id: str, filename: str, data: bytes) -> str:
        """Uploads to the media repository and posts the file, as Element does."""
        mxc = await self.client.upload_media(data, mime_type="application/pdf", filename=filename)
        content = {
            "msgtype": "m.file",
            "body": filename,
            "filename": filename,
            "url": str(mxc),
            "info": {"mimetype": "application/pdf", "size": len(data)},
        }
        return await self.send(room_id, "m.room.message", content)

    async def history(self, room_id: str) -> list[Event]:
        """The room's whole timeline through /messages, newest first."""
        events: list[Event] = []
        token: str | None = None
        while True:
            query = {"dir": "b", "limit": "500"}
            if token:
                query["from"] = token
            path = f"/_matrix/client/v3/rooms/{room_id}/messages"
            resp = await self.client.api.request(Method.GET, path, query_params=query)
            events.extend(resp.get("chunk", []))
            token = resp.get("end")
            if not token or not resp.get("chunk"):
                return events


@dataclass
class Cast:
    manager: Person
    commission: list[Person]
    supplier_member: Person

    @property
    def everyone(self) -> list[Person]:
        return [self.manager, *self.commission, self.supplier_member]

    def snapshot(self) -> dict[str, Any]:
        return {
            "id": PROCUREMENT,
            "version": 1,
            "number": PROCUREMENT,
            "title": "Поставка арматуры А500С",
            "object": {"id": "lakhta-2", "name": "Лахта Центр, корпус 2"},
            "url": f"https://erp.example/procurements/{PROCUREMENT}",
            "stage": "commission",
            "manager": self.manager.user_id,
            "suppliers": [
                {
                    "id": SUPPLIER,
                    "name": "ООО «ТоргПрофи»",
                    "members": [self.supplier_member.user_id],
                }
            ],
            "commission": {
                "id": "15000.16969",
                "name": "Комиссия № 15000.16969 от 30.11.2022",
                "chair": self.commission[0].user_id,
                "members": [p.user_id for p in self.commission],
            },
        }


async def gather_cast(synapse: LocalSynapse) -> Cast:
    commission = [
        ("petrov", "Петров И.И."),
        ("kononov", "Кононов В.П."),
        ("ivanova", "Иванова М.А."),
    ]
    return Cast(
        manager=await Person.register(synapse, "konovalov", "Коновалов А.С."),
        commission=[await Person.register(synapse, u, n) for u, n in commission],
        supplier_member=await Person.register(synapse, "kirillov", "Кириллов Д.Н."),
    )


# The procurement system ---------------------------------------------------------------------


class ERP:
    """Sends signed webhooks and sends them again, under the same id, until one is taken."""

    def __init__(self, bridge_url: str, secret: str, token: str) -> None:
        self.bridge_url = bridge_url
        self.signer = Webhook(secret)
        self.token = token
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))
        self.sent = 0
        self.retries = 0
        self.duplicates = 0

    async def close(self) -> None:
        await self.session.close()

    def _headers(self, webhook_id: str, body: bytes) -> dict[str, str]:
        # Every attempt is signed anew: the timestamp is the attempt's, the id stays.
        now = int(time.time())
        signature = self.signer.sign(webhook_id, datetime.fromtimestamp(now, UTC), body.decode())
        return {
            "webhook-id": webhook_id,
            "webhook-timestamp": str(now),
            "webhook-signature": signature,
            "Content-Type": "application/json",
        }

    async def send(self, event_type: str, data: dict[str, Any]) -> str:
        webhook_id = f"msg_{uuid.uuid4().hex}"
        body = json.dumps({"type": event_type, "data": data}, ensure_ascii=False).encode()
        deadline = time.monotonic() + ERP_PATIENCE_S
        pause = 0.1
        self.sent += 1
        while True:
            answer = await self._post(webhook_id, body)
            if answer is not None and answer[0] == 202:
                self.duplicates += answer[1].get("status") == "duplicate"
                return webhook_id
            if answer is not None and answer[0] < 500:
                raise RuntimeError(f"the bridge refused {event_type} {webhook_id}: {answer}")
            if time.monotonic() > deadline:
                raise WaitedTooLong(f"the bridge took no {event_type} in {ERP_PATIENCE_S:.0f} s")
            self.retries += 1
            await asyncio.sleep(pause)  # a sender's backoff, not a wait for a condition
            pause = min(pause * 2, 1.0)

    async def _post(self, webhook_id: str, body: bytes) -> tuple[int, dict[str, Any]] | None:
        """The answer, or None when the bridge was not there to give one."""
        url = f"{self.bridge_url}/api/v1/webhooks"
        try:
            async with self.session.post(
                url, data=body, headers=self._headers(webhook_id, body)
            ) as resp:
                return resp.status, await resp.json(content_type=None) or {}
        except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError):
            return None

    async def get(self, path: str, token: str | None = None) -> Any:
        found = await self.find(path, token)
        if found is None:
            raise RuntimeError(f"GET {path}: 404")
        return found

    async def find(self, path: str, token: str | None = None) -> Any:
        """The REST API's answer, or None for 404."""
        headers = {"Authorization": f"Bearer {token or self.token}"}
        async with self.session.get(f"{self.bridge_url}{path}", headers=headers) as resp:
            if resp.status == 404:
                return None
            if resp.status != 200:
                raise RuntimeError(f"GET {path}: {resp.status} {await resp.text()}")
            return await resp.json()


@dataclass(frozen=True)
class Callback:
    webhook_id: str
    type: str
    data: dict[str, Any]


class CallbackDesk:
    """The procurement system's callback endpoint: verifies and records every POST."""

    def __init__(self, secret: str) -> None:
        self.port = free_port()
        self.verifier = Webhook(secret)
        self.received: list[Callback] = []
        self.unsigned = 0
        self.runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/callbacks"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/callbacks", self.take)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner:
            await self.runner.cleanup()

    async def take(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body = self.verifier.verify(raw, dict(request.headers))
        except WebhookVerificationError:
            self.unsigned += 1
            return web.Response(status=401)
        self.received.append(Callback(request.headers["webhook-id"], body["type"], body["data"]))
        return web.json_response({})

    def ids_of(self, kind: str, matches: Callable[[dict[str, Any]], bool]) -> int:
        """Distinct webhook-ids of one kind of callback about one fact."""
        return len({c.webhook_id for c in self.received if c.type == kind and matches(c.data)})

    @property
    def redelivered(self) -> int:
        """Deliveries beyond the first of the same webhook-id (at-least-once at work)."""
        return len(self.received) - len({c.webhook_id for c in self.received})


# The bridge process ----------------------------------------------------------------------------


class BridgeProcess:
    """`python -m bridge -c config.yaml -n` in its own session, so a kill takes it all."""

    def __init__(self, config_path: Path, url: str) -> None:
        self.config_path = config_path
        self.url = url
        self.log_path = config_path.parent / "bridge.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.kills = 0

    def _spawn(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bridge", "-c", str(self.config_path), "-n"],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def mark(self, text: str) -> None:
        """A line in the bridge's log, so a post-mortem finds the kills among its lines."""
        with self.log_path.open("a", encoding="utf-8") as log:
            log.write(f"[{datetime.now().isoformat(sep=' ')}] ----- chaos: {text} -----\n")

    async def start(self) -> None:
        self._spawn()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            try:
                await wait_for(
                    lambda: self._healthy(session),
                    BRIDGE_START_S,
                    "the bridge's /health to answer 200",
                    every=0.05,
                )
            except WaitedTooLong as e:
                # Not a person's lost patience: without the bridge the run cannot go on.
                raise BridgeDied(f"{e}: {self.tail()}") from None

    async def _healthy(self, session: aiohttp.ClientSession) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise BridgeDied(f"the bridge exited with {self.process.returncode}: {self.tail()}")
        try:
            async with session.get(f"{self.url}/health") as resp:
                return resp.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False

    def kill(self, why: str) -> None:
        """SIGKILL to the whole group: no shutdown code runs, as in a power cut."""
        if self.process and self.process.poll() is None:
            self.kills += 1
            self.mark(f"SIGKILL #{self.kills} ({why})")
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    async def queue_depths(self) -> dict[str, float] | None:
        """`bridge_queue_depth` per queue from /metrics; None when the bridge does not answer."""
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
                session.get(f"{self.url}/metrics") as resp,
            ):
                text = await resp.text()
        except (aiohttp.ClientError, TimeoutError):
            return None
        pattern = r'^bridge_queue_depth\{queue="([^"]+)"\} (\S+)$'
        return {q: float(v) for q, v in re.findall(pattern, text, flags=re.MULTILINE)}


# The stand: homeserver, database, configuration ----------------------------------------------


class Stand:
    """Everything the run needs around the bridge, and its cleanup."""

    def __init__(self, database: str) -> None:
        self.work = Path(tempfile.mkdtemp(prefix="bench-chaos-"))
        self.database_kind = database
        self.database_name = f"bench_chaos_{uuid.uuid4().hex[:10]}"
        self.database_created = False
        self.bridge_port = free_port()
        self.as_token, self.hs_token = uuid.uuid4().hex * 2, uuid.uuid4().hex * 2
        self.webhook_secret, self.callback_secret = new_whsec(), new_whsec()
        self.erp_token, self.operator_token = uuid.uuid4().hex, uuid.uuid4().hex
        self.synapse = LocalSynapse(self.work / "synapse", server_name=DOMAIN)

    @property
    def bridge_url(self) -> str:
        return f"http://127.0.0.1:{self.bridge_port}"

    async def database_url(self) -> str:
        if self.database_kind == "sqlite":
            return f"sqlite:{self.work / 'bridge.db'}"
        conn = await asyncpg.connect(ADMIN_URL)
        try:
            await conn.execute(f'CREATE DATABASE "{self.database_name}"')
            self.database_created = True
        finally:
            await conn.close()
        return f"{ADMIN_URL.rsplit('/', 1)[0]}/{self.database_name}"

    async def drop_database(self) -> None:
        if not self.database_created:
            return
        conn = await asyncpg.connect(ADMIN_URL)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{self.database_name}" WITH (FORCE)')
        finally:
            await conn.close()

    def write_config(self, database: str, callback_url: str) -> Path:
        data = {
            "homeserver": {"address": self.synapse.url, "domain": DOMAIN},
            "appservice": {
                "address": self.bridge_url,
                "hostname": "127.0.0.1",
                "port": self.bridge_port,
                "id": "procurement",
                "bot": {"username": "procbot", "displayname": "Системный помощник"},
                "as_token": self.as_token,
                "hs_token": self.hs_token,
            },
            "database": database,
            "webhooks": {"secrets": [self.webhook_secret], "max_body_bytes": 1048576},
            "callbacks": {"url": callback_url, "secret": self.callback_secret},
            "api": {
                "tokens": [
                    {"token": self.erp_token, "scopes": ["read", "documents"]},
                    {"token": self.operator_token, "scopes": ["admin"]},
                ]
            },
            # A short backoff: after each kill the bridge is back at work within seconds.
            "bridge": {"locale": "ru", "max_attempts": 8, "max_backoff_seconds": 2},
        }
        path = self.work / "config.yaml"
        YAML().dump(data, path)
        config = Config(str(path), "pkg://bridge/example-config.yaml")
        config.load()
        config.update(save=True)
        registration = self.work / "registration.yaml"
        YAML().dump(config.registration(), registration)
        self.synapse.app_service_files = [registration]
        return path


# A round ---------------------------------------------------------------------------------------


@dataclass
class Round:
    """What one round sends and does, drawn from the seed; ids of what happened filled in."""

    number: int
    tag: str
    kill_after: list[float]
    # When, from the round's start, each webhook (3 notices, the document, the vote, the
    # approval), each «помощь» and the upload go out: spread over the window the kill falls
    # in, so that some are in flight when it comes.
    webhooks_at: list[float]
    help_at: list[float]
    upload_at: float
    answers: list[str]
    approvers: list[int]
    published_bytes: bytes
    upload_bytes: bytes
    approval_bytes: bytes
    help_asks: list[str] = field(default_factory=list)
    upload_event: str | None = None
    kills: list[int] = field(default_factory=list)  # numbers of the «chaos: SIGKILL #n» marks
    gave_up: list[str] = field(default_factory=list)

    @property
    def notices(self) -> list[str]:
        return [
            f"Уведомление {i + 1} раунда {self.number}: сроки подачи · {self.tag}"
            for i in range(NOTICES_PER_ROUND)
        ]

    @property
    def vote_id(self) -> str:
        return f"V-{self.tag}"

    @property
    def approval_id(self) -> str:
        return f"A-{self.tag}"

    @property
    def published_file(self) -> str:
        return f"Protokol_{self.tag}.pdf"

    @property
    def upload_file(self) -> str:
        return f"KP_TorgProfi_{self.tag}.pdf"

    @property
    def approval_file(self) -> str:
        return f"TKA_{self.tag}.pdf"


def draw_rounds(rng: random.Random, rounds: int, kills: int) -> list[Round]:
    return [
        Round(
            number=n,
            tag=f"r{n:02d}-{rng.getrandbits(24):06x}",
            kill_after=[rng.uniform(0.05, 2.0) for _ in range(kills)],
            webhooks_at=[rng.uniform(0, 2.0) for _ in range(NOTICES_PER_ROUND + 3)],
            help_at=sorted(rng.uniform(0, 2.0) for _ in range(HELP_PER_ROUND)),
            upload_at=rng.uniform(0, 2.0),
            answers=[rng.choice(["for", "against", "abstain"]) for _ in range(3)],
            approvers=rng.sample(range(3), 2),
            published_bytes=b"%PDF-1.7\n" + rng.randbytes(1500),
            upload_bytes=b"%PDF-1.7\n" + rng.randbytes(1500),
            approval_bytes=b"%PDF-1.7\n" + rng.randbytes(1500),
        )
        for n in range(1, rounds + 1)
    ]


def inline(filename: str, data: bytes, kind: str) -> dict[str, Any]:
    return {
        "type": kind,
        "filename": filename,
        "mime_type": "application/pdf",
        "content_base64": base64.b64encode(data).decode(),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def vote_request(round_: Round) -> dict[str, Any]:
    # Closes far ahead: it closes because the whole commission has answered.
    closes = datetime.now(UTC) + timedelta(days=1)
    question = f"Утвердить спецификацию 174/741-12.21-{round_.number:03d}? ({round_.vote_id})"
    return seed_vote(PROCUREMENT, round_.vote_id, closes) | {"quorum": 2, "question": question}


def approval_request(round_: Round, cast: Cast) -> dict[str, Any]:
    return {
        "procurement_id": PROCUREMENT,
        "approval_id": round_.approval_id,
        "initiator": cast.manager.user_id,
        "document": inline(
            round_.approval_file, round_.approval_bytes, "Торгово-коммерческий анализ (ТКА)"
        )
        | {"number": f"234/{round_.number:02d}", "series": "01", "valid_until": "2030-12-31"},
        "mode": "parallel",
        "group": "Комиссия закупки",
        "approvers": [cast.commission[i].user_id for i in round_.approvers],
        "require_signature": False,
        "deadline": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
    }


async def at(moment: float, began: float, action: Awaitable[T]) -> T:
    """Runs `action` `moment` seconds after `began` (time.monotonic)."""
    await asyncio.sleep(max(0.0, began + moment - time.monotonic()))
    return await action


async def erp_sends(round_: Round, cast: Cast, erp: ERP, began: float) -> None:
    notices = [
        erp.send("notice.posted", {"procurement_id": PROCUREMENT, "room": "org", "markdown": text})
        for text in round_.notices
    ]
    publication = {
        "procurement_id": PROCUREMENT,
        "room": f"supplier:{SUPPLIER}",
        "document": inline(round_.published_file, round_.published_bytes, "Протокол"),
    }
    webhooks = [
        *notices,
        erp.send("document.published", publication),
        erp.send("vote.requested", vote_request(round_)),
        erp.send("approval.requested", approval_request(round_, cast)),
    ]
    await asyncio.gather(
        *(at(moment, began, w) for moment, w in zip(round_.webhooks_at, webhooks, strict=True))
    )


async def manager_asks_for_help(round_: Round, cast: Cast, began: float) -> None:
    org = cast.manager.room_of("org")
    assert org is not None
    for moment in round_.help_at:
        round_.help_asks.append(await at(moment, began, cast.manager.say(org, HELP)))


async def supplier_posts_offer(round_: Round, cast: Cast, began: float) -> None:
    room = cast.supplier_member.room_of(f"supplier:{SUPPLIER}")
    assert room is not None
    offer = cast.supplier_member.post_file(room, round_.upload_file, round_.upload_bytes)
    round_.upload_event = await at(round_.upload_at, began, offer)


def poll_of(vote_id: str, events: Iterable[Event]) -> Event | None:
    return next((e for e in events if is_poll_start(e) and vote_id in poll_question(e)), None)


async def member_votes(round_: Round, member: Person, answer: str) -> None:
    room = member.room_of("commission")
    assert room is not None
    poll = await member.until(
        lambda: poll_of(round_.vote_id, member.timeline.get(room, [])),
        PATIENCE_S,
        f"the poll of {round_.vote_id}",
    )
    response = {
        POLL_RESPONSE: {"answers": [answer]},
        "m.relates_to": {"rel_type": "m.reference", "event_id": poll["event_id"]},
    }
    await member.send(room, POLL_RESPONSE, response)


async def approver_approves(round_: Round, approver: Person) -> None:
    key = f"approval:{round_.approval_id}"
    room = await approver.until(lambda: approver.room_of(key), PATIENCE_S, f"the room {key}")
    await approver.say(room, APPROVE)


async def killer(round_: Round, bridge: BridgeProcess) -> None:
    for delay in round_.kill_after:
        # The random moment is the point of the exercise; with several kills a round, each
        # comes that long after the bridge is healthy again.
        await asyncio.sleep(delay)
        bridge.kill(f"round {round_.number}, {delay:.2f} s after the start or last restart")
        round_.kills.append(bridge.kills)
        await bridge.start()
        bridge.mark(f"healthy again after SIGKILL #{bridge.kills}")


async def play(round_: Round, cast: Cast, erp: ERP, bridge: BridgeProcess) -> None:
    """Everyone acts at once; a person who waited in vain is noted, not fatal: the census
    will show what went missing."""
    began = time.monotonic()
    actors = [
        erp_sends(round_, cast, erp, began),
        manager_asks_for_help(round_, cast, began),
        supplier_posts_offer(round_, cast, began),
        *(
            member_votes(round_, m, a)
            for m, a in zip(cast.commission, round_.answers, strict=True)
        ),
        *(approver_approves(round_, cast.commission[i]) for i in round_.approvers),
        killer(round_, bridge),
    ]
    for result in await asyncio.gather(*actors, return_exceptions=True):
        if isinstance(result, WaitedTooLong):
            round_.gave_up.append(str(result))
        elif isinstance(result, BaseException):
            raise result


# Setting up ------------------------------------------------------------------------------------


async def open_procurement(cast: Cast, erp: ERP) -> None:
    """The procurement in stage commission, everyone in their rooms, before any kill."""
    await erp.send("procurement.upserted", cast.snapshot())
    wanted = [
        (cast.manager, ["org", f"supplier:{SUPPLIER}", "commission"]),
        *((member, ["commission"]) for member in cast.commission),
        (cast.supplier_member, [f"supplier:{SUPPLIER}"]),
    ]
    for person, keys in wanted:
        for key in keys:
            await person.until(lambda p=person, k=key: p.room_of(k), PATIENCE_S, f"{key} joined")


# Counting --------------------------------------------------------------------------------------


@dataclass
class Row:
    """One kind of effect: how often each expected fact (round, what) was found."""

    kind: str
    found: dict[tuple[int, str], int]

    def expected(self) -> int:
        return len(self.found)

    def once(self) -> int:
        return sum(1 for n in self.found.values() if n == 1)

    def lost(self) -> list[tuple[int, str]]:
        return [key for key, n in self.found.items() if n == 0]

    def doubled(self) -> list[tuple[int, str]]:
        return [key for key, n in self.found.items() if n > 1]


def from_bot(event: Event) -> bool:
    return event.get("sender") == BOT


def content_of(event: Event) -> dict[str, Any]:
    content = event.get("content")
    return content if isinstance(content, dict) else {}


def is_message(event: Event) -> bool:
    return from_bot(event) and event.get("type") == "m.room.message"


def is_original(event: Event) -> bool:
    """Not an edit, not a reply: a message of its own."""
    return "m.relates_to" not in content_of(event)


def is_poll_start(event: Event) -> bool:
    return from_bot(event) and event.get("type") == POLL_START


def poll_question(event: Event) -> str:
    question = content_of(event).get(POLL_START, {}).get("question", {})
    return str(question.get(TEXT) or question.get("body") or "")


def reply_target(event: Event) -> str | None:
    return content_of(event).get("m.relates_to", {}).get("m.in_reply_to", {}).get("event_id")


def is_file(event: Event, filename: str) -> bool:
    content = content_of(event)
    return (
        is_message(event)
        and content.get("msgtype") == "m.file"
        and (content.get("filename") or content.get("body")) == filename
        and is_original(event)
    )


def count(events: Iterable[Event], matches: Callable[[Event], bool]) -> int:
    return sum(1 for e in events if matches(e))


@dataclass
class Sight:
    """What the outside world holds now: rooms' histories, the registry, the callbacks."""

    org: list[Event]
    supplier: list[Event]
    commission: list[Event]
    approvals: dict[str, list[Event]]  # approval id → events of every room with its key
    approval_rooms: Counter[str]
    registry: list[dict[str, Any]]
    votes: dict[str, dict[str, Any] | None]  # vote id → the bridge's view of it (REST API)
    voters: list[str]
    desk: CallbackDesk


async def look(rounds: list[Round], cast: Cast, erp: ERP, desk: CallbackDesk) -> Sight:
    manager = cast.manager

    async def room(key: str) -> list[Event]:
        return [e for r in manager.rooms_of(key) for e in await manager.history(r)]

    approvals = {r.approval_id: await room(f"approval:{r.approval_id}") for r in rounds}
    registry = await erp.get(f"/api/v1/procurements/{PROCUREMENT}/documents")
    votes = {
        r.vote_id: await erp.find(f"/api/v1/procurements/{PROCUREMENT}/votes/{r.vote_id}")
        for r in rounds
    }
    return Sight(
        org=await room("org"),
        supplier=await room(f"supplier:{SUPPLIER}"),
        commission=await room("commission"),
        approvals=approvals,
        approval_rooms=Counter(
            {r.approval_id: len(manager.rooms_of(f"approval:{r.approval_id}")) for r in rounds}
        ),
        registry=registry["documents"],
        votes=votes,
        voters=[p.user_id for p in cast.commission],
        desk=desk,
    )


def in_registry(sight: Sight, filename: str, source: str) -> int:
    return sum(1 for d in sight.registry if d["filename"] == filename and d["source"] == source)


def notice_rows(rounds: list[Round], sight: Sight) -> list[Row]:
    notices = {
        (r.number, text): count(
            sight.org,
            lambda e, t=text: is_message(e) and is_original(e) and content_of(e).get("body") == t,
        )
        for r in rounds
        for text in r.notices
    }
    replies = {
        (r.number, ask): count(sight.org, lambda e, a=ask: from_bot(e) and reply_target(e) == a)
        for r in rounds
        for ask in r.help_asks
    }
    return [Row("notices in the org chat", notices), Row("help replies («помощь»)", replies)]


def document_rows(rounds: list[Round], sight: Sight) -> list[Row]:
    published = {(r.number, r.published_file): r.published_file for r in rounds}
    uploaded = {(r.number, r.upload_file): r for r in rounds if r.upload_event}
    return [
        Row(
            "published: file messages",
            {k: count(sight.supplier, lambda e, f=f: is_file(e, f)) for k, f in published.items()},
        ),
        Row(
            "published: registry entries",
            {k: in_registry(sight, f, "bridge") for k, f in published.items()},
        ),
        Row(
            "member uploads: registry entries",
            {k: in_registry(sight, r.upload_file, "user") for k, r in uploaded.items()},
        ),
        Row(
            "member uploads: document.uploaded",
            {
                k: sight.desk.ids_of(
                    "document.uploaded", lambda d, r=r: d.get("event_id") == r.upload_event
                )
                for k, r in uploaded.items()
            },
        ),
    ]


def vote_rows(rounds: list[Round], sight: Sight) -> list[Row]:
    def starts(vote_id: str) -> list[Event]:
        return [e for e in sight.commission if is_poll_start(e) and vote_id in poll_question(e)]

    def ends(vote_id: str) -> int:
        polls = {e["event_id"] for e in starts(vote_id)}
        return count(
            sight.commission,
            lambda e: (
                from_bot(e)
                and e.get("type") == POLL_END
                and content_of(e).get("m.relates_to", {}).get("event_id") in polls
            ),
        )

    def cards(vote_id: str) -> int:
        return count(
            sight.commission,
            lambda e: (
                is_message(e) and is_original(e) and vote_id in content_of(e).get("body", "")
            ),
        )

    def ballots(vote_id: str, voter: str) -> int:
        """The voter's answers the bridge recorded (each voter answers once)."""
        view = sight.votes[vote_id] or {"ballots": []}
        return sum(1 for b in view["ballots"] if b["user"] == voter)

    keys = {(r.number, r.vote_id): r.vote_id for r in rounds}
    completed = "vote.completed"
    return [
        Row("votes: cards", {k: cards(v) for k, v in keys.items()}),
        Row("votes: poll starts", {k: len(starts(v)) for k, v in keys.items()}),
        Row(
            "votes: answers recorded",
            {
                (r.number, f"{r.vote_id} {voter}"): ballots(r.vote_id, voter)
                for r in rounds
                for voter in sight.voters
            },
        ),
        Row("votes: poll ends", {k: ends(v) for k, v in keys.items()}),
        Row(
            "votes: vote.completed",
            {
                k: sight.desk.ids_of(completed, lambda d, v=v: d.get("vote_id") == v)
                for k, v in keys.items()
            },
        ),
    ]


def approval_rows(rounds: list[Round], sight: Sight) -> list[Row]:
    def cards(approval_id: str) -> int:
        return count(
            sight.approvals[approval_id],
            lambda e: (
                is_message(e)
                and is_original(e)
                and str(content_of(e).get("body", "")).startswith("Согласование")
            ),
        )

    def step(approval_id: str, index: int) -> int:
        return sight.desk.ids_of(
            "approval.step_decided",
            lambda d: d.get("approval_id") == approval_id and d.get("step") == index,
        )

    keys = {(r.number, r.approval_id): r for r in rounds}
    return [
        Row("approvals: rooms", {k: sight.approval_rooms[r.approval_id] for k, r in keys.items()}),
        Row("approvals: cards", {k: cards(r.approval_id) for k, r in keys.items()}),
        Row(
            "approvals: document files",
            {
                k: count(
                    sight.approvals[r.approval_id], lambda e, f=r.approval_file: is_file(e, f)
                )
                for k, r in keys.items()
            },
        ),
        Row(
            "approvals: registry entries",
            {k: in_registry(sight, r.approval_file, "bridge") for k, r in keys.items()},
        ),
        Row(
            "approvals: approval.step_decided",
            {
                (r.number, f"{r.approval_id} step {i}"): step(r.approval_id, i)
                for r in rounds
                for i in range(len(r.approvers))
            },
        ),
        Row(
            "approvals: approval.completed",
            {
                k: sight.desk.ids_of(
                    "approval.completed", lambda d, a=r.approval_id: d.get("approval_id") == a
                )
                for k, r in keys.items()
            },
        ),
    ]


async def census(rounds: list[Round], cast: Cast, erp: ERP, desk: CallbackDesk) -> list[Row]:
    sight = await look(rounds, cast, erp, desk)
    return [
        *notice_rows(rounds, sight),
        *document_rows(rounds, sight),
        *vote_rows(rounds, sight),
        *approval_rows(rounds, sight),
    ]


async def settle(
    rounds: list[Round],
    cast: Cast,
    erp: ERP,
    desk: CallbackDesk,
    bridge: BridgeProcess,
    most: float,
) -> tuple[list[Row], str]:
    """Counts until the bridge is done: every effect there and the queues empty, or the queues
    empty and nothing changing for QUIET_S; gives what it has after `most` seconds."""
    deadline = time.monotonic() + most
    previous: list[Row] | None = None
    quiet_since = time.monotonic()
    while True:
        rows = await census(rounds, cast, erp, desk)
        depths = await bridge.queue_depths()
        idle = depths is not None and not any(depths.values())
        unchanged = idle and rows == previous
        if not unchanged:
            quiet_since = time.monotonic()
        if unchanged and all(not row.lost() for row in rows):
            return rows, "every expected effect visible, the queues empty"
        if unchanged and time.monotonic() - quiet_since >= QUIET_S:
            return rows, f"the queues empty and nothing changed for {QUIET_S:.0f} s"
        if time.monotonic() > deadline:
            return rows, f"NOT settled after {most:.0f} s (queues: {depths})"
        previous = rows
        await asyncio.sleep(1.0)


# Reporting -------------------------------------------------------------------------------------


def print_table(rows: list[Row]) -> None:
    print(f"{'effect':<40} {'expected':>8} {'once':>6} {'lost':>6} {'doubled':>8}")
    for row in rows:
        print(
            f"{row.kind:<40} {row.expected():>8} {row.once():>6}"
            f" {len(row.lost()):>6} {len(row.doubled()):>8}"
        )


def print_faults(rows: list[Row], rounds: list[Round]) -> None:
    by_number = {r.number: r for r in rounds}
    for row in rows:
        for (number, what), found in sorted(row.found.items()):
            if found != 1:
                verdict = "LOST" if found == 0 else f"DOUBLED ×{found}"
                kills = ", ".join(f"#{k}" for k in by_number[number].kills)
                print(f"  {verdict}: {row.kind}, round {number} ({what}); SIGKILL {kills}")
    for round_ in rounds:
        for note in round_.gave_up:
            print(f"  round {round_.number}: {note}")


async def dead_letters(erp: ERP, token: str) -> list[str]:
    parked = await erp.get("/api/v1/dead-letters", token)
    return [
        f"{queue}: {letter['name']} after {letter['attempts']} attempts: {letter['last_error']}"
        for queue, letters in parked.items()
        for letter in letters
    ]


# The run ---------------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> int:
    began = time.monotonic()
    rounds = draw_rounds(random.Random(args.seed), args.rounds, args.kills_per_round)
    stand = Stand(args.database)
    outcome = Outcome()
    stop_on_signals(outcome)
    async with contextlib.AsyncExitStack() as stack:
        stack.callback(lambda: keep_or_remove(stand.work, outcome))
        stack.push_async_callback(stand.drop_database)
        desk = CallbackDesk(stand.callback_secret)
        config_path = stand.write_config(await stand.database_url(), desk.url)
        stack.callback(stand.synapse.stop)
        await stand.synapse.start()
        await desk.start()
        stack.push_async_callback(desk.stop)
        bridge = BridgeProcess(config_path, stand.bridge_url)
        stack.callback(bridge.stop)
        await bridge.start()
        erp = ERP(stand.bridge_url, stand.webhook_secret, stand.erp_token)
        stack.push_async_callback(erp.close)
        cast = await gather_cast(stand.synapse)
        for person in cast.everyone:
            stack.push_async_callback(person.close)
            person.start_syncing()
        await open_procurement(cast, erp)
        print(
            f"procurement {PROCUREMENT} open; {args.rounds} rounds, seed {args.seed}", flush=True
        )

        for round_ in rounds:
            started = time.monotonic()
            await play(round_, cast, erp, bridge)
            print(
                f"round {round_.number:>2}: {time.monotonic() - started:5.1f} s, killed at "
                + ", ".join(f"{d:.2f} s" for d in round_.kill_after),
                flush=True,
            )
        rows, how = await settle(rounds, cast, erp, desk, bridge, args.settle)
        parked = await dead_letters(erp, stand.operator_token)
        failed = report(args, rounds, rows, how, parked, erp, desk, bridge, began)
        outcome.verdict = "failed" if failed else "passed"
    return 1 if outcome.verdict == "failed" else 0


@dataclass
class Outcome:
    """How the run ended: "passed", "failed", "interrupted", or "crashed" until told."""

    verdict: str = "crashed"


def stop_on_signals(outcome: Outcome) -> None:
    """Ctrl-C or SIGTERM cancels the run, so every cleanup step above still runs; also when
    the shell started the script in the background with SIGINT ignored."""
    task = asyncio.current_task()
    assert task is not None

    def interrupt() -> None:
        if outcome.verdict != "interrupted":  # once: a second signal must not cut the cleanup
            outcome.verdict = "interrupted"
            print("interrupted: cleaning up Synapse, the bridge and the database", flush=True)
            task.cancel()

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, interrupt)


def report(
    args: argparse.Namespace,
    rounds: list[Round],
    rows: list[Row],
    how: str,
    parked: list[str],
    erp: ERP,
    desk: CallbackDesk,
    bridge: BridgeProcess,
    began: float,
) -> bool:
    """Prints the result; True when anything was lost, doubled or parked."""
    database = "PostgreSQL" if args.database == "postgres" else "SQLite"
    print()
    print(
        f"chaos: {len(rounds)} rounds on {database}, seed {args.seed}, {bridge.kills} kills,"
        f" {time.monotonic() - began:.0f} s in all; settled: {how}"
    )
    print_table(rows)
    print(
        f"webhooks: {erp.sent} sent, {erp.retries} attempts again under the same id,"
        f" {erp.duplicates} answered as duplicates"
    )
    print(
        f"callbacks: {len({c.webhook_id for c in desk.received})} distinct ids,"
        f" {desk.redelivered} delivered again under the same id, {desk.unsigned} badly signed"
    )
    print(f"dead letters: {len(parked) or 'none'}")
    for letter in parked:
        print(f"  {letter}")
    faulty = any(row.lost() or row.doubled() for row in rows)
    if faulty or any(r.gave_up for r in rounds):
        print_faults(rows, rounds)
    return faulty or bool(parked) or desk.unsigned > 0


def keep_or_remove(work: Path, outcome: Outcome) -> None:
    """The directory stays after a failure or a crash: the bridge's and Synapse's logs are the
    evidence."""
    if outcome.verdict in ("failed", "crashed"):
        print(f"work directory kept: {work} (the bridge's log: {work / 'bridge.log'})")
    else:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--database", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--seed", type=int, default=random.SystemRandom().randrange(1 << 32))
    parser.add_argument("--kills-per-round", type=int, default=1)
    parser.add_argument(
        "--settle", type=float, default=180.0, help="seconds to wait for the bridge at the end"
    )
    args = parser.parse_args()
    try:
        sys.exit(asyncio.run(run(args)))
    except asyncio.CancelledError:
        sys.exit(130)  # interrupted; everything was cleaned up on the way out


if __name__ == "__main__":
    main()
