"""The bot's buttons: reaction keys it placed on its own messages, and what a click does."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mautrix.util.async_db import Database


@dataclass(frozen=True, slots=True)
class StoredButton:
    outbox_id: int
    key: str
    room_id: str
    user_id: str | None  # who may click it; None: whoever its action allows
    action: dict[str, Any]


class Buttons:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(
        self,
        outbox_id: int,
        key: str,
        room_id: str,
        user_id: str | None,
        action: Mapping[str, Any],
        now: int,
    ) -> None:
        await self.db.execute(
            "INSERT INTO button (outbox_id, key, room_id, user_id, action, created_at) "
            "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (outbox_id, key) DO NOTHING",
            outbox_id,
            key,
            room_id,
            user_id,
            json.dumps(action, ensure_ascii=False),
            now,
        )

    async def on_event(self, event_id: str, key: str) -> StoredButton | None:
        """The button `key` on the bot's message `event_id`, if there is one."""
        row = await self.db.fetchrow(
            "SELECT b.outbox_id, b.key, b.room_id, b.user_id, b.action FROM button b "
            "JOIN matrix_outbox o ON o.id = b.outbox_id WHERE o.event_id=$1 AND b.key=$2",
            event_id,
            key,
        )
        if row is None:
            return None
        return StoredButton(
            row["outbox_id"], row["key"], row["room_id"], row["user_id"], json.loads(row["action"])
        )

    async def retire(self, outbox_id: int) -> None:
        """Puts every button of a message out of use (a choice made once has been made)."""
        await self.db.execute("DELETE FROM button WHERE outbox_id=$1", outbox_id)
