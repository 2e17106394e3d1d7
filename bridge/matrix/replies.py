"""The bot's answers: a card, as a reply or a notice, with its buttons (reaction keys the bot
puts on it, each remembered with what a click does), all written in one transaction."""

from __future__ import annotations

from typing import Any

from ..db.store import Store
from ..domain.card import Card
from ..domain.events import card_content
from ..feature import Answer, Button, Reply
from ..worker import now_ms

# In a stored button's action: the message's buttons go out of use after the first click.
ONCE = "once"


def as_reply(answer: Answer) -> Reply | None:
    if answer is None or isinstance(answer, Reply):
        return answer
    return Reply(answer)


class Replier:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def reply(self, event: dict[str, Any], answer: Answer, *, to: str | None = None) -> None:
        """Answers a message (or a click: then `to` is the message the button was on)."""
        await self.post(
            event["room_id"],
            f"reply:{event['event_id']}",
            answer,
            in_reply_to=to or event["event_id"],
        )

    async def post(
        self,
        room_id: str,
        dedup_key: str,
        answer: Answer,
        *,
        in_reply_to: str | None = None,
    ) -> int | None:
        """Queues the answer once per `dedup_key`; returns its outbox row."""
        reply = as_reply(answer)
        if reply is None:
            return None
        content = card_content(reply.card)
        if in_reply_to is not None:
            content["m.relates_to"] = {"m.in_reply_to": {"event_id": in_reply_to}}
        async with self.store.transaction():
            row = await self.store.outbox.enqueue(
                dedup_key, room_id, "m.room.message", content, now_ms()
            )
            await self.put_buttons(room_id, row, dedup_key, reply.buttons, once=reply.once)
        return row

    async def put_buttons(
        self,
        room_id: str,
        row: int,
        dedup_key: str,
        buttons: tuple[Button, ...],
        *,
        once: bool = False,
    ) -> None:
        """The bot's reactions on its message queued as `row`, and what a click on each does
        (in the caller's transaction)."""
        now = now_ms()
        for i, button in enumerate(buttons):
            await self.store.outbox.enqueue_reaction(
                f"{dedup_key}:button:{i}", room_id, button.key, row, now
            )
            action = {**button.action, ONCE: True} if once else button.action
            await self.store.buttons.add(row, button.key, room_id, button.user, action, now)

    async def notice(self, room_id: str, dedup_key: str, card: Card) -> int | None:
        return await self.post(room_id, dedup_key, card)
