"""Sends the outbox's events; a crash between sending and recording never posts twice."""

from __future__ import annotations

import json
import logging
from typing import Any

from mautrix.api import Method, Path
from mautrix.client import ClientAPI
from mautrix.errors import MatrixRequestError
from mautrix.types import EventType, RoomID

from ..db.documents import Documents
from ..db.outbox import MatrixOutbox, OutgoingEvent, Relation
from ..db.rooms import Rooms
from ..domain.events import OUTBOX_MARKER, edit_content, fit_content, pinned_events_content
from ..domain.ids import EventId
from ..retry import Permanent, Transient
from . import media

log = logging.getLogger("bridge.matrix.sender")

MARKER = OUTBOX_MARKER
PINNED = "m.room.pinned_events"
# How far back a retry looks for its own earlier send.
_LOOKBACK = 100


class Sender:
    def __init__(
        self, client: ClientAPI, outbox: MatrixOutbox, rooms: Rooms, documents: Documents
    ) -> None:
        self.client = client
        self.outbox = outbox
        self.rooms = rooms
        self.documents = documents

    async def send(self, item: OutgoingEvent) -> None:
        if item.state_key is not None:
            await self._send_state(item)
            return
        content = await self._content(item)
        content[MARKER] = item.id
        room_id = RoomID(item.room_id)
        if item.tried:
            # An earlier attempt may have reached the homeserver before the bridge stopped; the
            # homeserver forgets appservice transaction ids on restart. Its echo may have told
            # already (db.inbox); else look for it in the room.
            if await self.outbox.event_id_of(item.id) is not None:
                return
            earlier = await self._find_sent(room_id, item.id)
            if earlier:
                await self.outbox.set_event_id(item.id, earlier)
                return
        else:
            await self.outbox.mark_trying(item.id)
        event_id = await self.client.send_message_event(
            room_id,
            EventType.find(item.event_type),
            content,  # type: ignore[arg-type]  # raw JSON is accepted
            txn_id=item.txn_id,
        )
        await self.outbox.set_event_id(item.id, event_id)

    async def _content(self, item: OutgoingEvent) -> dict[str, Any]:
        """The content as it goes out: related events' ids filled in, a file uploaded, and
        cut to what the homeserver accepts."""
        content = dict(item.content)
        if item.upload_doc is not None:
            content["url"] = await self._uploaded(item.upload_doc, content)
        if item.relation is Relation.REPLACE:
            content = edit_content(await self._related(item), content)
        elif item.relation is Relation.REFERENCE:
            content["m.relates_to"] = {
                "rel_type": "m.reference",
                "event_id": await self._related(item),
            }
        elif item.relation is Relation.ANNOTATION:
            content = {
                "m.relates_to": {
                    "rel_type": "m.annotation",
                    "event_id": await self._related(item),
                    "key": content["key"],
                }
            }
        try:
            return fit_content(content)
        except ValueError as e:
            raise Permanent(f"{item.label} cannot be sent: {e}") from e

    async def _related(self, item: OutgoingEvent) -> EventId:
        assert item.related_id is not None
        event_id = await self.outbox.event_id_of(item.related_id)
        if event_id is not None:
            return EventId(event_id)
        if await self.outbox.status_of(item.related_id) == "dead":
            raise Permanent(f"the event #{item.related_id} it relates to was refused")
        raise Transient(f"the event #{item.related_id} it relates to is not sent yet")

    async def _uploaded(self, doc_id: str, content: dict[str, Any]) -> str:
        """The file's mxc:// URI, uploading the registry's bytes the first time."""
        mxc = await self.documents.uploaded_mxc(doc_id)
        if mxc:
            return mxc
        data = await self.documents.content(doc_id)
        if data is None:
            raise Permanent(f"the registry has no bytes for document {doc_id}")
        info = content.get("info") or {}
        uploaded = await media.upload(
            self.client,
            data,
            str(info.get("mimetype") or "application/octet-stream"),
            str(content.get("filename") or content.get("body") or "document"),
        )
        return await self.documents.set_uploaded_mxc(doc_id, uploaded)

    async def _send_state(self, item: OutgoingEvent) -> None:
        assert item.state_key is not None
        content = item.content
        if item.relation in (Relation.PIN, Relation.UNPIN):
            pinned = await self._pinned(item)
            if pinned is None:
                return  # already as wanted
            content = pinned
        await self.client.send_state_event(
            RoomID(item.room_id),
            EventType.find(item.event_type, EventType.Class.STATE),
            content,  # type: ignore[arg-type]  # raw JSON is accepted
            item.state_key,
        )
        await self.rooms.set_state(item.room_id, item.event_type, item.state_key, content)

    async def _pinned(self, item: OutgoingEvent) -> dict[str, Any] | None:
        """The room's pinned events with this one added or removed; None if no change. Read
        when sent, from the state the room has now, so two pins never undo each other."""
        event_id = await self._related(item)
        states = await self.rooms.state_of([item.room_id])
        current = list(states[item.room_id].get((PINNED, ""), {}).get("pinned", []))
        wanted = [e for e in current if e != event_id]
        if item.relation is Relation.PIN:
            wanted.append(event_id)
        if wanted == current:
            return None
        return pinned_events_content([EventId(e) for e in wanted])

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
