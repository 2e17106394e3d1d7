"""Consumes a durable queue: at least once, each item on its own, retried while the failure is
transient, parked with its reason when it is permanent."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from typing import Generic, Protocol, TypeVar

from . import metrics
from .background import IDLE_S, Background
from .db.queue import WorkQueue
from .retry import DEFAULT_MAX_BACKOFF_S, Failure, backoff_ms, classify


class Work(Protocol):
    @property
    def key(self) -> int: ...
    @property
    def attempts(self) -> int: ...
    @property
    def label(self) -> str: ...
    @property
    def received_at(self) -> int: ...


W = TypeVar("W", bound=Work)


def now_ms() -> int:
    return int(time.time() * 1000)


def from_ms(ts: int) -> datetime:
    """A homeserver or database timestamp (ms since the epoch) as an aware datetime."""
    return datetime.fromtimestamp(ts / 1000, UTC)


class QueueWorker(Background, Generic[W]):
    """`max_attempts` bounds only unexpected failures (a fault of the bridge); None never parks
    them. Transient failures wait out a backoff capped at `max_backoff_s`, however long."""

    def __init__(
        self,
        name: str,
        queue: WorkQueue[W],
        fetch_due: Callable[[int], Awaitable[list[W]]],
        handle: Callable[[W], Awaitable[None]],
        max_attempts: int | None,
        *,
        max_backoff_s: float = DEFAULT_MAX_BACKOFF_S,
        concurrency: int = 1,
    ) -> None:
        super().__init__(name, logging.getLogger(f"bridge.worker.{name}"), max_backoff_s)
        self.queue = queue
        queue.on_new_work = self.wake
        self.fetch_due = fetch_due
        self.handle = handle
        self.max_attempts = max_attempts
        self.concurrency = concurrency
        # Told of every failure that may pass (core: look whether the homeserver is there).
        self.on_transient: Callable[[], None] = _nothing
        self._running: dict[int, asyncio.Task[None]] = {}  # key → its item in flight

    async def cycle(self) -> float:
        if await self.run_once():
            return 0  # more may be due right away
        if self._running:
            # Items in flight are pending rows too: a finishing one or new work wakes the loop.
            return IDLE_S
        due = await self.queue.next_due_at()
        return IDLE_S if due is None else (due - now_ms()) / 1000

    async def run_once(self) -> int:
        """Takes the items due now; returns how many were taken. One at a time, each done
        before this returns; with `concurrency` > 1 each is started in a slot of its own and
        a slot freed takes the next item at once, so a slow item holds up no other."""
        now = now_ms()
        if self.concurrency > 1:
            return await self._fill_slots(now)
        items = await self.queue.claim(await self.fetch_due(now), now)
        started = 0
        try:
            for item in items:
                if self.stopping or (self.gate is not None and not self.gate()):
                    break  # stopped, or another process runs this queue now: the rest is theirs
                started += 1
                await self._process(item)  # lets its own item go, whatever happens
        finally:
            # Also when an item's outcome could not be written (the database away): the rest
            # is not kept in hand, renewed, by a loop that no longer works on it.
            await self.queue.release(*(item.key for item in items[started:]))
        return started

    async def _fill_slots(self, now: int) -> int:
        free = self.concurrency - len(self._running)
        if free <= 0 or self.stopping:
            return 0
        due = [item for item in await self.fetch_due(now) if item.key not in self._running]
        items = await self.queue.claim(due[:free], now)
        for item in items:
            task = asyncio.create_task(self._process(item), name=f"{self.name}:{item.key}")
            self._running[item.key] = task
            task.add_done_callback(partial(self._slot_freed, item.key))
        return len(items)

    def _slot_freed(self, key: int, _: asyncio.Task[None]) -> None:
        self._running.pop(key, None)
        self.wake()

    async def drain(self) -> None:
        """Until every item in flight is done."""
        while self._running:
            await asyncio.gather(*self._running.values())

    async def stop(self) -> None:
        await super().stop()
        await self.drain()

    async def _process(self, item: W) -> None:
        try:
            try:
                await self.handle(item)
            except Exception as e:
                await self._failed(item, e)
                return
            now = now_ms()
            await self.queue.mark_done(item, now)
        finally:
            # Also when the outcome could not be written (the database away): the row is not
            # kept from the others, nor from this process, once its claim runs out.
            await self.queue.release(item.key)
        metrics.PROCESSED.labels(self.name).inc()
        metrics.LATENCY.labels(self.name).observe(max(0, now - item.received_at) / 1000)

    async def _failed(self, item: W, error: Exception) -> None:
        failure = classify(error)
        attempts = item.attempts + 1
        dead = failure is Failure.PERMANENT or (
            failure is Failure.UNEXPECTED
            and self.max_attempts is not None
            and attempts >= self.max_attempts
        )
        metrics.FAILED.labels(self.name).inc()
        if failure is Failure.TRANSIENT:
            self.on_transient()
        message = "%s %s failed (%s, attempt %d)%s"
        args = (self.name, item.label, failure.value, attempts, ", parked" if dead else "")
        if failure is Failure.TRANSIENT:
            # Expected while a peer is down: one line, no traceback.
            self.log.warning(message + ": %s", *args, error)
        elif failure is Failure.PERMANENT:
            # A refusal for good is about the item, not a fault of the bridge: its reason is
            # what the operator needs (and what the dead letter keeps), not a traceback.
            self.log.error(message + ": %s", *args, error)
        else:
            self.log.exception(message, *args)
        await self.queue.mark_failed(
            item.key,
            f"{type(error).__name__}: {error}",
            now_ms() + backoff_ms(attempts, self.max_backoff_s),
            dead,
        )


def _nothing() -> None:
    pass
