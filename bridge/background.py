"""A loop in the background: runs a cycle, sleeps what the cycle asks (or until woken), and
keeps going through failures of its store, backing off."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from .retry import DEFAULT_MAX_BACKOFF_S, backoff_ms

IDLE_S = 30.0
# A store that is down is looked at again every few seconds at most: it costs next to nothing,
# and the work flows as soon as it is back.
STORE_BACKOFF_S = 10.0


class Background:
    """Subclasses say what one cycle does and how long to sleep after it (seconds)."""

    def __init__(self, name: str, log: logging.Logger, max_backoff_s: float) -> None:
        self.name = name
        self.log = log
        self.max_backoff_s = max_backoff_s
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        # The longest sleep between cycles: another process's work wakes no one here, so with
        # several processes on one database the bridge looks at least this often.
        self.idle_s = IDLE_S
        # Work one process at a time does runs only while this says so (its lease is held).
        self.gate: Callable[[], bool] | None = None

    async def cycle(self) -> float:
        raise NotImplementedError

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task:
            await self._task

    @property
    def stopping(self) -> bool:
        return self._stopping

    async def _run(self) -> None:
        failures = 0
        while not self._stopping:
            self._wake.clear()
            try:
                if self.gate is not None and not self.gate():
                    wait_s = self.idle_s  # another process does this work now
                else:
                    wait_s = await self.cycle()
                failures = 0
            except Exception:
                # The store itself is failing (e.g. the database is down): keep trying.
                failures += 1
                self.log.exception("%s cannot reach its work; trying again", self.name)
                wait_s = backoff_ms(failures, min(self.max_backoff_s, STORE_BACKOFF_S)) / 1000
            if wait_s <= 0:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), min(wait_s, self.idle_s))


__all__ = ["DEFAULT_MAX_BACKOFF_S", "IDLE_S", "Background"]
