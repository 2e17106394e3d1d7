"""Scale: one procurement's reconcile pass costs the same with 10 or 10,000 procurements in the
store, and the bridge's memory stays flat over a million homeserver events.

    .venv/bin/python bench/scale.py [--part reconcile|memory|both] [--db postgres|sqlite|both]
                                    [--procurements 10000] [--passes 100] [--member-passes 40]
                                    [--events 1000000] [--batch 100] [--backlog 20000]

One local Synapse serves the whole run; PostgreSQL at 127.0.0.1:5432 (databases made and
dropped here) and SQLite files in a temporary directory.

(a) Reconcile. The question is whether the store's size leaks into the cost of converging one
procurement, so the honest comparison is the same pass of the same kind of procurement, in the
same run, against two stores that differ in nothing but how many other procurements they hold:

* Two stores, "small" (N=10) and "large" (N=10,000 by default). In each the bridge itself
  creates the timed procurement for real against Synapse (stage commission: 3 suppliers × 2
  members, team, logistics, a commission of 3, 2 specifications, a shipment and a parallel
  approval: 21 rooms and spaces), so both timed procurements have the same shape and rooms
  that exist. Every other procurement is a copy of that one's rows — procurement, stage
  history, managed rooms, room state, approval — with its own ids, room ids and people,
  written straight into the tables by COPY (PostgreSQL) or executemany (SQLite). So every
  procurement in the large store is as big and as busy (an open approval) as the one timed:
  whatever reads all procurements or all open items pays for 10,000 live ones. Tables a pass
  neither reads nor scans (events, outbox, audit log, search) are not filled; (b) covers
  growth there. PostgreSQL gets VACUUM ANALYZE after the fill, as autovacuum would; SQLite
  gets nothing (the bridge never runs ANALYZE).
* Both bridges run in this process at once (BridgeCore, as bench/provision.py), neither at the
  address Synapse delivers to, so neither does echo work the other does not; each keeps its
  room state from what it applies. Their reconcile workers are held, and a pass is the
  worker's own `run_once()` and `drain()` — due query, claim (PostgreSQL), the pass, mark
  done — after the procurement was asked for one, timed on its own. Everything else (timers,
  leases, the other workers) runs as in production; a second series holds the timers too, to
  tell the pass's own cost from the process's background work.
* Two passes: one that finds nothing to change (reads the snapshot, the rooms and their state,
  plans, diffs), and one after a new snapshot version adds or removes one logistics person:
  exactly one invite or kick at the homeserver (checked before timing), alternating. Small and
  large alternate pass by pass, so drift of the machine hits both alike; medians and p90.
* Beside them, the floors measured in the same run: the rows a pass must read (the
  procurement, its rooms, their state, its approvals; prepared statements on a raw
  connection, nothing parsed) in each store, and the same invite or kick sent raw to Synapse in
  a twin room (same createRoom body, not managed). The target is large/small ≤ 1.2.

(b) Memory. One bridge process (`python -m bridge`, on PostgreSQL, as an operator runs it)
with a procurement made for real; a feeder process sends `--events` homeserver events through
the appservice transaction endpoint, `--batch` per transaction, one transaction at a time as a
homeserver does: the members' joins, then text messages (82 %), edits (5 %), reactions (5 %)
and read receipts (8 %) from the rooms' members, in the rooms they are in — no commands, so
nothing waits on Synapse. The feeder pauses while more than `--backlog` events wait in the
bridge's queue (so the run measures ingest and processing together, not a pile in the
database). The process's resident memory (psutil, or VmRSS from /proc) is sampled every
second; printed: after warm-up (the first 10 % of the events processed), at each further
10 %, at the end, the peak, and end/warm-up (target ≤ 1.1 or so: flat).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import logging
import multiprocessing
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import aiosqlite
import asyncpg
from ruamel.yaml import YAML

from bridge.config import Config, new_whsec
from bridge.core import BridgeCore
from bridge.db.queue import WorkQueue
from bridge.domain.plan import AVATAR_KINDS
from bridge.localsynapse import LocalSynapse, free_port
from bridge.matrix.reconciler import create_room_body
from bridge.worker import QueueWorker, now_ms

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chaos import ERP
from fleet import BridgeProcess, mib, parse_metrics, percentile

ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"
DOMAIN = "localhost"
BOT = f"@procbot:{DOMAIN}"
# The logistics person who leaves the shipment's room before each member pass; the pass
# invites them back.
LEAVER = "logist0"
SHIPMENT = "shipment:SH-1"
SUPPLIERS, SUPPLIER_MEMBERS, COMMISSION = 3, 2, 3
PEOPLE = (
    "manager",
    "team0",
    "team1",
    LEAVER,
    *(f"comm{k}" for k in range(COMMISSION)),
    *(f"s{i}m{j}" for i in range(SUPPLIERS) for j in range(SUPPLIER_MEMBERS)),
)
WARMUP_PASSES = 5
TIMER_ROUNDS = 5
QUIET_S = 2.0


def mxid(localpart: str) -> str:
    return f"@{localpart}:{DOMAIN}"


# The procurement ---------------------------------------------------------------------------


def snapshot(pid: str, version: int) -> dict[str, Any]:
    """The timed procurement as the ERP sends it."""
    return {
        "id": pid,
        "version": version,
        "number": pid,
        "title": "Поставка арматуры А500С",
        "object": {"id": "lakhta-2", "name": "Лахта Центр, корпус 2"},
        "url": f"https://erp.example/procurements/{pid}",
        "stage": "commission",
        "manager": mxid("manager"),
        "team": [mxid("team0"), mxid("team1")],
        "logistics": [mxid(LEAVER)],
        "suppliers": [
            {
                "id": f"s{i}",
                "name": f"ООО «Поставщик {i}»",
                "members": [mxid(f"s{i}m{j}") for j in range(SUPPLIER_MEMBERS)],
            }
            for i in range(SUPPLIERS)
        ],
        "commission": {
            "id": "15000.16969",
            "name": "Комиссия № 15000.16969 от 30.11.2022",
            "chair": mxid("comm0"),
            "members": [mxid(f"comm{k}") for k in range(COMMISSION)],
        },
        "specifications": [
            {"id": "K987-02.02-001", "supplier_id": "s0"},
            {"id": "K987-02.02-002", "supplier_id": "s1"},
        ],
        "shipments": [{"id": "SH-1", "supplier_id": "s0", "status": "in_transit"}],
    }


def approval(pid: str) -> dict[str, Any]:
    document = b"%PDF-1.7\n" + bytes(range(256)) * 8
    return {
        "procurement_id": pid,
        "approval_id": "A-1",
        "initiator": mxid("manager"),
        "document": {
            "type": "Торгово-коммерческий анализ (ТКА)",
            "number": "234/01-02",
            "series": "01",
            "valid_until": "2030-12-31",
            "filename": "TKA_234-01-02.pdf",
            "content_base64": base64.b64encode(document).decode(),
            "sha256": hashlib.sha256(document).hexdigest(),
        },
        "mode": "parallel",
        "group": "Комиссия закупки",
        "approvers": [mxid("comm0"), mxid("comm1")],
        "require_signature": False,
        "deadline": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
    }


# The stand ---------------------------------------------------------------------------------


@dataclass
class Stand:
    """Synapse, the registration, the tokens every bridge of the run shares."""

    work: Path
    synapse: LocalSynapse
    registered_port: int = field(default_factory=free_port)
    as_token: str = field(default_factory=lambda: uuid.uuid4().hex * 2)
    hs_token: str = field(default_factory=lambda: uuid.uuid4().hex * 2)
    webhook_secret: str = field(default_factory=new_whsec)
    read_token: str = field(default_factory=lambda: uuid.uuid4().hex)
    tokens: dict[str, str] = field(default_factory=dict)  # people's access tokens

    @property
    def registered_url(self) -> str:
        return f"http://127.0.0.1:{self.registered_port}"

    def write_config(self, directory: Path, database: str, port: int) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        data = {
            "homeserver": {"address": self.synapse.url, "domain": DOMAIN},
            "appservice": {
                "address": self.registered_url,
                "hostname": "127.0.0.1",
                "port": port,
                "id": "procurement",
                "bot": {"username": "procbot", "displayname": "Системный помощник"},
                "as_token": self.as_token,
                "hs_token": self.hs_token,
            },
            "database": database,
            "webhooks": {"secrets": [self.webhook_secret], "max_body_bytes": 1048576},
            "api": {"tokens": [{"token": self.read_token, "scopes": ["read", "documents"]}]},
            "bridge": {"locale": "ru"},
        }
        path = directory / "config.yaml"
        YAML().dump(data, path)
        config = Config(str(path), "pkg://bridge/example-config.yaml")
        config.load()
        config.update(save=True)
        return path

    async def start(self) -> None:
        config = Config(
            str(self.write_config(self.work / "registration", "sqlite:unused.db", 1)),
            "pkg://bridge/example-config.yaml",
        )
        config.load()
        registration = self.work / "registration.yaml"
        YAML().dump(config.registration(), registration)
        self.synapse.app_service_files = [registration]
        await self.synapse.start()
        for localpart in PEOPLE:
            login = await self.synapse.register(localpart, f"pw-{localpart}")
            self.tokens[localpart] = login["access_token"]


def load_config(path: Path) -> Config:
    config = Config(str(path), "pkg://bridge/example-config.yaml")
    config.load()
    return config


async def fresh_pg(name: str) -> str:
    conn = await asyncpg.connect(ADMIN_URL)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return ADMIN_URL.rsplit("/", 1)[0] + "/" + name


async def drop_pg(name: str) -> None:
    conn = await asyncpg.connect(ADMIN_URL)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


# (a) Reconcile -------------------------------------------------------------------------------


async def wait_quiet(core: BridgeCore, pid: str) -> None:
    """Until the procurement converged: every queue empty, the approval's card queued, and
    nothing new for QUIET_S."""
    queues: list[WorkQueue[Any]] = [core.inbox, core.webhooks, core.procurements, core.outbox]
    deadline = time.monotonic() + 300
    quiet_since: float | None = None
    while True:
        busy = any([await q.depth() for q in queues])
        # The card queued, and its reminders looked at (so copies carry when they are next).
        card = await core.db.fetchval(
            "SELECT card_outbox_id FROM approval WHERE procurement_id=$1 AND remind_at > 0", pid
        )
        if busy or card is None:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= QUIET_S:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"procurement {pid} did not converge in 300 s")
        await asyncio.sleep(0.1)


async def create_target(stand: Stand, directory: Path, database: str, pid: str) -> None:
    """The bridge makes the timed procurement for real, at the address Synapse delivers to."""
    core = BridgeCore(load_config(stand.write_config(directory, database, stand.registered_port)))
    await core.start()
    erp = ERP(stand.registered_url, stand.webhook_secret, stand.read_token)
    try:
        # Pictures uploaded later would send the procurement through another pass.
        while len(await core.reconciler.avatars()) < len(AVATAR_KINDS):  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        await erp.send("procurement.upserted", snapshot(pid, 1))
        await erp.send("approval.requested", approval(pid))
        await wait_quiet(core, pid)
    finally:
        await erp.close()
        await core.stop()


# Copies of the procurement, straight into the tables ---------------------------------------

CLONED = ("procurement", "stage_history", "managed_room", "room_state", "approval")
USER = re.compile(r"@[a-z0-9._=/-]+:" + re.escape(DOMAIN))


@dataclass
class Template:
    """The timed procurement's rows, each text cut where an id of it occurs, so a copy with
    other ids is a join."""

    tables: dict[str, tuple[list[str], list[list[Any]]]]
    tokens: list[str]
    pid: str
    room_ids: list[str]
    creation_ids: list[str]
    users: list[str]

    def ids_of(self, n: int) -> dict[str, str]:
        """Copy `n`'s id for each of the procurement's (same length where it matters)."""
        mapping = {self.pid: f"{self.pid}.c{n:05d}"}
        for room_id in self.room_ids:
            mapping[room_id] = f"!c{n:05d}{room_id[7:]}"
        for creation_id in self.creation_ids:
            mapping[creation_id] = f"{creation_id[:26]}c{n:05d}"
        for user in self.users:
            local = user[1:].split(":", 1)[0]
            mapping[user] = f"@{local}.c{n:05d}:{DOMAIN}"
        return mapping

    def rows(self, table: str, n: int) -> Iterator[tuple[Any, ...]]:
        mapping = self.ids_of(n)
        for row in self.tables[table][1]:
            yield tuple(
                "".join(mapping.get(p, p) if i % 2 else p for i, p in enumerate(value))
                if isinstance(value, list)
                else value
                for value in row
            )


def make_template(
    pid: str, tables: dict[str, tuple[list[str], list[tuple[Any, ...]]]]
) -> Template:
    rooms = tables["managed_room"]
    room_col, creation_col = rooms[0].index("room_id"), rooms[0].index("creation_id")
    room_ids = [r[room_col] for r in rooms[1] if r[room_col]]
    creation_ids = [r[creation_col] for r in rooms[1]]
    users: set[str] = set()
    for _, rows in tables.values():
        for row in rows:
            for value in row:
                if isinstance(value, str):
                    users.update(USER.findall(value))
    users.discard(BOT)
    tokens = sorted({pid, *room_ids, *creation_ids, *users}, key=len, reverse=True)
    splitter = re.compile("(" + "|".join(re.escape(t) for t in tokens) + ")")
    cut = {
        table: (
            columns,
            [
                [
                    splitter.split(v) if isinstance(v, str) and splitter.search(v) else v
                    for v in row
                ]
                for row in rows
            ],
        )
        for table, (columns, rows) in tables.items()
    }
    return Template(cut, tokens, pid, room_ids, creation_ids, sorted(users))


def _where(table: str) -> str:
    return (
        "room_id"
        if table == "room_state"
        else ("id" if table == "procurement" else "procurement_id")
    )


async def read_template_pg(url: str, pid: str) -> Template:
    conn = await asyncpg.connect(url)
    try:
        room_ids = [
            r["room_id"]
            for r in await conn.fetch(
                "SELECT room_id FROM managed_room WHERE procurement_id=$1 AND room_id IS NOT NULL",
                pid,
            )
        ]
        tables = {}
        for table in CLONED:
            if table == "room_state":
                rows = await conn.fetch(
                    "SELECT * FROM room_state WHERE room_id = ANY($1)", room_ids
                )
            else:
                rows = await conn.fetch(f"SELECT * FROM {table} WHERE {_where(table)}=$1", pid)  # noqa: S608
            columns = [c for c in rows[0].keys() if c != "seq"]  # noqa: SIM118 - a Record
            tables[table] = (columns, [tuple(r[c] for c in columns) for r in rows])
    finally:
        await conn.close()
    return make_template(pid, tables)


async def read_template_sqlite(path: Path, pid: str) -> Template:
    async with aiosqlite.connect(path) as conn:
        conn.row_factory = aiosqlite.Row
        rooms = await conn.execute_fetchall(
            "SELECT room_id FROM managed_room WHERE procurement_id=? AND room_id IS NOT NULL",
            (pid,),
        )
        room_ids = [r["room_id"] for r in rooms]
        tables = {}
        for table in CLONED:
            if table == "room_state":
                marks = ", ".join("?" * len(room_ids))
                sql = f"SELECT * FROM room_state WHERE room_id IN ({marks})"  # noqa: S608
                rows = list(await conn.execute_fetchall(sql, room_ids))
            else:
                sql = f"SELECT * FROM {table} WHERE {_where(table)}=?"  # noqa: S608
                rows = list(await conn.execute_fetchall(sql, (pid,)))
            columns = [c for c in rows[0].keys() if c != "seq"]  # noqa: SIM118 - a Row
            tables[table] = (columns, [tuple(r[c] for c in columns) for r in rows])
    return make_template(pid, tables)


CHUNK = 250


async def fill_pg(url: str, template: Template, copies: int) -> None:
    conn = await asyncpg.connect(url)
    try:
        for start in range(1, copies + 1, CHUNK):
            numbers = range(start, min(copies, start + CHUNK - 1) + 1)
            async with conn.transaction():
                for table in CLONED:
                    columns = template.tables[table][0]
                    records = [row for n in numbers for row in template.rows(table, n)]
                    await conn.copy_records_to_table(table, records=records, columns=columns)
        await conn.execute("VACUUM ANALYZE")  # what autovacuum does after a load
    finally:
        await conn.close()


async def fill_sqlite(path: Path, template: Template, copies: int) -> None:
    async with aiosqlite.connect(path) as conn:
        for start in range(1, copies + 1, CHUNK):
            numbers = range(start, min(copies, start + CHUNK - 1) + 1)
            for table in CLONED:
                columns = template.tables[table][0]
                sql = (
                    f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608
                    f"VALUES ({', '.join('?' * len(columns))})"
                )
                await conn.executemany(sql, [r for n in numbers for r in template.rows(table, n)])
            await conn.commit()


# Timing ------------------------------------------------------------------------------------


@dataclass
class Store:
    """One of the two stores under test, and its bridge."""

    label: str
    procurements: int
    pid: str
    core: BridgeCore
    raw_reads: Callable[[], Awaitable[None]]
    close_raw: Callable[[], Awaitable[None]]
    nothing: list[float] = field(default_factory=list)
    nothing_held: list[float] = field(default_factory=list)
    member: list[float] = field(default_factory=list)
    raw: list[float] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    timer_gates: dict[str, Any] = field(default_factory=dict)  # as the core set them
    timer_rounds: dict[str, list[float]] = field(default_factory=dict)  # timer → seconds

    @property
    def worker(self) -> QueueWorker[Any]:
        return next(w for w in self.core.workers if w.name == "reconcile")

    def hold_timers(self, held: bool) -> None:
        for timer in self.core.timers:
            timer.gate = _never if held else self.timer_gates[timer.name]  # type: ignore[attr-defined]

    async def pass_once(self) -> float:
        start = time.perf_counter()
        taken = await self.worker.run_once()
        await self.worker.drain()  # the pass runs in a slot of its own
        elapsed = time.perf_counter() - start
        assert taken == 1, f"{self.label}: {taken} procurements in one pass"
        return elapsed

    async def nothing_pass(self) -> float:
        await self.core.procurements.request_reconcile(self.pid, now_ms())
        return await self.pass_once()

    async def member_pass(self, leaver: Leaver) -> float:
        """The logistics person leaves the shipment's room (rejects the invite) and the store
        learns it as from the echo; the timed pass invites them back."""
        room_id = await self.core.rooms.room_id_of(self.pid, SHIPMENT)
        assert room_id is not None
        await leaver.leave(room_id)
        await self.core.rooms.set_state(room_id, "m.room.member", mxid(LEAVER), LEFT)
        await self.core.procurements.request_reconcile(self.pid, now_ms())
        elapsed = await self.pass_once()
        state = (await self.core.rooms.state_of([room_id]))[room_id]
        membership = state.get(("m.room.member", mxid(LEAVER)), {}).get("membership")
        assert membership == "invite", (self.label, membership)
        return elapsed


def raw_reads_pg(conn: asyncpg.Connection, pid: str) -> Callable[[], Awaitable[None]]:
    statements: dict[str, Any] = {}

    async def reads() -> None:
        if not statements:
            statements["procurement"] = await conn.prepare(
                "SELECT id, version, stage, snapshot FROM procurement WHERE id=$1"
            )
            statements["rooms"] = await conn.prepare(
                "SELECT procurement_id, room_key, room_id, is_space, creation_id, create_tried, "
                "party, create_tried_at FROM managed_room WHERE procurement_id=$1 "
                "ORDER BY room_key"
            )
            statements["state"] = await conn.prepare(
                "SELECT room_id, type, state_key, content FROM room_state "
                "WHERE room_id = ANY($1::text[])"
            )
            statements["approvals"] = await conn.prepare(
                "SELECT procurement_id, approval_id, request, card_outbox_id, poll_outbox_id, "
                "file_outbox_id, ended_at, outcome, cancel_reason, finished, awaiting_document, "
                "overdue_noticed FROM approval WHERE procurement_id=$1 ORDER BY created_at"
            )
        await statements["procurement"].fetchrow(pid)
        rooms = await statements["rooms"].fetch(pid)
        await statements["state"].fetch([r["room_id"] for r in rooms if r["room_id"]])
        await statements["approvals"].fetch(pid)

    return reads


def raw_reads_sqlite(conn: aiosqlite.Connection, pid: str) -> Callable[[], Awaitable[None]]:
    async def reads() -> None:
        await conn.execute_fetchall(
            "SELECT id, version, stage, snapshot FROM procurement WHERE id=?", (pid,)
        )
        rooms = await conn.execute_fetchall(
            "SELECT procurement_id, room_key, room_id, is_space, creation_id, create_tried, "
            "party, create_tried_at FROM managed_room WHERE procurement_id=? ORDER BY room_key",
            (pid,),
        )
        room_ids = [r[2] for r in rooms if r[2]]
        marks = ", ".join("?" * len(room_ids))
        await conn.execute_fetchall(
            f"SELECT room_id, type, state_key, content FROM room_state "  # noqa: S608
            f"WHERE room_id IN ({marks})",
            room_ids,
        )
        await conn.execute_fetchall(
            "SELECT procurement_id, approval_id, request, card_outbox_id, poll_outbox_id, "
            "file_outbox_id, ended_at, outcome, cancel_reason, finished, awaiting_document, "
            "overdue_noticed FROM approval WHERE procurement_id=? ORDER BY created_at",
            (pid,),
        )

    return reads


async def count_rows(core: BridgeCore) -> dict[str, int]:
    return {
        table: int(await core.db.fetchval(f"SELECT COUNT(*) FROM {table}"))  # noqa: S608
        for table in ("procurement", "managed_room", "room_state", "approval")
    }


class CallCounter:
    """Counts the homeserver calls a core makes while installed (the member pass's check)."""

    def __init__(self, core: BridgeCore) -> None:
        assert core.client is not None
        self.api = core.client.api
        self.calls: list[str] = []

    def __enter__(self) -> CallCounter:
        original = self.api.request

        async def counted(method: Any, path: Any, *args: Any, **kwargs: Any) -> Any:
            self.calls.append(f"{method} {path}")
            return await original(method, path, *args, **kwargs)

        self.api.request = counted  # type: ignore[method-assign]
        return self

    def __exit__(self, *_: object) -> None:
        del self.api.request  # the class's method again


LEFT = {"membership": "leave"}


class Leaver:
    """The logistics person, through their own client: rejects an invite."""

    def __init__(self, session: aiohttp.ClientSession, token: str) -> None:
        self.session = session
        self.headers = {"Authorization": f"Bearer {token}"}

    async def leave(self, room_id: str) -> None:
        async with self.session.post(
            f"/_matrix/client/v3/rooms/{room_id}/leave", json={}, headers=self.headers
        ) as resp:
            resp.raise_for_status()


class TwinRoom:
    """A room made with the shipment room's own createRoom body, not managed: the floor of a
    member pass is the same invite sent raw there, after the same person left."""

    def __init__(self, session: aiohttp.ClientSession, leaver: Leaver) -> None:
        self.session = session
        self.leaver = leaver
        self.room_id = ""
        self.times: list[float] = []

    async def create(self, pid: str) -> None:
        from bridge.domain.locale import Locale
        from bridge.domain.plan import plan_rooms
        from bridge.domain.snapshot import parse_snapshot

        plan = plan_rooms(parse_snapshot(snapshot(pid, 1)), (), frozenset(), Locale.RU)
        spec = plan.get(SHIPMENT)
        assert spec is not None
        body = create_room_body(
            spec,
            bot=BOT,  # type: ignore[arg-type]
            federate=False,
            creation_id=uuid.uuid4().hex,
            parent=None,
            avatar=None,
            invites=sorted(spec.members),
        )
        async with self.session.post("/_matrix/client/v3/createRoom", json=body) as resp:
            resp.raise_for_status()
            self.room_id = (await resp.json())["room_id"]

    async def change(self) -> float:
        await self.leaver.leave(self.room_id)
        start = time.perf_counter()
        async with self.session.post(
            f"/_matrix/client/v3/rooms/{self.room_id}/invite", json={"user_id": mxid(LEAVER)}
        ) as resp:
            resp.raise_for_status()
            await resp.read()
        return time.perf_counter() - start


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.2f} ms"


