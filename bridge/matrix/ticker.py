"""A background loop for what happens at a time rather than on an event (deadlines, posting)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

_BUSY_S = 1.0
_IDLE_S = 30.0


class Ticker:
    """Calls `tick` every second while it reports work in progress, else every 30 s or when
    woken. A failing tick is logged and tried again: the state it works from is in the
    database, so nothing is lost in between."""

    def __init__(self, name: str, tick: Callable[[], Awaitable[bool]]) -> None:
        self.name = name
        self.tick = tick
        self.log = logging.getLogger(f"bridge.{name}")
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task:
            await self._task

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            busy = False
            try:
                busy = await self.tick()
            except Exception:
                self.log.exception("%s failed; trying again", self.name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), _BUSY_S if busy else _IDLE_S)
