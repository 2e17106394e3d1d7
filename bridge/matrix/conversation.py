"""A person talking to the bot, in a procurement room or a direct chat: a conversation under way
takes their message first, then commands from the table (who may use which, where), then
clicks on the bot's buttons. Handlers come from the features (set by core)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from ..db.rooms import ManagedRoom
from ..db.store import Store
from ..domain.answers import (
    button,
    help_card,
    not_allowed_card,
    phrase_card,
    unknown_command_card,
)
from ..domain.commands import (
    SPECS,
    Command,
    ParsedCommand,
    Place,
    UnknownCommand,
    is_prose,
    parse_command,
    visible,
)
from ..domain.incoming import mapping
from ..domain.locale import Locale
from ..feature import (
    DISMISS,
    ActionHandler,
    Answer,
    Asker,
    Button,
    CommandHandler,
    DialogHandler,
    Reply,
)
from .people import People, place_of
from .replies import ONCE, Replier

log = logging.getLogger("bridge.conversation")

# The direct chat's menu: commands a click runs, in this order, when the person may use them.
_MENU = (Command.STATUS, Command.TASKS, Command.SEARCH, Command.REQUEST)


class Conversation:
    def __init__(self, store: Store, people: People, replier: Replier, locale: Locale) -> None:
        self.store = store
        self.people = people
        self.replier = replier
        self.locale = locale
        self.commands: Mapping[Command, CommandHandler] = {}
        self.actions: Mapping[str, ActionHandler] = {}
        self.dialogs: Mapping[str, DialogHandler] = {}

    async def asker(self, room: ManagedRoom | None, event: dict[str, Any]) -> Asker | None:
        """Who wrote or clicked, and what they are here; None where the bot does not talk (a
        space)."""
        user = str(event.get("sender", ""))
        if room is None:
            roles = await self.people.roles_anywhere(user)
            return Asker(user, event["room_id"], Place.DIRECT, None, roles, event)
        place = place_of(room)
        if place is None:
            return None
        roles = await self.people.roles_in(room, user)
        return Asker(user, event["room_id"], place, room, roles, event)

    # Messages -------------------------------------------------------------------------------

    async def on_message(self, room: ManagedRoom | None, text: str, event: dict[str, Any]) -> bool:
        """A person's typed message; True when it was for the bot (answered)."""
        parsed = parse_command(text)
        dialog = await self.store.dialogs.get(event["room_id"], str(event["sender"]))
        if dialog is None and parsed is None:
            return False
        asker = await self.asker(room, event)
        if asker is None:
            return False
        if dialog is None and isinstance(parsed, ParsedCommand) and is_prose(parsed, asker.place):
            return False
        if dialog is not None and not _escapes(parsed):
            handler = self.dialogs.get(dialog.kind)
            if handler is None:  # a kind an older version started: let it go
                await self.store.dialogs.end(asker.room_id, asker.user)
                return False
            await self.replier.reply(event, await handler(asker, text, dialog.state))
            return True
        await self.replier.reply(event, await self._command(asker, parsed))
        return True

    async def _command(
        self, asker: Asker, parsed: ParsedCommand | UnknownCommand | None
    ) -> Answer:
        if isinstance(parsed, UnknownCommand):
            return unknown_command_card(parsed.word, self.locale)
        assert parsed is not None
        spec = SPECS[parsed.command]
        if not spec.allowed(asker.roles, asker.place):
            return not_allowed_card(spec, asker.roles, self.locale)
        return await self.run(asker, parsed)

    async def run(self, asker: Asker, parsed: ParsedCommand) -> Answer:
        """Does a command the person may use here (typed, or clicked in a menu)."""
        if parsed.command is Command.HELP:
            return self.help(asker)
        if parsed.command is Command.CANCEL:
            ended = await self.store.dialogs.end(asker.room_id, asker.user)
            return phrase_card("cancelled" if ended else "nothing_to_cancel", self.locale)
        return await self.commands[parsed.command](asker, parsed)

    def help(self, asker: Asker) -> Reply:
        specs = visible(asker.roles, asker.place)
        if asker.place is not Place.DIRECT:
            return Reply(help_card(specs, self.locale))
        allowed = {spec.command for spec in specs}
        buttons = tuple(
            Button(
                button(self.locale, command.value),
                {"kind": "command", "command": command.value},
                asker.user,
            )
            for command in _MENU
            if command in allowed
        )
        return Reply(help_card(specs, self.locale, buttons=bool(buttons)), buttons)

    # Clicks ---------------------------------------------------------------------------------

    async def on_reaction(self, room: ManagedRoom | None, event: dict[str, Any]) -> None:
        """A click on one of the bot's buttons (anyone else's reactions mean nothing here)."""
        relation = mapping(mapping(event.get("content")).get("m.relates_to"))
        target, key = relation.get("event_id"), relation.get("key")
        if relation.get("rel_type") != "m.annotation" or not isinstance(target, str):
            return
        if not isinstance(key, str):
            return
        pressed = await self.store.buttons.on_event(target, key)
        if pressed is None or pressed.room_id != event["room_id"]:
            return
        asker = await self.asker(room, event)
        if asker is None or str(event["sender"]) == self.store.inbox.bot:
            return
        if pressed.user_id is not None and pressed.user_id != asker.user:
            log.info("%s pressed %r meant for %s", asker.user, key, pressed.user_id)
            return
        answer = await self._click(asker, pressed.action)
        async with self.store.transaction():
            if room is None:
                # The direct chat: the answer follows the click; quoting the menu (or the
                # reminder) it was on again would only push the answer out of sight.
                await self.replier.post(event["room_id"], f"reply:{event['event_id']}", answer)
            else:
                await self.replier.reply(event, answer, to=target)
            if pressed.action.get(ONCE):
                await self.store.buttons.retire(pressed.outbox_id)

    async def _click(self, asker: Asker, action: Mapping[str, Any]) -> Answer:
        kind = action.get("kind")
        if kind == DISMISS:
            return phrase_card("cancelled", self.locale)
        if kind == "command":
            command = Command(str(action["command"]))
            return await self._command(asker, ParsedCommand(command, ""))
        handler = self.actions.get(str(kind))
        if handler is None:
            log.warning("A button of an unknown kind %r was pressed", kind)
            return None
        return await handler(asker, action)


def _escapes(parsed: ParsedCommand | UnknownCommand | None) -> bool:
    """What leaves a conversation under way: cancelling it, or asking for help."""
    return isinstance(parsed, ParsedCommand) and parsed.command in (Command.CANCEL, Command.HELP)