def p(values: Sequence[float], q: float) -> float:
    found = percentile(values, q)
    return float("nan") if found is None else found


def report_reconcile(kind: str, small: Store, large: Store, twin: TwinRoom, rooms: int) -> None:
    print(
        f"\nreconcile one procurement ({rooms} rooms and spaces, "
        f"{small.rows['room_state'] // small.procurements} state rows), {kind}"
    )
    print(f"{'':34}{'N=' + str(small.procurements):>22}{'N=' + str(large.procurements):>22}")
    print(
        f"{'  store: rooms / state rows':34}"
        f"{small.rows['managed_room']:>10} / {small.rows['room_state']:<9}"
        f"{large.rows['managed_room']:>10} / {large.rows['room_state']:<9}"
    )
    print(f"{'':34}{'p50':>11}{'p90':>11}{'p50':>11}{'p90':>11}{'ratio p50':>11}")

    def line(title: str, a: list[float], b: list[float]) -> None:
        ratio = statistics.median(b) / statistics.median(a)
        print(
            f"{title:34}{ms(p(a, 0.5)):>11}{ms(p(a, 0.9)):>11}{ms(p(b, 0.5)):>11}"
            f"{ms(p(b, 0.9)):>11}{ratio:>11.2f}"
        )

    line("  nothing to change: pass", small.nothing, large.nothing)
    line("    the same, timers held", small.nothing_held, large.nothing_held)
    line("    raw reads (floor)", small.raw, large.raw)
    line("  one member changed: pass", small.member, large.member)
    print(
        f"{'    raw invite (floor)':34}"
        f"{ms(p(twin.times, 0.5)):>11}{ms(p(twin.times, 0.9)):>11}"
        f"   (one twin room, the same run)"
    )
    ratio_nothing = statistics.median(large.nothing) / statistics.median(small.nothing)
    ratio_member = statistics.median(large.member) / statistics.median(small.member)
    print(
        f"  large/small: nothing {ratio_nothing:.2f}, one member {ratio_member:.2f}"
        "   (target ≤ 1.2)"
    )
    every = "every second (PostgreSQL)" if kind == "PostgreSQL" else "when woken, ≤ every 30 s"
    print(f"  each timer's round with nothing due, as the process runs it {every}:")
    for name in small.timer_rounds:
        a, b = small.timer_rounds[name], large.timer_rounds[name]
        print(
            f"    {name:<30}{ms(statistics.median(a)):>11}{'':>11}"
            f"{ms(statistics.median(b)):>11}{'':>11}"
            f"{statistics.median(b) / statistics.median(a):>11.1f}"
        )
    print(
        f"  bridge/floor at N={small.procurements}: nothing "
        f"{statistics.median(small.nothing) / statistics.median(small.raw):.1f}×, one member "
        f"{statistics.median(small.member) / statistics.median(twin.times):.2f}×",
        flush=True,
    )


