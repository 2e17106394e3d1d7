"""Schema v5: several bridge processes on one database — claims on the rows of the queues
whose work is spread over every process, leases for what one process at a time does. Frozen
once released: never edit this file, add a new version instead."""

from __future__ import annotations

from mautrix.util.async_db import Connection, Scheme

QUEUES = (
    "matrix_event",
    "webhook",
    "matrix_outbox",
    "callback_outbox",
    "procurement",
    "document_fetch",
    "reminder",
)


async def upgrade(conn: Connection, scheme: Scheme) -> None:
    # A row a process is working on: nobody else takes it until `claimed_until` (ms) has
    # passed; the holder renews it while it works, so a killed process's rows free up soon.
    for table in QUEUES:
        await conn.execute(f"ALTER TABLE {table} ADD COLUMN claimed_by TEXT")
        await conn.execute(
            f"ALTER TABLE {table} ADD COLUMN claimed_until BIGINT NOT NULL DEFAULT 0"
        )
    # Work one process at a time does (an ordered queue's consumer, the timers), by name.
    await conn.execute(
        """CREATE TABLE lease (
            name    TEXT PRIMARY KEY,
            holder  TEXT NOT NULL,
            until   BIGINT NOT NULL
        )"""
    )
    # The response-time report reads supplier chats' messages by time.
    await conn.execute("CREATE INDEX matrix_event_by_time ON matrix_event (type, origin_ts)")
