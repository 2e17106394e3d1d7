"""A person opens a direct chat with the bot and asks for help."""

from __future__ import annotations

from typing import Any

from bridge.core import BridgeCore

from ..matrix_user import Event
from ..talk import BOT, open_dm


def is_bot_notice(event: Event) -> bool:
    return event.get("sender") == BOT and event.get("content", {}).get("msgtype") == "m.notice"


async def test_help_in_a_direct_chat(bridge: BridgeCore, user_factory: Any) -> None:
    alice = await user_factory("alice")
    room_id = await open_dm(alice)
    asked = await alice.send_text(room_id, "помощь")
    reply = await alice.wait_for_event(
        room_id,
        lambda e: (
            is_bot_notice(e)
            and e["content"].get("m.relates_to", {}).get("m.in_reply_to", {}).get("event_id")
            == asked
        ),
    )
    assert "Команды" in reply["content"]["body"]
    assert "помощь" in reply["content"]["body"]
    profile = await alice.request("GET", f"/_matrix/client/v3/profile/{BOT}")
    assert profile["displayname"] == "Системный помощник"