async def open_store(
    stand: Stand, kind: str, label: str, directory: Path, database: str, pid: str, n: int
) -> Store:
    core = BridgeCore(load_config(stand.write_config(directory, database, free_port())))
    await core.start()
    if kind == "postgres":
        conn = await asyncpg.connect(database)
        reads, close = raw_reads_pg(conn, pid), conn.close
    else:
        sconn = await aiosqlite.connect(database.removeprefix("sqlite:"))
        reads, close = raw_reads_sqlite(sconn, pid), sconn.close
    store = Store(label, n, pid, core, reads, close)
    store.worker.gate = _never  # passes are run by the bench, one at a time
    store.timer_gates = {t.name: getattr(t, "gate", None) for t in core.timers}
    store.rows = await count_rows(core)
    return store


async def bench_reconcile(stand: Stand, kind: str, args: argparse.Namespace) -> None:
    sizes = {"small": 10, "large": args.procurements}
    databases: dict[str, str] = {}
    pids = {label: f"SC-{kind[:2].upper()}-{label}" for label in sizes}
    for label in sizes:
        if kind == "postgres":
            databases[label] = await fresh_pg(f"bench_scale_{label}")
        else:
            databases[label] = f"sqlite:{stand.work / kind / label / 'bridge.db'}"
    began = time.monotonic()
    for label in sizes:
        await create_target(stand, stand.work / kind / label, databases[label], pids[label])
    print(f"{kind}: both procurements made by the bridge in {time.monotonic() - began:.0f} s")
    for label, n in sizes.items():
        began = time.monotonic()
        if kind == "postgres":
            template = await read_template_pg(databases[label], pids[label])
            await fill_pg(databases[label], template, n - 1)
        else:
            path = Path(databases[label].removeprefix("sqlite:"))
            template = await read_template_sqlite(path, pids[label])
            await fill_sqlite(path, template, n - 1)
        print(
            f"{kind}: {label} store filled to {n} in {time.monotonic() - began:.0f} s", flush=True
        )
    stores = [
        await open_store(
            stand,
            kind,
            label,
            stand.work / kind / label,
            databases[label],
            pids[label],
            n,
        )
        for label, n in sizes.items()
    ]
    small, large = stores
    headers = {"Authorization": f"Bearer {stand.as_token}"}
    async with aiohttp.ClientSession(stand.synapse.url, headers=headers) as session:
        leaver = Leaver(session, stand.tokens[LEAVER])
        twin = TwinRoom(session, leaver)
        await twin.create(small.pid)
        try:
            await measure(stores, twin, leaver, args)
        finally:
            for store in stores:
                await store.close_raw()
                await store.core.stop()
    rooms = small.rows["managed_room"] // small.procurements
    report_reconcile("PostgreSQL" if kind == "postgres" else "SQLite", small, large, twin, rooms)
    if kind == "postgres":
        for label in sizes:
            await drop_pg(f"bench_scale_{label}")


