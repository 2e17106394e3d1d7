"""Sends the outbox's events; a crash between sending and recording never posts twice."""

from __future__ import annotations

import json
import logging

from mautrix.api import Method, Path
from mautrix.client import ClientAPI
from mautrix.errors import MatrixRequestError, MForbidden, MNotFound
from mautrix.types import EventType, RoomID

from ..db.outbox import MatrixOutbox, OutgoingEvent
from ..domain.events import edit_content
from ..domain.ids import EventId
from ..worker import Permanent

log = logging.getLogger("bridge.matrix.sender")

# Every outgoing event carries its outbox row id, so a retry can find an earlier success.
MARKER = "org.procurement.outbox_id"
# How far back a retry looks for its own earlier send.
_LOOKBACK = 100


class Sender:
    def __init__(self, client: ClientAPI, outbox: MatrixOutbox) -> None:
        self.client = client
        self.outbox = outbox

    async def send(self, item: OutgoingEvent) -> None:
        content = dict(item.content)
        if item.edit_of is not None:
            original = await self.outbox.event_id_of(item.edit_of)
            if original is None:
                raise RuntimeError(f"the edited event #{item.edit_of} is not sent yet")
            content = edit_content(EventId(original), content)
        content[MARKER] = item.id
        room_id = RoomID(item.room_id)
        if item.tried:
            # An earlier attempt may have reached the homeserver before the bridge stopped; the
            # homeserver forgets appservice transaction ids on restart, so look for it.
            earlier = await self._find_sent(room_id, item.id)
            if earlier:
                await self.outbox.set_event_id(item.id, earlier)
                return
        else:
            await self.outbox.mark_trying(item.id)
        try:
            event_id = await self.client.send_message_event(
                room_id,
                EventType.find(item.event_type),
                content,  # type: ignore[arg-type]  # raw JSON is accepted
                txn_id=item.txn_id,
            )
        except (MForbidden, MNotFound) as e:
            raise Permanent(f"the homeserver refused {item.label}: {e}") from e
        await self.outbox.set_event_id(item.id, event_id)

    async def _find_sent(self, room_id: RoomID, row_id: int) -> str | None:
        query = {
            "dir": "b",
            "limit": str(_LOOKBACK),
            "filter": json.dumps({"senders": [self.client.mxid]}),
        }
        try:
            resp = await self.client.api.request(
                Method.GET, Path.v3.rooms[room_id].messages, query_params=query
            )
        except MatrixRequestError as e:
            log.warning("Could not check %s for an earlier send of #%d: %s", room_id, row_id, e)
            return None
        for event in resp.get("chunk", []):
            if event.get("content", {}).get(MARKER) == row_id:
                return str(event["event_id"])
        return None
