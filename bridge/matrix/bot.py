"""The bot «Системный помощник»: reacts to what happens in its rooms and answers commands."""

from __future__ import annotations

import logging
from typing import Any

from mautrix.client import ClientAPI
from mautrix.errors import MatrixRequestError, MForbidden
from mautrix.types import RoomID

from ..db.direct import DirectChats
from ..db.inbox import InboxEvent
from ..db.outbox import MatrixOutbox
from ..domain.cards import Card, help_card
from ..domain.commands import Command, parse_command
from ..domain.events import card_content
from ..domain.locale import Locale
from ..worker import now_ms

log = logging.getLogger("bridge.bot")


class Bot:
    def __init__(
        self,
        client: ClientAPI,
        outbox: MatrixOutbox,
        direct_chats: DirectChats,
        domain: str,
        locale: Locale,
    ) -> None:
        self.client = client
        self.outbox = outbox
        self.direct_chats = direct_chats
        self.domain = domain
        self.locale = locale
        self.mxid = str(client.mxid)

    async def handle(self, item: InboxEvent) -> None:
        """Processes one stored event; safe to repeat (every effect is keyed by the event id)."""
        event = item.event
        if item.ephemeral or event.get("sender") == self.mxid:
            return
        kind = event.get("type")
        if kind == "m.room.member" and event.get("state_key") == self.mxid:
            await self._on_own_membership(event)
        elif kind == "m.room.message":
            await self._on_message(event)

    async def _on_own_membership(self, event: dict[str, Any]) -> None:
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

    async def _on_message(self, event: dict[str, Any]) -> None:
        content = event.get("content") or {}
        body = content.get("body")
        relates = content.get("m.relates_to") or {}
        if not isinstance(body, str) or relates.get("rel_type") == "m.replace":
            return
        room_id = event["room_id"]
        if await self.direct_chats.user_of(room_id) is None:
            return
        parsed = parse_command(body)
        if parsed is None or parsed.command is Command.HELP:
            await self.reply(event, help_card(self.locale))

    async def reply(self, event: dict[str, Any], card: Card) -> None:
        content = card_content(card)
        content["m.relates_to"] = {"m.in_reply_to": {"event_id": event["event_id"]}}
        await self.outbox.enqueue(
            f"reply:{event['event_id']}", event["room_id"], "m.room.message", content, now_ms()
        )
