"""Signed webhook ingest on PostgreSQL: webhooks/s stored through the endpoint vs raw asyncpg.

    .venv/bin/python bench/webhooks.py [--webhooks 4000] [--concurrency 16]

The bridge side is the production path: aiohttp listener → Content-Type and size checks →
Standard Webhooks signature (constant time) → JSON → schema validation into domain values →
durable insert → 202. The load comes from another process with `--concurrency` requests in
flight, as an ERP pushing a backlog. The raw side inserts the same rows with the same
concurrency straight through an asyncpg pool. The ratio is the figure to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web
from standardwebhooks import Webhook

from bridge.config import new_whsec
from bridge.db import open_database
from bridge.db.audit import AuditLog
from bridge.db.webhooks import WebhookInbox
from bridge.localsynapse import free_port
from bridge.web.auth import ApiAuth
from bridge.web.webhooks import WebhookAPI

ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"


def bodies(count: int) -> list[bytes]:
    def snapshot(i: int) -> dict[str, Any]:
        return {
            "type": "procurement.upserted",
            "data": {
                "id": f"P{i % 200}",
                "version": i,
                "title": "Поставка арматуры А500С",
                "stage": "offers",
                "manager": "@konovalov:corp.example",
                "suppliers": [
                    {
                        "id": f"s{j}",
                        "name": f"ООО «Поставщик {j}»",
                        "members": [f"@s{j}m0:corp.example"],
                    }
                    for j in range(5)
                ],
            },
        }

    return [json.dumps(snapshot(i), ensure_ascii=False).encode() for i in range(count)]


def send_all(
    url: str, secret: str, payloads: list[bytes], concurrency: int, out: multiprocessing.Queue
) -> None:
    signer = Webhook(secret)

    async def go() -> None:
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        for body in payloads:
            queue.put_nowait(body)
        async with aiohttp.ClientSession() as session:

            async def worker() -> None:
                while not queue.empty():
                    body = queue.get_nowait()
                    msg_id = f"msg_{uuid.uuid4().hex}"
                    now = int(time.time())
                    headers = {
                        "webhook-id": msg_id,
                        "webhook-timestamp": str(now),
                        "webhook-signature": signer.sign(
                            msg_id, datetime.fromtimestamp(now, UTC), body.decode()
                        ),
                        "Content-Type": "application/json",
                    }
                    async with session.post(url, data=body, headers=headers) as resp:
                        assert resp.status == 202, await resp.text()

            start = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            out.put(time.perf_counter() - start)

    asyncio.run(go())


async def fresh_database(name: str) -> str:
    conn = await asyncpg.connect(ADMIN_URL)
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return ADMIN_URL.rsplit("/", 1)[0] + "/" + name


async def bridge_rate(payloads: list[bytes], concurrency: int) -> float:
    url = await fresh_database("bench_webhooks_bridge")
    db = open_database(url, {"max_size": concurrency})
    await db.start()
    secret = new_whsec()
    # The bridge's own middleware stack: the API's auth runs on every request.
    auth = ApiAuth([])
    app = web.Application(middlewares=[auth.middleware])
    WebhookAPI([secret], 1048576, WebhookInbox(db, AuditLog(db))).register(app, auth)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    out: multiprocessing.Queue = multiprocessing.Queue()
    sender = multiprocessing.Process(
        target=send_all,
        args=(f"http://127.0.0.1:{port}/api/v1/webhooks", secret, payloads, concurrency, out),
    )
    sender.start()
    await asyncio.get_running_loop().run_in_executor(None, sender.join)
    elapsed = out.get()
    stored = await db.fetchval("SELECT COUNT(*) FROM webhook")
    assert stored == len(payloads), stored
    await runner.cleanup()
    await db.stop()
    return stored / elapsed


async def raw_rate(payloads: list[bytes], concurrency: int) -> float:
    url = await fresh_database("bench_webhooks_raw")
    db = open_database(url)
    await db.start()  # the same schema
    await db.stop()
    pool = await asyncpg.create_pool(url, min_size=concurrency, max_size=concurrency)
    rows = [(f"msg_{uuid.uuid4().hex}", json.loads(b)["data"]["id"], b.decode()) for b in payloads]
    queue: asyncio.Queue[tuple[str, str, str]] = asyncio.Queue()
    for row in rows:
        queue.put_nowait(row)

    async def worker() -> None:
        while not queue.empty():
            webhook_id, procurement_id, body = queue.get_nowait()
            await pool.execute(
                "INSERT INTO webhook (webhook_id, type, procurement_id, body, received_at) "
                "VALUES ($1, 'procurement.upserted', $2, $3, 0) "
                "ON CONFLICT (webhook_id) DO NOTHING",
                webhook_id,
                procurement_id,
                body,
            )

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    await pool.close()
    return len(rows) / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--webhooks", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    payloads = bodies(args.webhooks)
    raw = await raw_rate(payloads, args.concurrency)
    bridge = await bridge_rate(payloads, args.concurrency)
    print(f"webhooks: {args.webhooks} snapshots, {args.concurrency} in flight, PostgreSQL")
    print(f"raw asyncpg insert:     {raw:8.0f} /s")
    print(f"bridge signed endpoint: {bridge:8.0f} /s")
    print(f"ratio bridge/raw:       {bridge / raw:8.2f}   (target ≥ 2000/s stored)")


if __name__ == "__main__":
    asyncio.run(main())
