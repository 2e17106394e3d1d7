"""Consumes a durable queue: at least once, each item on its own, retried while the failure is
transient, parked with its reason when it is permanent."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Generic, Protocol, TypeVar

from . import metrics
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

IDLE_POLL_S = 30.0


def now_ms() -> int:
    return int(time.time() * 1000)


def from_ms(ts: int) -> datetime:
    """A homeserver or database timestamp (ms since the epoch) as an aware datetime."""
    return datetime.fromtimestamp(ts / 1000, UTC)


class QueueWorker(Generic[W]):
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
        self.name = name
        self.queue = queue
        queue.on_new_work = self.wake
        self.fetch_due = fetch_due
        self.handle = handle
        self.max_attempts = max_attempts
        self.max_backoff_s = max_backoff_s
        self.concurrency = concurrency
        self.log = logging.getLogger(f"bridge.worker.{name}")
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"worker-{self.name}")

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task:
            await self._task

    async def _run(self) -> None:
        failures = 0
        while not self._stopping:
            self._wake.clear()
            try:
                processed = await self.run_once()
                failures = 0
                if processed:
                    continue
                due = await self.queue.next_due_at()
                timeout = IDLE_POLL_S if due is None else max(0.0, (due - now_ms()) / 1000)
            except Exception:
                # The store itself is failing (e.g. the database is down): keep trying.
                failures += 1
                self.log.exception("Queue %s unavailable, retrying", self.name)
                timeout = backoff_ms(failures, self.max_backoff_s) / 1000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), min(timeout, IDLE_POLL_S))

    async def run_once(self) -> int:
        """Processes the items due now; returns how many were taken."""
        items = await self.fetch_due(now_ms())
        if self.concurrency <= 1:
            for item in items:
                if self._stopping:
                    break
                await self._process(item)
        else:
            slots = asyncio.Semaphore(self.concurrency)

            async def one(item: W) -> None:
                async with slots:
                    if not self._stopping:
                        await self._process(item)

            await asyncio.gather(*(one(item) for item in items))
        return len(items)

    async def _process(self, item: W) -> None:
        try:
            await self.handle(item)
        except Exception as e:
            await self._failed(item, e)
            return
        now = now_ms()
        await self.queue.mark_done(item, now)
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
        message = "%s %s failed (%s, attempt %d)%s"
        args = (self.name, item.label, failure.value, attempts, ", parked" if dead else "")
        if failure is Failure.TRANSIENT:
            # Expected while a peer is down: one line, no traceback.
            self.log.warning(message + ": %s", *args, error)
        else:
            self.log.exception(message, *args)
        await self.queue.mark_failed(
            item.key,
            f"{type(error).__name__}: {error}",
            now_ms() + backoff_ms(attempts, self.max_backoff_s),
            dead,
        )
