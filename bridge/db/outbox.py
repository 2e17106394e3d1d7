"""The durable outbox of Matrix events the bridge sends (cards, replies, notices, edits)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .queue import DeadLetter, WorkQueue


@dataclass(frozen=True, slots=True)
class OutgoingEvent:
    id: int
    room_id: str
    event_type: str
    content: dict[str, Any]
    edit_of: int | None
    tried: bool
    attempts: int
    created_at: int

    @property
    def key(self) -> int:
        return self.id

    @property
    def label(self) -> str:
        return f"outgoing {self.event_type} #{self.id} to {self.room_id}"

    @property
    def received_at(self) -> int:
        return self.created_at

    @property
    def txn_id(self) -> str:
        return f"procurement-bridge-{self.id}"


class MatrixOutbox(WorkQueue[OutgoingEvent]):
    table = "matrix_outbox"
    key = "id"

    async def enqueue(
        self,
        dedup_key: str,
        room_id: str,
        event_type: str,
        content: dict[str, Any],
        now: int,
        edit_of: int | None = None,
    ) -> int:
        """Queues an event once per `dedup_key`; returns its row id (the first's if repeated)."""
        row_id: int | None = await self.db.fetchval(
            "INSERT INTO matrix_outbox (dedup_key, room_id, event_type, content, edit_of, "
            "created_at) VALUES ($1, $2, $3, $4, $5, $6) "
            "ON CONFLICT (dedup_key) DO NOTHING RETURNING id",
            dedup_key,
            room_id,
            event_type,
            json.dumps(content, ensure_ascii=False),
            edit_of,
            now,
        )
        if row_id is None:
            row_id = await self.db.fetchval(
                "SELECT id FROM matrix_outbox WHERE dedup_key=$1", dedup_key
            )
        else:
            self.on_new_work()
        assert row_id is not None
        return row_id

    async def due(self, now: int, limit: int = 50) -> list[OutgoingEvent]:
        rows = await self.db.fetch(
            "SELECT id, room_id, event_type, content, edit_of, tried, attempts, created_at "
            "FROM matrix_outbox WHERE status='pending' AND next_attempt_at <= $1 "
            "ORDER BY id LIMIT $2",
            now,
            limit,
        )
        return [
            OutgoingEvent(
                r["id"],
                r["room_id"],
                r["event_type"],
                json.loads(r["content"]),
                r["edit_of"],
                bool(r["tried"]),
                r["attempts"],
                r["created_at"],
            )
            for r in rows
        ]

    async def mark_trying(self, row_id: int) -> None:
        await self.db.execute("UPDATE matrix_outbox SET tried=true WHERE id=$1", row_id)

    async def set_event_id(self, row_id: int, event_id: str) -> None:
        await self.db.execute("UPDATE matrix_outbox SET event_id=$2 WHERE id=$1", row_id, event_id)

    async def event_id_of(self, row_id: int) -> str | None:
        event_id: str | None = await self.db.fetchval(
            "SELECT event_id FROM matrix_outbox WHERE id=$1", row_id
        )
        return event_id

    async def event_id_by_key(self, dedup_key: str) -> str | None:
        event_id: str | None = await self.db.fetchval(
            "SELECT event_id FROM matrix_outbox WHERE dedup_key=$1", dedup_key
        )
        return event_id

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        return await self._dead_letters("dedup_key", limit)
