"""Two processes writing one SQLite file (the running bridge and an operator's command, such
as `audit export`): a transaction that reads before it writes waits for the other writer
instead of failing with "database is locked"."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mautrix.util.async_db import Database, UpgradeTable

from bridge.db.transaction import transaction


@pytest.fixture
async def two_processes(tmp_path: Path) -> AsyncIterator[tuple[Database, Database]]:
    url = f"sqlite:{tmp_path / 'bridge.db'}"
    first, second = (Database.create(url, upgrade_table=UpgradeTable()) for _ in range(2))
    await first.start()
    await second.start()
    await first.execute("CREATE TABLE head (size INTEGER NOT NULL)")
    await first.execute("INSERT INTO head VALUES (0)")
    yield first, second
    await first.stop()
    await second.stop()


async def test_a_read_then_write_waits_for_the_other_writer(
    two_processes: tuple[Database, Database],
) -> None:
    first, second = two_processes
    other: asyncio.Task[object] | None = None
    async with transaction(first):
        size = await first.fetchval("SELECT size FROM head")
        # The other process writes while this transaction has read and not yet written.
        other = asyncio.create_task(
            second.execute("UPDATE head SET size = size + 10"), context=contextvars.Context()
        )
        await asyncio.wait({other}, timeout=0.3)  # its chance to get in between
        await first.execute("UPDATE head SET size = $1", size + 1)
    await other
    assert await first.fetchval("SELECT size FROM head") == 11


async def test_a_cancelled_transaction_leaves_the_connection_usable(
    two_processes: tuple[Database, Database],
) -> None:
    first, _ = two_processes
    written = asyncio.Event()

    async def write_forever() -> None:
        async with transaction(first):
            await first.execute("UPDATE head SET size = 5")
            written.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(write_forever())
    await written.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with transaction(first):
        await first.execute("UPDATE head SET size = size + 1")
    assert await first.fetchval("SELECT size FROM head") == 1
