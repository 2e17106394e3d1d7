"""Work done at a time rather than on an event (a vote's deadline, a card to post): each item
settled on its own, so one that keeps failing waits out its own backoff and delays no other."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from prometheus_client import Counter

from . import metrics
from .retry import DEFAULT_MAX_BACKOFF_S, Failure, backoff_ms, classify

T = TypeVar("T")

IDLE_S = 30.0

FAILURES = Counter(
    "bridge_timer_failures_total",
    "Items a timer could not settle this time (retried after a backoff of their own)",
    ["timer", "failure"],
    registry=metrics.REGISTRY,
)


def _now_ms() -> int:
    return int(time.time() * 1000)


class ItemTimer(Generic[T]):
    """Calls `settle(item)` for each item `due(now)` gives, when woken or when `next_at()` (the
    earliest time something falls due, ms) comes. The state it works from is in the database,
    so an item that fails is simply tried again later."""

    def __init__(
        self,
        name: str,
        due: Callable[[int], Awaitable[list[T]]],
        settle: Callable[[T], Awaitable[None]],
        key: Callable[[T], Hashable],
        next_at: Callable[[], Awaitable[int | None]] | None = None,
        max_backoff_s: float = DEFAULT_MAX_BACKOFF_S,
    ) -> None:
        self.name = name
        self.due = due
        self.settle = settle
        self.key = key
        self.next_at = next_at
        self.max_backoff_s = max_backoff_s
        self.log = logging.getLogger(f"bridge.timer.{name}")
        self._backoff: dict[Hashable, tuple[int, int]] = {}  # key → (failures, retry at ms)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"timer-{self.name}")

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
                wait_s = await self.run_once()
                failures = 0
            except Exception:
                # Listing the due items failed: the database itself is in trouble.
                failures += 1
                self.log.exception("%s could not list its work; trying again", self.name)
                wait_s = backoff_ms(failures, self.max_backoff_s) / 1000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait_s)

    async def run_once(self) -> float:
        """Settles every item due now; returns how long to sleep, in seconds."""
        now = _now_ms()
        items = await self.due(now)
        # Forget the backoff of what is no longer due (settled meanwhile, or gone).
        keys = {self.key(item) for item in items}
        self._backoff = {k: v for k, v in self._backoff.items() if k in keys}
        for item in items:
            if self._stopping:
                break
            key = self.key(item)
            if key in self._backoff and self._backoff[key][1] > now:
                continue
            try:
                await self.settle(item)
            except Exception as e:
                self._failed(key, e, now)
            else:
                self._backoff.pop(key, None)
        upcoming = [at for _, at in self._backoff.values()]
        if self.next_at is not None and (at := await self.next_at()) is not None:
            upcoming.append(at)
        if not upcoming:
            return IDLE_S
        return min(IDLE_S, max(0.0, (min(upcoming) - _now_ms()) / 1000))

    def _failed(self, key: Hashable, error: Exception, now: int) -> None:
        failure = classify(error)
        failures = self._backoff.get(key, (0, 0))[0] + 1
        self._backoff[key] = (failures, now + backoff_ms(failures, self.max_backoff_s))
        FAILURES.labels(self.name, failure.value).inc()
        if failure is Failure.TRANSIENT:
            self.log.warning(
                "%s: %s failed (%s), retried later: %s", self.name, key, "transient", error
            )
        else:
            self.log.exception("%s: %s failed (%s), retried later", self.name, key, failure.value)
