"""Reminders before a deadline: each (item, person, offset) once, delivered to the person's
direct chat with the bot by a worker (a new direct chat is a homeserver call)."""

from __future__ import annotations

from dataclasses import dataclass

from .queue import UNCLAIMED, NumberedItem, WorkQueue


@dataclass(frozen=True, slots=True)
class Reminder(NumberedItem):
    id: int
    item: str  # "vote:<procurement>:<vote id>" or "approval:<procurement>:<approval id>"
    user_id: str
    offset_s: int
    attempts: int
    created_at: int

    @property
    def label(self) -> str:
        return f"reminder of {self.item} to {self.user_id} ({self.offset_s} s before)"


class Reminders(WorkQueue[Reminder]):
    table = "reminder"
    key = "id"
    since = "created_at"
    name = "item"

    async def add(self, item: str, user_id: str, offset_s: int, now: int) -> None:
        """Queues a reminder once, however often the due reminders are worked out."""
        added = await self.db.fetchval(
            "INSERT INTO reminder (item, user_id, offset_s, created_at) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (item, user_id, offset_s) DO NOTHING RETURNING id",
            item,
            user_id,
            offset_s,
            now,
        )
        if added is not None:
            self.notify()

    async def offsets_changed(self, offsets: str) -> bool:
        """Stores the offsets reminders are worked out with; True when they differ from the
        ones stored before (every open item is then to be looked at again)."""
        before = await self.db.fetchval("SELECT value FROM setting WHERE name='reminders.before'")
        if before == offsets:
            return False
        await self.db.execute(
            "INSERT INTO setting (name, value) VALUES ('reminders.before', $1) "
            "ON CONFLICT (name) DO UPDATE SET value=excluded.value",
            offsets,
        )
        return True

    async def sent(self, item: str) -> set[tuple[str, int]]:
        """(person, offset) of every reminder of an item already queued."""
        rows = await self.db.fetch("SELECT user_id, offset_s FROM reminder WHERE item=$1", item)
        return {(r["user_id"], r["offset_s"]) for r in rows}

    async def due(self, now: int, limit: int = 50) -> list[Reminder]:
        rows = await self.db.fetch(
            "SELECT id, item, user_id, offset_s, attempts, created_at FROM reminder "  # noqa: S608
            f"WHERE status='pending' AND next_attempt_at <= $1 AND {UNCLAIMED} "
            "ORDER BY next_attempt_at, id "
            "LIMIT $2",
            now,
            limit,
        )
        return [
            Reminder(
                r["id"], r["item"], r["user_id"], r["offset_s"], r["attempts"], r["created_at"]
            )
            for r in rows
        ]