async def measure(
    stores: list[Store], twin: TwinRoom, leaver: Leaver, args: argparse.Namespace
) -> None:
    for store in stores:
        # The member pass makes exactly one change at the homeserver: checked, not timed.
        with CallCounter(store.core) as counter:
            await store.member_pass(leaver)
        assert len(counter.calls) == 1, counter.calls
        assert "/invite" in counter.calls[0], counter.calls
        for _ in range(WARMUP_PASSES):
            await store.nothing_pass()
            await store.raw_reads()
    for _ in range(WARMUP_PASSES):
        await twin.change()

    def order(i: int) -> list[Store]:
        return stores if i % 2 == 0 else stores[::-1]

    for i in range(args.passes):
        for store in order(i):
            store.nothing.append(await store.nothing_pass())
            start = time.perf_counter()
            await store.raw_reads()
            store.raw.append(time.perf_counter() - start)
    for store in stores:
        store.hold_timers(True)
    for i in range(args.passes):
        for store in order(i):
            store.nothing_held.append(await store.nothing_pass())
    # One round of every timer with nothing due: what a process holding the timers' lease
    # does at least every second on PostgreSQL (at most every 30 s when idle on SQLite).
    for i in range(TIMER_ROUNDS):
        for store in order(i):
            for timer in store.core.timers:
                start = time.perf_counter()
                await timer.cycle()  # type: ignore[attr-defined]
                store.timer_rounds.setdefault(timer.name, []).append(time.perf_counter() - start)
    for store in stores:
        store.hold_timers(False)
    for i in range(args.member_passes):
        for store in order(i):
            store.member.append(await store.member_pass(leaver))
        twin.times.append(await twin.change())


