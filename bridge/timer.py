"""Work done at a time rather than on an event (a vote's deadline, a card to post): each item
settled on its own, so one that keeps failing waits out its own backoff and delays no other."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from prometheus_client import Counter

from . import metrics
from .background import IDLE_S, Background
from .retry import DEFAULT_MAX_BACKOFF_S, Failure, backoff_ms, classify
from .worker import now_ms

T = TypeVar("T")

FAILURES = Counter(
    "bridge_timer_failures_total",
    "Items a timer could not settle this time (retried after a backoff of their own)",
    ["timer", "failure"],
    registry=metrics.REGISTRY,
)


class ItemTimer(Background, Generic[T]):
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
        super().__init__(name, logging.getLogger(f"bridge.timer.{name}"), max_backoff_s)
        self.due = due
        self.settle = settle
        self.key = key
        self.next_at = next_at
        self._backoff: dict[Hashable, tuple[int, int]] = {}  # key → (failures, retry at ms)

    async def cycle(self) -> float:
        return await self.run_once()

    def retry_now(self) -> None:
        """Forgets every item's backoff (what they waited for is back) and looks again."""
        self._backoff.clear()
        self.wake()

    async def run_once(self) -> float:
        """Settles every item due now; returns how long to sleep, in seconds."""
        now = now_ms()
        items = await self.due(now)
        # Forget the backoff of what is no longer due (settled meanwhile, or gone).
        keys = {self.key(item) for item in items}
        self._backoff = {k: v for k, v in self._backoff.items() if k in keys}
        for item in items:
            if self.stopping:
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
        # A time before this cycle began is an item just tried (or backing off): not a reason
        # to go round again at once; one that came due while the cycle ran is.
        if self.next_at is not None and (at := await self.next_at()) is not None and at > now:
            upcoming.append(at)
        if not upcoming:
            return IDLE_S
        return min(IDLE_S, max(0.0, (min(upcoming) - now_ms()) / 1000))

    def _failed(self, key: Hashable, error: Exception, now: int) -> None:
        failure = classify(error)
        failures = self._backoff.get(key, (0, 0))[0] + 1
        self._backoff[key] = (failures, now + backoff_ms(failures, self.max_backoff_s))
        FAILURES.labels(self.name, failure.value).inc()
        message = "%s: %s failed (%s), retried later"
        if failure is Failure.TRANSIENT:
            self.log.warning(message + ": %s", self.name, key, failure.value, error)
        elif failure is Failure.PERMANENT:
            # A refusal: its reason says it all; a traceback is for a fault of the bridge.
            self.log.error(message + ": %s", self.name, key, failure.value, error)
        else:
            self.log.exception(message, self.name, key, failure.value)
