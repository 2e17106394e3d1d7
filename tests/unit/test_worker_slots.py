"""A queue worker with several slots: a slow item holds up no other, and never more than
`concurrency` items are in flight."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest

from bridge.worker import QueueWorker


@dataclass(frozen=True)
class Item:
    key: int
    attempts: int = 0
    label: str = "procurement"
    received_at: int = 0


class Queue:
    """Pending rows in memory; claims and marks as a store would keep them."""

    on_new_work: Any = None

    def __init__(self, keys: list[int]) -> None:
        self.pending = {k: Item(k) for k in keys}
        self.done: list[int] = []
        self.released: list[int] = []
        self.changed = asyncio.Condition()

    async def until(self, condition: Any) -> None:
        async with asyncio.timeout(10), self.changed:
            await self.changed.wait_for(condition)

    async def due(self, _now: int) -> list[Item]:
        return sorted(self.pending.values(), key=lambda i: i.key)

    async def claim(self, items: list[Item], _now: int) -> list[Item]:
        return items

    async def release(self, *keys: int) -> None:
        self.released.extend(keys)

    async def mark_done(self, item: Item, _now: int) -> None:
        self.pending.pop(item.key, None)
        self.done.append(item.key)
        async with self.changed:
            self.changed.notify_all()

    async def next_due_at(self) -> int | None:
        return 0 if self.pending else None


async def test_a_slow_item_holds_up_no_other_and_slots_are_bounded() -> None:
    queue = Queue([1, 2, 3])
    slow_may_end = asyncio.Event()
    in_flight = 0
    most_in_flight = 0

    async def handle(item: Item) -> None:
        nonlocal in_flight, most_in_flight
        in_flight += 1
        most_in_flight = max(most_in_flight, in_flight)
        try:
            if item.key == 1:
                await slow_may_end.wait()  # a pass stuck on a slow homeserver
            else:
                await asyncio.sleep(0)
        finally:
            in_flight -= 1

    worker: QueueWorker[Any] = QueueWorker(
        "reconcile",
        queue,  # type: ignore[arg-type]
        queue.due,
        handle,
        None,
        concurrency=3,
    )
    worker.start()
    try:
        await queue.until(lambda: len(queue.done) == 2)
        # Work that comes while the slow item is in flight is done meanwhile.
        queue.pending |= {k: Item(k) for k in range(4, 11)}
        worker.wake()
        await queue.until(lambda: len(queue.done) == 9)
        assert sorted(queue.done) == list(range(2, 11))
        assert 1 in queue.pending
        assert most_in_flight <= 3
        slow_may_end.set()
        await queue.until(lambda: 1 not in queue.pending)
    finally:
        slow_may_end.set()
        await worker.stop()
    assert sorted(queue.done) == list(range(1, 11))
    assert queue.done.count(1) == 1  # an item in flight is never taken a second time


async def test_items_claimed_together_are_let_go_when_one_cannot_be_recorded() -> None:
    # The database goes away as the first item is marked done: the items claimed with it are
    # let go, not kept in hand (and renewed) by a loop that no longer works on them.
    queue = Queue([1, 2, 3])

    async def database_gone(_item: Item, _now: int) -> None:
        raise ConnectionRefusedError("the database is restarting")

    queue.mark_done = database_gone  # type: ignore[method-assign]

    async def handle(_item: Item) -> None:
        pass

    worker: QueueWorker[Any] = QueueWorker(
        "outbox",
        queue,  # type: ignore[arg-type]
        queue.due,
        handle,
        None,
    )
    with pytest.raises(ConnectionRefusedError):
        await worker.run_once()
    assert set(queue.released) == {1, 2, 3}