def _never() -> bool:
    return False


# (b) Memory ------------------------------------------------------------------------------

CHAT = (
    "Поставка арматуры А500С 12 мм до {day} числа, {qty} т",
    "Счёт № {num} на {qty} т выставлен, проверьте реквизиты",
    "Машина будет к {hour}:00, водитель позвонит заранее",
    "Сертификаты качества на партию {num} приложим к отгрузке",
    "Коллеги, цена по позиции {num} выросла на {pct}%",
    "Принято, спасибо",
    "Документы по закупке загружены, посмотрите приложения",
    "Приёмка на объекте в {hour}:00, нужен представитель поставщика",
)


@dataclass(frozen=True)
class FeedRoom:
    room_id: str
    members: tuple[str, ...]


def generate(
    rooms: Sequence[FeedRoom], total: int, batch: int, seed: int
) -> Iterator[tuple[bytes, int]]:
    """Transactions as a homeserver sends them, with how many events each carries: the
    members' joins, then the rooms' talk."""
    rng = random.Random(seed)
    recent: dict[str, deque[tuple[str, str]]] = {r.room_id: deque(maxlen=50) for r in rooms}
    ts = int(time.time() * 1000)
    counter = 0

    def envelope(
        room: FeedRoom, sender: str, kind: str, content: dict[str, Any], **extra: Any
    ) -> dict[str, Any]:
        nonlocal counter, ts
        counter += 1
        ts += rng.randrange(1, 500)
        return {
            "event_id": f"$scale{counter:08d}{rng.getrandbits(32):08x}",
            "room_id": room.room_id,
            "sender": sender,
            "type": kind,
            "origin_server_ts": ts,
            "content": content,
            "unsigned": {"age": rng.randrange(0, 200)},
            **extra,
        }

    joins = [
        envelope(
            r,
            m,
            "m.room.member",
            {"membership": "join", "displayname": m[1:].split(":")[0]},
            state_key=m,
        )
        for r in rooms
        for m in r.members
    ]
    sent = 0
    pending: list[dict[str, Any]] = joins
    while sent < total:
        events: list[dict[str, Any]] = []
        ephemeral: list[dict[str, Any]] = []
        while pending and len(events) < batch and sent + len(events) < total:
            events.append(pending.pop(0))
        while len(events) + len(ephemeral) < batch and sent + len(events) + len(ephemeral) < total:
            room = rng.choice(rooms)
            sender = rng.choice(room.members)
            roll = rng.random()
            earlier = recent[room.room_id]
            if roll < 0.08 and earlier:
                event_id, _ = rng.choice(earlier)
                ephemeral.append(
                    {
                        "type": "m.receipt",
                        "room_id": room.room_id,
                        "content": {event_id: {"m.read": {sender: {"ts": ts}}}},
                    }
                )
                continue
            if roll < 0.13 and earlier:
                target, _ = rng.choice(earlier)
                reaction = {
                    "m.relates_to": {
                        "rel_type": "m.annotation",
                        "event_id": target,
                        "key": rng.choice(["👍", "👀", "✅"]),
                    }
                }
                events.append(envelope(room, sender, "m.reaction", reaction))
                continue
            body = rng.choice(CHAT).format(
                day=rng.randint(1, 28),
                qty=rng.randint(1, 90),
                num=rng.randint(10000, 99999),
                hour=rng.randint(8, 18),
                pct=rng.randint(2, 25),
            )
            mine = [e for e, s in earlier if s == sender]
            if roll < 0.18 and mine:
                content: dict[str, Any] = {
                    "msgtype": "m.text",
                    "body": f"* {body}",
                    "m.new_content": {"msgtype": "m.text", "body": body},
                    "m.relates_to": {"rel_type": "m.replace", "event_id": rng.choice(mine)},
                }
                events.append(envelope(room, sender, "m.room.message", content))
                continue
            event = envelope(room, sender, "m.room.message", {"msgtype": "m.text", "body": body})
            earlier.append((event["event_id"], sender))
            events.append(event)
        sent += len(events) + len(ephemeral)
        body = json.dumps({"events": events, "ephemeral": ephemeral}, ensure_ascii=False)
        yield body.encode(), len(events) + len(ephemeral)


