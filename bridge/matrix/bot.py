"""The bot «Системный помощник»: watches its rooms, keeps their record, answers commands."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from mautrix.api import Method, Path
from mautrix.client import ClientAPI
from mautrix.errors import MatrixRequestError, MForbidden
from mautrix.types import RoomID

from .. import metrics
from ..db.inbox import InboxEvent
from ..db.rooms import ManagedRoom
from ..db.store import Store
from ..domain.audit import Kind
from ..domain.cards import incident_card
from ..domain.incoming import envelope_problem, mapping, storable
from ..domain.locale import Locale
from ..domain.plan import ORG_KEY
from ..feature import EphemeralListener, EventListener
from ..retry import Failure, classify
from ..worker import now_ms
from .conversation import Conversation
from .reconciler import CREATION_ID
from .replies import Replier

log = logging.getLogger("bridge.bot")


class Bot:
    """Routes what happens in Matrix: managed rooms' state and incidents here, what people say
    to the bot to the conversation, other events to the features that declared them (set by
    core before the start)."""

    def __init__(
        self,
        client: ClientAPI,
        store: Store,
        conversation: Conversation,
        replier: Replier,
        request_reconcile: Callable[[str], Awaitable[None]],
        domain: str,
        locale: Locale,
    ) -> None:
        self.client = client
        self.store = store
        self.direct_chats = store.direct_chats
        self.rooms = store.rooms
        self.conversation = conversation
        self.replier = replier
        self.request_reconcile = request_reconcile
        self.domain = domain
        self.locale = locale
        self.mxid = str(client.mxid)
        self.listeners: Sequence[EventListener] = ()
        self.ephemeral_listeners: Sequence[EphemeralListener] = ()
        self.recorders: Sequence[EventListener] = ()

    async def handle(self, item: InboxEvent) -> None:
        """Processes one stored event; safe to repeat (every effect is keyed by the event id)."""
        # Text no database stores is replaced here; the inbox keeps the event as delivered.
        event = storable(item.event)
        if item.ephemeral:
            for ephemeral_listener in self.ephemeral_listeners:
                await ephemeral_listener(event)
            return
        if (problem := envelope_problem(event)) is not None:
            # Nothing a homeserver sends: whatever it was, it cannot be acted on.
            log.warning("Event %s ignored: %s", event.get("event_id"), problem)
            return
        room_id = event["room_id"]
        managed = await self.rooms.by_room_id(room_id)
        if managed is None and self._is_own_join(event):
            managed = await self._on_own_creation(room_id)
        if managed is not None:
            await self._on_managed_event(managed, event)
        elif event.get("sender") != self.mxid:
            await self._on_other_event(event)

    # Managed rooms ---------------------------------------------------------------------------

    async def _on_managed_event(self, room: ManagedRoom, event: dict[str, Any]) -> None:
        kind = event.get("type")
        sender = str(event.get("sender", ""))
        for recorder in self.recorders:
            await recorder(room, event)
        if isinstance(event.get("state_key"), str):
            await self._on_state(room, event)
        elif kind == "m.room.redaction":
            await self._incident(room, event, "redaction", event.get("redacts"))
            # A redacted state event changes the room's state: read it again and re-check.
            await self._refresh_state(room)
            await self.request_reconcile(room.procurement_id)
        elif sender != self.mxid:
            if kind == "m.reaction":
                await self.conversation.on_reaction(room, event)
                return
            typed = _typed_text(event.get("content") or {}) if kind == "m.room.message" else None
            if typed is not None and await self.conversation.on_message(room, typed, event):
                return
            for listener in self.listeners:
                await listener(room, event)

    async def _on_state(self, room: ManagedRoom, event: dict[str, Any]) -> None:
        assert room.room_id is not None
        event_type, state_key = event["type"], event["state_key"]
        content = event.get("content") or {}
        recorded = (await self.rooms.state_of([room.room_id]))[room.room_id]
        before = recorded.get((event_type, state_key))
        if before != content:
            await self.rooms.set_state(room.room_id, event_type, state_key, content)
        if not _same_effect(event_type, before, content):
            # Whoever sent it (admin tools send as the bot too), the plan decides what stays.
            await self.request_reconcile(room.procurement_id)
        if event_type == "m.room.tombstone":
            await self._incident(room, event, "tombstone", None)
        elif (
            event_type == "m.room.member"
            and state_key == self.mxid
            and content.get("membership") in ("leave", "ban")
        ):
            # The bridge never leaves a room it manages; a room shutdown makes it leave.
            await self._incident(room, event, "shutdown", None)

    async def _incident(
        self, room: ManagedRoom, event: dict[str, Any], kind: str, target: str | None
    ) -> None:
        assert room.room_id is not None
        sender = str(event.get("sender", ""))
        async with self.store.transaction():
            if not await self.rooms.record_incident(
                room.room_id, event["event_id"], kind, sender, target, now_ms()
            ):
                return
            await self.store.audit.record(
                Kind.INCIDENT.value,
                {"what": kind, "event_id": event["event_id"], "by": sender, "target": target},
                now=now_ms(),
                procurement=room.procurement_id,
                room=room.room_id,
                subject=event["event_id"],
            )
        metrics.INCIDENTS.labels(kind).inc()
        log.warning(
            "Incident in %s (%s %s): %s by %s, event %s, target %s",
            room.room_id,
            room.procurement_id,
            room.key,
            kind,
            sender,
            event["event_id"],
            target,
        )
        # A room that was shut down takes no message: the organisation chat hears of it.
        alert_room: str | None = room.room_id
        if kind == "shutdown":
            alert_room = await self.rooms.room_id_of(room.procurement_id, ORG_KEY)
        if alert_room is None or (kind == "shutdown" and alert_room == room.room_id):
            return
        state = (await self.rooms.state_of([room.room_id]))[room.room_id]
        name = (state.get(("m.room.name", "")) or {}).get("name")
        card = incident_card(kind, sender, self.locale, room_name=name)
        await self.replier.notice(alert_room, f"incident:{event['event_id']}", card)

    async def _refresh_state(self, room: ManagedRoom) -> None:
        assert room.room_id is not None
        try:
            events = await self.client.api.request(Method.GET, Path.v3.rooms[room.room_id].state)
        except MatrixRequestError as e:
            log.warning("Could not read the state of %s: %s", room.room_id, e)
            return
        await self.rooms.set_state_events(room.room_id, events)

    def _is_own_join(self, event: dict[str, Any]) -> bool:
        content = event.get("content")
        return (
            event.get("type") == "m.room.member"
            and event.get("sender") == self.mxid
            and event.get("state_key") == self.mxid
            and isinstance(content, dict)
            and content.get("membership") == "join"
        )

    async def _on_own_creation(self, room_id: str) -> ManagedRoom | None:
        """The answer to a createRoom may have been lost; the room's own record names it. Bound
        once the bot has joined, not at m.room.create: the homeserver may still be making the
        room (its creator not in it yet), and what is sent to it now would be refused."""
        try:
            events = await self.client.api.request(Method.GET, Path.v3.rooms[room_id].state)
        except MatrixRequestError as e:
            if classify(e) is Failure.TRANSIENT:
                raise
            return None  # not a room the bot can read: not one it made
        create = next((e for e in events if e.get("type") == "m.room.create"), None)
        if create is None or create.get("sender") != self.mxid:
            return None  # only a room the bot made can be one of its creations
        creation_id = (create.get("content") or {}).get(CREATION_ID)
        if not isinstance(creation_id, str) or not await self.rooms.bind(
            creation_id, room_id, now_ms()
        ):
            return await self.rooms.by_room_id(room_id)
        log.info("Bound room %s to its creation %s from its own record", room_id, creation_id)
        # Its events so far came while it was unbound: its state as the homeserver has it.
        await self.rooms.set_state_events(room_id, events)
        return await self.rooms.by_room_id(room_id)

    # Everything else: direct chats -----------------------------------------------------------

    async def _on_other_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "m.room.member" and event.get("state_key") == self.mxid:
            await self._on_own_invite(event)
        elif kind in ("m.room.message", "m.reaction"):
            await self._on_direct_message(event)

    async def _on_own_invite(self, event: dict[str, Any]) -> None:
        content = event.get("content") or {}
        if content.get("membership") != "invite":
            return
        room_id = RoomID(event["room_id"])
        inviter = str(event.get("sender", ""))
        if inviter.endswith(f":{self.domain}") and content.get("is_direct") is True:
            try:
                await self.client.join_room_by_id(room_id)
            except MForbidden:
                # The invite was withdrawn before we got to it; nothing to do.
                log.info("Invite to %s from %s is gone", room_id, inviter)
                return
            await self.direct_chats.add(room_id, inviter)
            log.info("Joined direct chat %s with %s", room_id, inviter)
        else:
            # Only local users' direct chats; managed rooms are created by the bot itself.
            try:
                await self.client.leave_room(room_id, reason="Not a direct chat")
            except MatrixRequestError as e:
                log.info("Could not decline the invite to %s: %s", room_id, e)

    async def _on_direct_message(self, event: dict[str, Any]) -> None:
        """In a direct chat with the bot, everything is for the bot: what is no command gets
        the help with its menu."""
        if await self.direct_chats.user_of(event["room_id"]) != event.get("sender"):
            return
        if event.get("type") == "m.reaction":
            await self.conversation.on_reaction(None, event)
            return
        body = _typed_text(event.get("content") or {})
        if body is None:
            return
        if not await self.conversation.on_message(None, body, event):
            asker = await self.conversation.asker(None, event)
            assert asker is not None
            await self.replier.reply(event, self.conversation.help(asker))


def _same_effect(event_type: str, before: dict[str, Any] | None, after: dict[str, Any]) -> bool:
    """Whether a state change leaves what the plan cares about as it was (e.g. the echo of an
    invite the bridge sent: it adds a display name, the membership is the same)."""
    if event_type == "m.room.member":
        return (before or {}).get("membership") == after.get("membership")
    return before == after


def _typed_text(content: dict[str, Any]) -> str | None:
    """What a person typed: a text message that is not an edit. A file's name (its body) is
    not a command, nor is an edit of an old message."""
    body = content.get("body")
    edit = mapping(content.get("m.relates_to")).get("rel_type") == "m.replace"
    if content.get("msgtype") != "m.text" or not isinstance(body, str) or edit:
        return None
    return body
