"""Consumes a durable queue: at least once, in order, retried with backoff, parked if hopeless."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Generic, Protocol, TypeVar

from . import metrics
from .db.queue import WorkQueue


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
MAX_BACKOFF_S = 300.0


def now_ms() -> int:
    return int(time.time() * 1000)


def from_ms(ts: int) -> datetime:
    """A homeserver or database timestamp (ms since the epoch) as an aware datetime."""
    return datetime.fromtimestamp(ts / 1000, UTC)


def backoff_ms(attempts: int) -> int:
    """Exponential backoff with jitter: 1 s, 2 s, 4 s … capped at five minutes."""
    seconds = min(2.0 ** max(attempts - 1, 0), MAX_BACKOFF_S)
    return int(seconds * (0.8 + 0.4 * random.random()) * 1000)  # noqa: S311 - jitter only


class Permanent(Exception):
    """A failure that retrying cannot fix: park the item at once."""


class QueueWorker(Generic[W]):
    def __init__(
        self,
        name: str,
        queue: WorkQueue[W],
        fetch_due: Callable[[int], Awaitable[list[W]]],
        handle: Callable[[W], Awaitable[None]],
        max_attempts: int,
    ) -> None:
        self.name = name
        self.queue = queue
        queue.on_new_work = self.wake
        self.fetch_due = fetch_due
        self.handle = handle
        self.max_attempts = max_attempts
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
                timeout = backoff_ms(failures) / 1000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), min(timeout, IDLE_POLL_S))

    async def run_once(self) -> int:
        """Processes the items due now; returns how many were taken."""
        items = await self.fetch_due(now_ms())
        for item in items:
            if self._stopping:
                break
            await self._process(item)
        return len(items)

    async def _process(self, item: W) -> None:
        try:
            await self.handle(item)
        except Exception as e:
            attempts = item.attempts + 1
            dead = isinstance(e, Permanent) or attempts >= self.max_attempts
            metrics.FAILED.labels(self.name).inc()
            self.log.exception(
                "%s %s failed (attempt %d of %d)%s",
                self.name,
                item.label,
                attempts,
                self.max_attempts,
                ", parked as a dead letter" if dead else "",
            )
            await self.queue.mark_failed(
                item.key, f"{type(e).__name__}: {e}", now_ms() + backoff_ms(attempts), dead
            )
            return
        now = now_ms()
        await self.queue.mark_done(item, now)
        metrics.PROCESSED.labels(self.name).inc()
        metrics.LATENCY.labels(self.name).observe(max(0, now - item.received_at) / 1000)
