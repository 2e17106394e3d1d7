"""Direct chats that users opened with the bot."""

from __future__ import annotations

from mautrix.util.async_db import Database


class DirectChats:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, room_id: str, user_id: str) -> None:
        await self.db.execute(
            "INSERT INTO direct_chat (room_id, user_id) VALUES ($1, $2) "
            "ON CONFLICT (room_id) DO NOTHING",
            room_id,
            user_id,
        )

    async def user_of(self, room_id: str) -> str | None:
        user: str | None = await self.db.fetchval(
            "SELECT user_id FROM direct_chat WHERE room_id=$1", room_id
        )
        return user
