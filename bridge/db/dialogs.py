"""Conversations under way with one person in one room: a request being filled in, a reason
asked for. Kept in the database, so a restart resumes where the person was."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mautrix.util.async_db import Database


@dataclass(frozen=True, slots=True)
class Dialog:
    room_id: str
    user_id: str
    kind: str
    state: dict[str, Any]


class Dialogs:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, room_id: str, user_id: str) -> Dialog | None:
        row = await self.db.fetchrow(
            "SELECT kind, state FROM dialog WHERE room_id=$1 AND user_id=$2", room_id, user_id
        )
        if row is None:
            return None
        return Dialog(room_id, user_id, row["kind"], json.loads(row["state"]))

    async def put(
        self, room_id: str, user_id: str, kind: str, state: Mapping[str, Any], now: int
    ) -> None:
        """Starts a conversation, or moves one on (a person has one per room at a time)."""
        await self.db.execute(
            "INSERT INTO dialog (room_id, user_id, kind, state, updated_at) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (room_id, user_id) DO UPDATE SET "
            "kind=excluded.kind, state=excluded.state, updated_at=excluded.updated_at",
            room_id,
            user_id,
            kind,
            json.dumps(state, ensure_ascii=False),
            now,
        )

    async def end(self, room_id: str, user_id: str) -> bool:
        """Ends the person's conversation in the room; False if there was none."""
        ended = await self.db.fetchval(
            "DELETE FROM dialog WHERE room_id=$1 AND user_id=$2 RETURNING kind", room_id, user_id
        )
        return ended is not None
