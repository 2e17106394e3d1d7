"""Notices the homeserver coming back: while work fails because it cannot be reached, it is
probed every few seconds, and once it answers again everything waiting is tried at once,
instead of each item waiting out its own backoff (minutes, after a long outage)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import aiohttp

from ..background import IDLE_S, Background

log = logging.getLogger("bridge.matrix.watch")

PROBE_S = 2.0
_PROBE_TIMEOUT = aiohttp.ClientTimeout(total=5)


class HomeserverWatch(Background):
    def __init__(
        self,
        session: aiohttp.ClientSession,
        homeserver: str,
        on_back: Callable[[], Awaitable[None]],
    ) -> None:
        super().__init__("homeserver-watch", log, PROBE_S)
        self.session = session
        self.versions_url = homeserver.rstrip("/") + "/_matrix/client/versions"
        self.on_back = on_back
        # A process starting cannot know whether the homeserver was away: the process that
        # saw it go may have been killed, leaving work backing off for minutes and nobody to
        # see the homeserver return. So it starts as after an outage.
        self._suspected = True
        self._down = True
        self._warned = False

    def suspect(self) -> None:
        """Something failed for now: look whether the homeserver is there (cheap: one GET)."""
        if not self._suspected:
            self._suspected = True
            self.wake()

    async def cycle(self) -> float:
        if not self._suspected:
            return IDLE_S
        try:
            await self.probe()
        except Exception as e:
            if not self._warned:
                log.warning("The homeserver does not answer (%s); waiting for it", e)
                self._warned = True
            self._down = True
            return PROBE_S
        if self._down:
            # Back after an outage (a failure that was not the homeserver's changes nothing).
            if self._warned:
                log.info("The homeserver answers again: retrying what waited for it")
            # Raises when the store is down too: probed and tried again, not forgotten.
            await self.on_back()
            self._down = self._warned = False
        self._suspected = False
        return IDLE_S

    async def probe(self) -> None:
        async with self.session.get(self.versions_url, timeout=_PROBE_TIMEOUT) as resp:
            resp.raise_for_status()