def feeder(
    url: str,
    token: str,
    rooms: list[FeedRoom],
    total: int,
    batch: int,
    backlog: int,
    progress: multiprocessing.Queue[int | None],
) -> None:
    async def go() -> None:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        async with aiohttp.ClientSession(headers=headers) as session:
            fed = 0
            for n, (body, count) in enumerate(generate(rooms, total, batch, seed=1)):
                if n % 10 == 0:
                    while await events_waiting(session, url) > backlog:  # noqa: ASYNC110
                        await asyncio.sleep(0.2)  # the bridge's pace, nothing to be woken by
                while True:
                    try:
                        async with session.put(
                            f"{url}/_matrix/app/v1/transactions/scale{n}", data=body
                        ) as resp:
                            if resp.status == 200:
                                break
                            print(f"  (transaction {n}: {resp.status} {await resp.text()})")
                    except aiohttp.ClientError as e:
                        print(f"  (transaction {n}: {e!r})")
                    await asyncio.sleep(1.0)  # a homeserver's retry
                fed += count
                if n % 50 == 0:
                    progress.put(fed)
            progress.put(fed)
            progress.put(None)

    asyncio.run(go())


async def events_waiting(session: aiohttp.ClientSession, url: str) -> float:
    try:
        async with session.get(f"{url}/metrics") as resp:
            scrape = parse_metrics(await resp.text())
    except aiohttp.ClientError:
        return float("inf")
    return scrape.value("bridge_queue_depth", queue="events")


