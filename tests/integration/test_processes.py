"""Two bridge processes on one PostgreSQL behind a load balancer, against a real homeserver: the
work spreads over both, one killed with SIGKILL mid-stream loses nothing and doubles nothing,
each procurement's order holds, and a vote closes once at its deadline."""

from __future__ import annotations

import base64
import itertools
import os
import signal
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import web

from bridge.localsynapse import LocalSynapse, free_port

from ..bridge_process import BridgeProcess
from ..cast import make_cast
from ..conftest import Deployment, postgres_database
from ..erp import ERP
from ..local_server import LocalServer
from ..receiver import Receiver
from ..waiting import wait_for
from .test_votes import RESPONSE, answer, commission_room, from_bot, vote_request

DOCUMENTS = 16


class Balancer(LocalServer):
    """What stands in front of several bridge processes (a reverse proxy): requests go round
    robin, and to the next process when one does not answer."""

    def __init__(self, port: int, backends: list[str]) -> None:
        super().__init__(port)
        self.backends = backends
        self.turn = itertools.cycle(range(len(backends)))
        self.session: aiohttp.ClientSession | None = None

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{path:.*}", self.forward)

    async def start(self) -> None:
        self.session = aiohttp.ClientSession(auto_decompress=False)
        await super().start()

    async def stop(self) -> None:
        await super().stop()
        if self.session:
            await self.session.close()

    async def forward(self, request: web.Request) -> web.Response:
        assert self.session is not None
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host",)}
        for _ in self.backends:
            backend = self.backends[next(self.turn)]
            try:
                async with self.session.request(
                    request.method, backend + request.path_qs, headers=headers, data=body
                ) as resp:
                    kept = {"Content-Type": resp.headers.get("Content-Type", "")}
                    return web.Response(status=resp.status, body=await resp.read(), headers=kept)
            except aiohttp.ClientConnectionError:
                continue
        return web.Response(status=502)


@pytest.fixture
async def shared_database() -> AsyncIterator[str]:
    async with postgres_database() as url:
        yield url


def holder_pid(holder: str) -> int:
    return int(holder.split(":")[1])


async def lease_holders(database: str) -> dict[str, str]:
    conn = await asyncpg.connect(database)
    try:
        rows = await conn.fetch(
            "SELECT name, holder FROM lease WHERE until > $1 AND name NOT LIKE 'process:%'",
            int(datetime.now(UTC).timestamp() * 1000),
        )
    finally:
        await conn.close()
    return {r["name"]: r["holder"] for r in rows}


async def processed(url: str) -> float:
    async with aiohttp.ClientSession() as session, session.get(f"{url}/metrics") as resp:
        text = await resp.text()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("bridge_processed_total{")
    )


def published(procurement_id: str, n: int) -> dict[str, Any]:
    return {
        "procurement_id": procurement_id,
        "room": "org",
        "document": {
            "type": "Письмо",
            "filename": f"письмо-{n:02d}.pdf",
            "content_base64": base64.b64encode(f"%PDF letter {n}".encode()).decode(),
        },
    }


async def test_two_processes_share_the_work_and_a_killed_one_loses_nothing(
    synapse: LocalSynapse,
    deployment: Deployment,
    shared_database: str,
    receiver: Receiver,
    user_factory: Any,
    tmp_path: Path,
) -> None:
    ports = [free_port(), free_port()]
    processes = []
    for n, port in enumerate(ports):
        config = deployment.write_config(
            tmp_path / f"bridge-{n}.yaml",
            shared_database,
            appservice__port=port,
            callbacks__url=receiver.url,
            audit__key=str(tmp_path / "audit.key"),
        )
        processes.append(BridgeProcess(Path(config.path), f"http://127.0.0.1:{port}"))
    await processes[0].start()  # the first makes the log's key; the second uses it
    await processes[1].start()
    balancer = Balancer(deployment.bridge_port, [p.url for p in processes])
    await balancer.start()
    erp = ERP(deployment.bridge_url, deployment.webhook_secret, deployment.api_token)
    try:
        await _share_and_survive(processes, shared_database, erp, receiver, user_factory)
    finally:
        await balancer.stop()
        for process in processes:
            process.kill()


