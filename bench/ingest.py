"""Transaction ingest on PostgreSQL: events/s stored through the HTTP endpoint vs raw asyncpg.

    .venv/bin/python bench/ingest.py [--transactions 300] [--events 100]

The bridge side is the production code path: aiohttp listener → hs_token check → JSON parse →
one database transaction (transaction id + every event) → 200. The load comes from a separate
process, one transaction at a time, as a homeserver sends them. The raw side stores the same
rows with the same statement straight through asyncpg. Both run now, on this machine; the ratio
is the figure to compare across machines.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import secrets
import time
import uuid

import aiohttp
import asyncpg
from aiohttp import web

from bridge.db import open_database
from bridge.db.audit import AuditLog
from bridge.db.inbox import Inbox, event_row
from bridge.localsynapse import free_port
from bridge.web.appservice import AppServiceAPI

ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"


def make_transactions(count: int, size: int) -> list[list[dict[str, object]]]:
    room = "!bench:localhost"
    return [
        [
            {
                "event_id": f"${uuid.uuid4().hex}",
                "room_id": room,
                "sender": "@alice:localhost",
                "type": "m.room.message",
                "origin_server_ts": 1700000000000 + i,
                "content": {"msgtype": "m.text", "body": f"Сообщение {t}-{i} по закупке 26908"},
            }
            for i in range(size)
        ]
        for t in range(count)
    ]


def send_all(url: str, token: str, bodies: list[bytes], result: multiprocessing.Queue) -> None:
    async def go() -> None:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        async with aiohttp.ClientSession(headers=headers) as session:
            start = time.perf_counter()
            for i, body in enumerate(bodies):
                async with session.put(f"{url}/_matrix/app/v1/transactions/b{i}", data=body) as r:
                    assert r.status == 200, await r.text()
            result.put(time.perf_counter() - start)

    asyncio.run(go())


async def fresh_database(name: str) -> str:
    conn = await asyncpg.connect(ADMIN_URL)
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return ADMIN_URL.rsplit("/", 1)[0] + "/" + name


async def bridge_rate(txns: list[list[dict[str, object]]]) -> float:
    url = await fresh_database("bench_ingest_bridge")
    db = open_database(url)
    await db.start()
    token = secrets.token_urlsafe(32)
    app = web.Application(client_max_size=64 * 1024 * 1024)
    AppServiceAPI(token, Inbox(db, AuditLog(db))).register(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    bodies = [json.dumps({"events": events}).encode() for events in txns]
    result: multiprocessing.Queue = multiprocessing.Queue()
    sender = multiprocessing.Process(
        target=send_all, args=(f"http://127.0.0.1:{port}", token, bodies, result)
    )
    sender.start()
    # The server runs on this loop; wait for the sender without blocking it.
    await asyncio.get_running_loop().run_in_executor(None, sender.join)
    elapsed = result.get()
    stored = await db.fetchval("SELECT COUNT(*) FROM matrix_event")
    assert stored == sum(len(t) for t in txns), stored
    await runner.cleanup()
    await db.stop()
    return stored / elapsed


async def raw_rate(txns: list[list[dict[str, object]]]) -> float:
    url = await fresh_database("bench_ingest_raw")
    db = open_database(url)
    await db.start()  # the same schema
    await db.stop()
    conn = await asyncpg.connect(url)
    rows = [[event_row(ev, False, 0) for ev in events] for events in txns]
    start = time.perf_counter()
    for i, batch in enumerate(rows):
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO hs_transaction (txn_id, received_at, event_count) VALUES ($1, 0, $2)",
                f"r{i}",
                len(batch),
            )
            await conn.execute(
                "INSERT INTO matrix_event (event_id, room_id, sender, type, state_key, "
                "origin_ts, event, ephemeral, received_at) "
                "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], "
                "$5::text[], $6::bigint[], $7::text[], $8::boolean[], $9::bigint[]) "
                "ON CONFLICT (event_id) DO NOTHING",
                *zip(*batch, strict=True),
            )
    elapsed = time.perf_counter() - start
    await conn.close()
    return sum(len(b) for b in rows) / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--transactions", type=int, default=300)
    parser.add_argument("--events", type=int, default=100)
    args = parser.parse_args()
    txns = make_transactions(args.transactions, args.events)
    raw = await raw_rate(txns)
    bridge = await bridge_rate(txns)
    print(f"transactions: {args.transactions} × {args.events} events, PostgreSQL")
    print(f"raw asyncpg insert:        {raw:10.0f} events/s")
    print(f"bridge HTTP endpoint:      {bridge:10.0f} events/s")
    print(f"ratio bridge/raw:          {bridge / raw:10.2f}   (target ≥ 0.5, and ≥ 5000 events/s)")


if __name__ == "__main__":
    asyncio.run(main())
