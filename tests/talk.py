"""Talking to the bot as a person in Element does: a direct chat, messages and their answers,
clicks on the buttons the bot put under its messages."""

from __future__ import annotations

from collections.abc import Callable

from .matrix_user import Event, MatrixUser
from .waiting import wait_for

BOT = "@procbot:localhost"


async def open_dm(user: MatrixUser) -> str:
    """A direct chat with the bot, once the bot has joined it."""
    room_id = await user.create_dm(BOT)
    await user.wait_for_event(
        room_id,
        lambda e: (
            e["type"] == "m.room.member"
            and e.get("state_key") == BOT
            and e["content"].get("membership") == "join"
        ),
    )
    return room_id


async def rooms_of(user: MatrixUser, keys: set[str]) -> dict[str, str]:
    """Accepts the user's invites until they are in every room of `keys`."""

    async def joined() -> dict[str, str] | None:
        await user.accept_invites(0)
        rooms = await user.rooms_by_key()
        return rooms if keys <= set(rooms) else None

    return await wait_for(joined, timeout=60, what=f"{user.user_id} in {sorted(keys)}")


def reply_to(event_id: str) -> Callable[[Event], bool]:
    return lambda e: (
        e["sender"] == BOT
        and e["type"] == "m.room.message"
        and e["content"].get("m.relates_to", {}).get("m.in_reply_to", {}).get("event_id")
        == event_id
    )


async def ask(user: MatrixUser, room_id: str, text: str, timeout: float = 30) -> Event:
    """Writes in the room; the bot's answer."""
    asked = await user.send_text(room_id, text)
    return await user.wait_for_event(room_id, reply_to(asked), timeout)


async def answers(
    user: MatrixUser, room_id: str, texts: list[str], timeout: float = 60
) -> list[Event]:
    """Writes every text, then waits for the bot's answer to each."""
    asked = [await user.send_text(room_id, text) for text in texts]
    return [await user.wait_for_event(room_id, reply_to(e), timeout) for e in asked]


async def buttons_on(user: MatrixUser, room_id: str, event_id: str, count: int) -> list[str]:
    """The keys of the buttons (the bot's own reactions) under a message, once there are
    `count` of them."""

    async def placed() -> list[str] | None:
        await user.sync()
        keys = [
            e["content"]["m.relates_to"]["key"]
            for e in user.timeline.get(room_id, [])
            if e["type"] == "m.reaction"
            and e["sender"] == BOT
            and e["content"].get("m.relates_to", {}).get("event_id") == event_id
        ]
        return keys if len(keys) >= count else None

    return await wait_for(placed, timeout=30, what=f"{count} buttons under {event_id}")


async def click(user: MatrixUser, room_id: str, message: Event, key: str) -> Event:
    """Presses a button under the bot's message (once it is there); the bot's answer: its
    first message after the click (in a room a reply to the message with the button)."""
    clicked = await press(user, room_id, message, key)

    async def answered() -> Event | None:
        await user.sync()
        events = user.timeline.get(room_id, [])
        after = next((i for i, e in enumerate(events) if e["event_id"] == clicked), None)
        if after is None:
            return None
        return next((e for e in events[after + 1 :] if _answer(e)), None)

    return await wait_for(answered, timeout=30, interval=0, what=f"the answer to {key}")


async def press(user: MatrixUser, room_id: str, message: Event, key: str) -> str:
    """Presses a button without waiting for an answer (none may come); the reaction's id."""
    await wait_for(
        lambda: _has_button(user, room_id, message["event_id"], key), what=f"the button {key}"
    )
    return await user.react(room_id, message["event_id"], key)


async def _has_button(user: MatrixUser, room_id: str, event_id: str, key: str) -> bool:
    await user.sync()
    return any(
        e["type"] == "m.reaction"
        and e["sender"] == BOT
        and e["content"].get("m.relates_to", {}).get("event_id") == event_id
        and e["content"]["m.relates_to"].get("key") == key
        for e in user.timeline.get(room_id, [])
    )


def _answer(event: Event) -> bool:
    """A new message of the bot (not an edit of a card)."""
    relation = event.get("content", {}).get("m.relates_to", {})
    return (
        event["sender"] == BOT
        and event["type"] == "m.room.message"
        and relation.get("rel_type") != "m.replace"
    )


def body(event: Event) -> str:
    return str(event["content"].get("body", ""))


def html(event: Event) -> str:
    return str(event["content"].get("formatted_body", ""))
