"""Several bridge processes on one PostgreSQL (DESIGN §8). Every process takes homeserver
transactions, webhooks and API calls and stores them. Queues ordered as a whole (homeserver
events, webhooks) and the timers are run by one process at a time, under a lease it renews; the
queues ordered per room or per procurement, and independent work, are spread over all processes,
each row claimed by the one that works on it. A process that dies loses its leases and claims
within `LEASE_MS`, and the others take its work over."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from .background import Background
from .db.leases import Leases
from .db.queue import LEASE_MS, WorkQueue
from .worker import now_ms

log = logging.getLogger("bridge.processes")

# Renewed three times within a lease: a slow database round trip does not lose it.
RENEW_S = LEASE_MS / 1000 / 3
# A lease is taken as held only this long before it runs out, so two holders never overlap.
_MARGIN_MS = 2_000
# Each process holds a lease of its own name while it lives: how many there are is counted.
_PROCESS = "process:"


def process_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Lease:
    """One named lease as this process sees it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.until = 0  # ms; held while now is before it
        self.on_taken: list[Callable[[], None]] = []

    def held(self) -> bool:
        return now_ms() < self.until


class Membership(Background):
    """Says this process is alive, renews its leases and its queues' claims, and takes its fair
    share of the leases: with several processes alive each runs some of the work one process at
    a time does, and one alone runs it all. A lease whose holder stops renewing it is taken
    over once it runs out."""

    def __init__(
        self,
        leases: Leases,
        owner: str,
        names: Iterable[str],
        queues: Iterable[WorkQueue[Any]],
        max_backoff_s: float,
    ) -> None:
        super().__init__("processes", log, max_backoff_s)
        self.leases = leases
        self.owner = owner
        self.held = {name: Lease(name) for name in names}
        self.queues = list(queues)
        self._leaving: str | None = None  # no longer run here; let go at the next round

    def lease(self, name: str) -> Lease:
        return self.held[name]

    def retry_now(self) -> None:
        self.wake()

    async def cycle(self) -> float:
        now = now_ms()
        await self.leases.hold(_PROCESS + self.owner, self.owner, now, now + LEASE_MS)
        fair = -(-len(self.held) // max(1, await self.leases.live(_PROCESS, now)))
        given_up, self._leaving = self._leaving, None
        if given_up is not None:
            await self.leases.let_go(given_up, self.owner)
        mine = 0
        next_round_ms = now + RENEW_S * 1000
        for lease in self.held.values():
            if lease.held() or (mine < fair and lease.name != given_up):
                taken = await self._hold(lease, now)
                mine += taken
                if not taken:
                    # Held by another: looked at again the moment it runs out, so a killed
                    # holder's work is taken over within a lease's time, not a round later.
                    runs_out = await self.leases.runs_out_at(lease.name)
                    if runs_out is not None:
                        next_round_ms = min(next_round_ms, runs_out + 1)
        if mine > fair:
            self._leave(next(lease for lease in self.held.values() if lease.held()))
        for queue in self.queues:
            await queue.renew(now)
        return max(0.0, next_round_ms - now_ms()) / 1000

    async def _hold(self, lease: Lease, now: int) -> int:
        had = lease.held()
        if not await self.leases.hold(lease.name, self.owner, now, now + LEASE_MS):
            lease.until = 0
            return 0
        lease.until = now + LEASE_MS - _MARGIN_MS
        if not had:
            log.info("This process now runs %s", lease.name)
            for wake in lease.on_taken:
                wake()
        return 1

    def _leave(self, lease: Lease) -> None:
        """Stops running `lease`'s work now, and lets another take it at the next round, once
        the item under way here is through (so an ordered queue never runs in two places)."""
        lease.until = 0
        self._leaving = lease.name
        log.info("Leaving %s to another process", lease.name)

    async def stop(self) -> None:
        await super().stop()
        for name in (*self.held, _PROCESS + self.owner):
            try:
                await self.leases.let_go(name, self.owner)
            except Exception:
                log.warning("Lease %s not given up; it runs out by itself", name)
        for lease in self.held.values():
            lease.until = 0
