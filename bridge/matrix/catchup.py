"""Events the homeserver stored and never pushed. Synapse keeps the events it is about to send
an appservice in memory, and a restart at that moment loses them (synapse#11637): a person's
command or vote would be on the homeserver and never reach the bridge. So once the homeserver
answers again after an outage (and when a process starts), the bridge reads the latest events
of the rooms people write in, and those the store has not got go into the inbox as if pushed
(the inbox takes each event once, by its id).

The look waits SETTLE_MS after the return and takes only events older than that: the ones
still on their way come in the push, in their order. (An appservice's own user may not /sync
on Synapse, so the rooms are read one by one.)"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from mautrix.api import Method, Path
from mautrix.client import ClientAPI

from .. import metrics
from ..background import IDLE_S, Background
from ..db.inbox import Inbox
from ..db.rooms import Rooms
from ..worker import now_ms

log = logging.getLogger("bridge.matrix.catchup")

SETTLE_MS = 30_000
# How far back a look reaches before the outage it follows: a restart loses only what was
# queued in the moments before it.
LOOKBACK_MS = 10 * 60_000
_PAGE = 50
_MOST_PAGES = 10  # per room and look
_IN_FLIGHT = 4


class CatchUp(Background):
    def __init__(
        self, client: ClientAPI, inbox: Inbox, rooms: Rooms, max_backoff_s: float
    ) -> None:
        super().__init__("catch-up", log, max_backoff_s)
        self.client = client
        self.inbox = inbox
        self.rooms = rooms
        self._asked_at: int | None = None  # when the homeserver came back, not looked yet

    def homeserver_back(self) -> None:
        """The homeserver answers after an outage (or this process started): look soon."""
        if self._asked_at is None:
            self._asked_at = now_ms()
        self.wake()

    async def cycle(self) -> float:
        if self._asked_at is None:
            return IDLE_S
        asked_at = self._asked_at
        wait_ms = asked_at + SETTLE_MS - now_ms()
        if wait_ms > 0:
            return wait_ms / 1000
        await self.look(since=asked_at - LOOKBACK_MS, until=now_ms() - SETTLE_MS)
        if self._asked_at == asked_at:
            self._asked_at = None
        return IDLE_S

    async def look(self, since: int, until: int) -> int:
        """Stores the events sent between `since` and `until` (ms) that the store has not got;
        returns how many."""
        room_ids = await self.rooms.conversation_room_ids()
        limit = asyncio.Semaphore(_IN_FLIGHT)

        async def one(room_id: str) -> int:
            async with limit:
                events = await self._latest(room_id, since, until)
            if not events:
                return 0
            txn = f"catch-up:{uuid.uuid4().hex}"
            return await self.inbox.store_transaction(txn, events, [], now_ms())

        found = sum(await asyncio.gather(*(one(room_id) for room_id in room_ids)))
        if found:
            log.warning("%d events the homeserver never pushed taken from its rooms", found)
            metrics.CAUGHT_UP.inc(found)
        return found

    async def _latest(self, room_id: str, since: int, until: int) -> list[dict[str, Any]]:
        """The room's events sent between `since` and `until`, oldest first."""
        found: list[dict[str, Any]] = []
        params = {"dir": "b", "limit": str(_PAGE)}
        for _ in range(_MOST_PAGES):
            page = await self.client.api.request(
                Method.GET, Path.v3.rooms[room_id].messages, query_params=params
            )
            chunk = [ev for ev in page.get("chunk", []) if isinstance(ev, dict)]
            found.extend(ev for ev in chunk if _sent_between(ev, since, until))
            older = [ev for ev in chunk if _sent_at(ev) < since]
            if older or not chunk or "end" not in page:
                break
            params["from"] = page["end"]
        return [{**ev, "room_id": room_id} for ev in reversed(found)]


def _sent_at(event: dict[str, Any]) -> int:
    sent = event.get("origin_server_ts")
    return sent if isinstance(sent, int) else 0


def _sent_between(event: dict[str, Any], since: int, until: int) -> bool:
    well_formed = isinstance(event.get("event_id"), str) and isinstance(event.get("type"), str)
    return well_formed and since <= _sent_at(event) <= until
