"""Direct chats between people and the bot (opened by either)."""

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

    async def room_of(self, user_id: str) -> str | None:
        """The person's direct chat with the bot (the first they opened, or the bot did)."""
        room: str | None = await self.db.fetchval(
            "SELECT room_id FROM direct_chat WHERE user_id=$1 ORDER BY room_id LIMIT 1", user_id
        )
        return room