async def processed_events(session: aiohttp.ClientSession, url: str) -> tuple[float, float]:
    """(events processed, events waiting) from the process's /metrics."""
    async with session.get(f"{url}/metrics") as resp:
        scrape = parse_metrics(await resp.text())
    return (
        scrape.value("bridge_processed_total", queue="events"),
        scrape.value("bridge_queue_depth", queue="events"),
    )


async def bench_memory(stand: Stand, args: argparse.Namespace) -> None:
    name = "bench_scale_memory"
    database = await fresh_pg(name)
    directory = stand.work / "memory"
    config = stand.write_config(directory, database, stand.registered_port)
    bridge = BridgeProcess("bridge", config, stand.registered_url, directory / "bridge.log")
    pid = "MEM-1"
    try:
        await bridge.start()
        erp = ERP(stand.registered_url, stand.webhook_secret, stand.read_token)
        try:
            await erp.send("procurement.upserted", snapshot(pid, 1))
            await erp.send("approval.requested", approval(pid))
            rooms = await wait_rooms(database, pid)
        finally:
            await erp.close()
        await run_feed(stand, bridge, rooms, args)
    finally:
        bridge.stop()
        await drop_pg(name)


async def wait_rooms(database: str, pid: str) -> list[FeedRoom]:
    """The procurement's rooms and their members, once the bridge has made them all."""
    conn = await asyncpg.connect(database)
    try:
        deadline = time.monotonic() + 300
        while True:
            pending = await conn.fetchval(
                "SELECT COUNT(*) FROM procurement WHERE id=$1 AND status='done'", pid
            )
            rooms = await conn.fetch(
                "SELECT room_id FROM managed_room WHERE procurement_id=$1 AND NOT is_space "
                "AND room_id IS NOT NULL",
                pid,
            )
            card = await conn.fetchval(
                "SELECT card_outbox_id FROM approval WHERE procurement_id=$1", pid
            )
            if pending and card is not None and len(rooms) >= 9:
                break
            if time.monotonic() > deadline:
                raise TimeoutError("the memory bench's procurement did not converge")
            await asyncio.sleep(0.2)
        found = []
        for row in rooms:
            members = await conn.fetch(
                "SELECT state_key, content FROM room_state WHERE room_id=$1 "
                "AND type='m.room.member'",
                row["room_id"],
            )
            people = tuple(
                sorted(
                    m["state_key"]
                    for m in members
                    if m["state_key"] != BOT
                    and json.loads(m["content"]).get("membership") in ("invite", "join")
                )
            )
            if people:
                found.append(FeedRoom(row["room_id"], people))
        return found
    finally:
        await conn.close()


