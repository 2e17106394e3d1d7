"""Leases and claims, the ground several processes share a database on: one holder at a time,
taken over once the holder stops renewing; a row worked on by one process only."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from mautrix.util.async_db import Database

from bridge.db import open_database
from bridge.db.audit import AuditLog
from bridge.db.callbacks import CallbackOutbox
from bridge.db.leases import Leases
from bridge.db.queue import LEASE_MS

from ..conftest import postgres_database


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = open_database(database_url)
    await database.start()
    yield database
    await database.stop()


async def test_a_lease_has_one_holder_until_it_runs_out(db: Database) -> None:
    leases = Leases(db)
    assert await leases.hold("timers", "a", now=1_000, until=16_000)
    assert not await leases.hold("timers", "b", now=2_000, until=17_000)
    assert await leases.hold("timers", "a", now=6_000, until=21_000)  # renewed
    assert not await leases.hold("timers", "b", now=20_000, until=35_000)
    assert await leases.hold("timers", "b", now=21_001, until=36_000)  # ran out: taken over
    assert not await leases.hold("timers", "a", now=22_000, until=37_000)
    await leases.let_go("timers", "b")
    assert await leases.hold("timers", "a", now=23_000, until=38_000)  # given up: at once


async def test_a_row_is_worked_on_by_one_process_at_a_time() -> None:
    async with postgres_database() as url:
        database = open_database(url)
        await database.start()
        try:
            first, second = (
                CallbackOutbox(database, AuditLog(database)),
                CallbackOutbox(database, AuditLog(database)),
            )
            first.owner, second.owner = "first", "second"
            for n in range(4):
                await first.enqueue(f"key-{n}", f"P-{n}", "vote.completed", {}, now=0)
            due = await first.due(now=1)
            assert len(due) == 4
            taken = await first.claim(due, now=1)
            assert len(taken) == 4
            assert await second.claim(await second.due(now=2), now=2) == []
            assert await second.due(now=2) == []  # claimed rows are not due for others
            await first.release(taken[0].key)
            assert [c.key for c in await second.due(now=3)] == [taken[0].key]
            # The first stops renewing (killed): its claims run out and the second takes them.
            later = 1 + LEASE_MS + 1
            assert len(await second.claim(await second.due(now=later), now=later)) == 4
            await first.renew(now=later)  # too late: the rows are the second's now
            assert await first.claim(await first.due(now=later + 1), now=later + 1) == []
        finally:
            await database.stop()


async def test_a_claim_whose_release_was_lost_runs_out_though_its_process_lives() -> None:
    # The database went away just as the row was let go: the release never reached it. The
    # process lives on renewing what it works on; the row must not be held with it forever.
    async with postgres_database() as url:
        database = open_database(url)
        await database.start()
        try:
            outbox = CallbackOutbox(database, AuditLog(database))
            outbox.owner = "first"
            for n in range(2):
                await outbox.enqueue(f"key-{n}", f"P-{n}", "vote.completed", {}, now=0)
            lost, working = await outbox.claim(await outbox.due(now=1), now=1)
            real_execute = database.execute

            async def database_gone(*_: object, **__: object) -> None:
                raise ConnectionRefusedError("the database is restarting")

            database.execute = database_gone  # type: ignore[method-assign]
            with pytest.raises(ConnectionRefusedError):
                await outbox.release(lost.key)
            database.execute = real_execute  # type: ignore[method-assign]

            later = 1 + LEASE_MS - 1
            await outbox.renew(now=later)  # the row still in hand is kept, the other is not
            after = later + LEASE_MS - 1
            assert [c.key for c in await outbox.due(now=after)] == [lost.key]
            assert [c.key for c in await outbox.claim(await outbox.due(now=after), now=after)] == [
                lost.key
            ]
            assert working.key not in [c.key for c in await outbox.due(now=after)]
        finally:
            await database.stop()