async def _share_and_survive(
    processes: list[BridgeProcess],
    database: str,
    erp: ERP,
    receiver: Receiver,
    user_factory: Any,
) -> None:
    cast = await make_cast(user_factory, suppliers=2, commission=3)
    await erp.upsert(cast.snapshot("commission"))
    room_id = await commission_room(cast)
    org = await wait_for(lambda: cast.manager.joined_key("org"), what="the organisation chat")
    closes = datetime.now(UTC) + timedelta(seconds=25)
    request = vote_request(cast, "V-9", quorum=2) | {"closes_at": closes.isoformat()}
    assert (await erp.send("vote.requested", request))[0] == 202
    poll = await cast.manager.wait_for_event(room_id, from_bot("org.matrix.msc3381.poll.start"))

    for n in range(DOCUMENTS // 2):
        assert (await erp.send("document.published", published(cast.procurement_id, n)))[0] == 202
    await cast.commission[0].send_event(room_id, RESPONSE, answer(poll["event_id"], "for"))

    # Both did work; the one running the webhooks dies mid-stream, as in a power cut.
    pids = {_pid(p) for p in processes}
    holders = await wait_for(lambda: _shared(database, pids), what="the leases shared")
    victim = next(p for p in processes if _pid(p) == holder_pid(holders["webhooks"]))
    survivor = next(p for p in processes if p is not victim)
    await wait_for(lambda: _has_worked(victim), what="work done by the one to be killed")
    await wait_for(lambda: _has_worked(survivor), what="work done by the other")
    assert victim.process is not None
    os.killpg(victim.process.pid, signal.SIGKILL)
    victim.process.wait()

    # The survivor takes over what only one process at a time runs, within a lease's time.
    await wait_for(
        lambda: _all_held_by(database, _pid(survivor)), timeout=20, what="the leases taken over"
    )
    for n in range(DOCUMENTS // 2, DOCUMENTS):
        assert (await erp.send("document.published", published(cast.procurement_id, n)))[0] == 202
    await cast.commission[1].send_event(room_id, RESPONSE, answer(poll["event_id"], "against"))

    # Every letter once, in the order the procurement system sent them.
    names = [f"письмо-{n:02d}.pdf" for n in range(DOCUMENTS)]

    async def letters() -> list[str] | None:
        await cast.manager.sync()
        seen = [
            e["content"].get("body")
            for e in cast.manager.timeline.get(org, [])
            if e["type"] == "m.room.message" and e["content"].get("msgtype") == "m.file"
        ]
        return seen if len(seen) >= DOCUMENTS else None

    seen = await wait_for(letters, timeout=60, what="every letter posted")
    assert seen == names

    # The vote closes once, at its deadline, by whichever process runs the timers now.
    await wait_for(
        lambda: [r for r in receiver.delivered() if r.body["type"] == "vote.completed"],
        timeout=90,
        what="the vote's result",
    )
    end = await cast.manager.wait_for_event(room_id, from_bot("org.matrix.msc3381.poll.end"))
    completed = [r for r in receiver.delivered() if r.body["type"] == "vote.completed"]
    assert len({r.webhook_id for r in completed}) == 1
    assert completed[0].body["data"]["closed_by"] == "deadline"
    ends = [
        e
        for e in cast.manager.timeline.get(room_id, [])
        if e["type"] == "org.matrix.msc3381.poll.end" and e["sender"] == end["sender"]
    ]
    assert len(ends) == 1


def _pid(process: BridgeProcess) -> int:
    assert process.process is not None
    return process.process.pid


async def _all_held_by(database: str, pid: int) -> bool:
    holders = await lease_holders(database)
    return len(holders) == 3 and all(holder_pid(h) == pid for h in holders.values())


async def _shared(database: str, pids: set[int]) -> dict[str, str] | None:
    """The leases, once each process holds some of them."""
    holders = await lease_holders(database)
    if not {"events", "webhooks", "timers"} <= set(holders):
        return None
    return holders if {holder_pid(h) for h in holders.values()} == pids else None


async def _has_worked(process: BridgeProcess) -> bool:
    return await processed(process.url) > 0