async def run_feed(
    stand: Stand, bridge: BridgeProcess, rooms: list[FeedRoom], args: argparse.Namespace
) -> None:
    progress: multiprocessing.Queue[int | None] = multiprocessing.Queue()
    process = multiprocessing.Process(
        target=feeder,
        args=(
            bridge.url,
            stand.hs_token,
            rooms,
            args.events,
            args.batch,
            args.backlog,
            progress,
        ),
        daemon=True,
    )
    began = time.monotonic()
    samples: list[tuple[float, int, float, float]] = []  # (s, rss, fed, processed)
    fed = 0.0
    processed_at_start: float | None = None
    process.start()
    feeding = True
    async with aiohttp.ClientSession() as session:
        while True:
            while not progress.empty():
                got = progress.get_nowait()
                if got is None:
                    feeding = False
                else:
                    fed = float(got)
            done, waiting = await processed_events(session, bridge.url)
            if processed_at_start is None:
                processed_at_start = done  # the procurement's own echoes
            rss = bridge.rss()
            if rss is None:
                raise RuntimeError(f"the bridge died: {bridge.tail()}")
            processed = done - processed_at_start
            samples.append((time.monotonic() - began, rss, fed, processed))
            if len(samples) % 30 == 0:
                print(
                    f"  {samples[-1][0]:6.0f} s: fed {fed:>9.0f}, processed {processed:>9.0f}, "
                    f"waiting {waiting:>7.0f}, RSS {mib(rss)} MiB",
                    flush=True,
                )
            if not feeding and waiting == 0 and not process.is_alive():
                break
            await asyncio.sleep(1.0)  # the sampling period
    process.join()
    report_memory(args, samples, fed)


def report_memory(
    args: argparse.Namespace, samples: list[tuple[float, int, float, float]], fed: float
) -> None:
    total = samples[-1][3]
    elapsed = samples[-1][0]

    def at(share: float) -> tuple[float, int, float, float]:
        return next(s for s in samples if s[3] >= share * total)

    warm = at(0.1)
    print(
        f"\nmemory over {fed:,.0f} homeserver events ({args.batch} a transaction), "
        f"PostgreSQL, one bridge process"
    )
    print(
        f"  {elapsed:.0f} s in all: {fed / elapsed:,.0f} events/s fed and processed "
        f"(at most {args.backlog:,} waiting)"
    )
    print(f"  {'processed':>12}{'time':>9}{'RSS':>12}")
    for share in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0):
        s = at(share)
        print(f"  {s[3]:>12,.0f}{s[0]:>8.0f}s{mib(s[1]):>9} MiB")
    peak = max(s[1] for s in samples)
    end = samples[-1][1]
    print(f"  RSS after warm-up (10 %): {mib(warm[1])} MiB")
    print(f"  RSS at the end:           {mib(end)} MiB   (peak {mib(peak).strip()} MiB)")
    print(f"  growth end/warm-up:       {end / warm[1]:6.3f}   (flat: ≤ 1.1)", flush=True)


# The run -----------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    logging.basicConfig(
        filename=work / "bench.log",
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    print(f"work directory: {work}", flush=True)
    stand = Stand(work, LocalSynapse(work / "synapse", server_name=DOMAIN))
    ok = False
    try:
        await stand.start()
        if args.part in ("reconcile", "both"):
            kinds = ["postgres", "sqlite"] if args.db == "both" else [args.db]
            for kind in kinds:
                await bench_reconcile(stand, kind, args)
        if args.part in ("memory", "both"):
            await bench_memory(stand, args)
        ok = True
    finally:
        stand.synapse.stop()
        if ok and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"work directory kept: {work}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--part", choices=["reconcile", "memory", "both"], default="both")
    parser.add_argument("--db", choices=["postgres", "sqlite", "both"], default="both")
    parser.add_argument("--procurements", type=int, default=10_000)
    parser.add_argument("--passes", type=int, default=100)
    parser.add_argument("--member-passes", type=int, default=40)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--backlog", type=int, default=20_000)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
