"""The durable outbox of Matrix events the bridge sends (cards, replies, notices, edits, pins,
files), sent in order per room."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from typing import Any

from .queue import AVAILABLE_AT, UNCLAIMED, NumberedItem, WorkQueue


class Relation(Enum):
    """How an outgoing event relates to an earlier outgoing event (`related_id`), whose event
    id is known only once that one is sent."""

    REPLACE = "replace"  # an edit of it (m.replace)
    REFERENCE = "reference"  # a reference to it (a poll's end)
    PIN = "pin"  # m.room.pinned_events with it added
    UNPIN = "unpin"  # m.room.pinned_events with it removed
    ANNOTATION = "annotation"  # a reaction on it (a button: its key is the content's "key")


@dataclass(frozen=True, slots=True)
class OutgoingEvent(NumberedItem):
    id: int
    room_id: str
    event_type: str
    content: dict[str, Any]
    related_id: int | None
    relation: Relation | None
    state_key: str | None  # set for state events
    upload_doc: str | None  # a registry document whose bytes become the file's `url`
    tried: bool
    attempts: int
    created_at: int

    @property
    def label(self) -> str:
        return f"outgoing {self.event_type} #{self.id} to {self.room_id}"

    @property
    def txn_id(self) -> str:
        return f"procurement-bridge-{self.id}"


# A room's events go out in the order they were queued: an edit never overtakes its card, a
# poll's end never its start. Sent and parked events let the next one go.
_HEAD_OF_LINE = (
    "status = 'pending' AND NOT EXISTS (SELECT 1 FROM matrix_outbox AS earlier "
    "WHERE earlier.room_id = matrix_outbox.room_id "
    "AND earlier.status = 'pending' AND earlier.id < matrix_outbox.id)"
)
_COLUMNS = (
    "id, room_id, event_type, content, related_id, relation, state_key, upload_doc, tried, "
    "attempts, created_at"
)


class MatrixOutbox(WorkQueue[OutgoingEvent]):
    table = "matrix_outbox"
    key = "id"
    since = "created_at"
    name = "dedup_key"

    async def enqueue(
        self,
        dedup_key: str,
        room_id: str,
        event_type: str,
        content: dict[str, Any],
        now: int,
        *,
        related_id: int | None = None,
        relation: Relation | None = None,
        state_key: str | None = None,
        upload_doc: str | None = None,
    ) -> int:
        """Queues an event once per `dedup_key`; returns its row id (the first's if repeated)."""
        row_id: int | None = await self.db.fetchval(
            "INSERT INTO matrix_outbox (dedup_key, room_id, event_type, content, related_id, "
            "relation, state_key, upload_doc, created_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
            "ON CONFLICT (dedup_key) DO NOTHING RETURNING id",
            dedup_key,
            room_id,
            event_type,
            json.dumps(content, ensure_ascii=False),
            related_id,
            relation.value if relation else None,
            state_key,
            upload_doc,
            now,
        )
        if row_id is None:
            row_id = await self.db.fetchval(
                "SELECT id FROM matrix_outbox WHERE dedup_key=$1", dedup_key
            )
        else:
            self.notify()
        assert row_id is not None
        return row_id

    async def enqueue_edit(
        self, dedup_key: str, room_id: str, content: dict[str, Any], original: int, now: int
    ) -> int:
        """An edit of the message queued as row `original`."""
        return await self.enqueue(
            dedup_key,
            room_id,
            "m.room.message",
            content,
            now,
            related_id=original,
            relation=Relation.REPLACE,
        )

    async def enqueue_pin(
        self, dedup_key: str, room_id: str, pinned: int, now: int, *, pin: bool
    ) -> int:
        """Pins (or unpins) the event queued as row `pinned`."""
        return await self.enqueue(
            dedup_key,
            room_id,
            "m.room.pinned_events",
            {},
            now,
            related_id=pinned,
            relation=Relation.PIN if pin else Relation.UNPIN,
            state_key="",
        )

    async def enqueue_reaction(
        self, dedup_key: str, room_id: str, key: str, target: int, now: int
    ) -> int:
        """The bot's own reaction `key` on the event queued as row `target`: a button."""
        return await self.enqueue(
            dedup_key,
            room_id,
            "m.reaction",
            {"key": key},
            now,
            related_id=target,
            relation=Relation.ANNOTATION,
        )

    async def row_of_event(self, event_id: str) -> int | None:
        """The outbox row an event was sent for, if the bridge sent it."""
        row: int | None = await self.db.fetchval(
            "SELECT id FROM matrix_outbox WHERE event_id=$1", event_id
        )
        return row

    async def due(self, now: int, limit: int = 50) -> list[OutgoingEvent]:
        rows = await self.db.fetch(
            f"SELECT {_COLUMNS} FROM matrix_outbox "  # noqa: S608
            f"WHERE {_HEAD_OF_LINE} AND next_attempt_at <= $1 AND {UNCLAIMED} "
            "ORDER BY id LIMIT $2",
            now,
            limit,
        )
        return [
            OutgoingEvent(
                id=r["id"],
                room_id=r["room_id"],
                event_type=r["event_type"],
                content=json.loads(r["content"]),
                related_id=r["related_id"],
                relation=Relation(r["relation"]) if r["relation"] else None,
                state_key=r["state_key"],
                upload_doc=r["upload_doc"],
                tried=bool(r["tried"]),
                attempts=r["attempts"],
                created_at=r["created_at"],
            )
            for r in rows
        ]

    async def next_due_at(self) -> int | None:
        # Events queued behind a head of line cannot go yet: counting them would wake the
        # worker in a busy loop while the head waits out its backoff.
        due: int | None = await self.db.fetchval(
            f"SELECT MIN({AVAILABLE_AT}) FROM matrix_outbox WHERE {_HEAD_OF_LINE}"  # noqa: S608
        )
        return due

    async def mark_trying(self, row_id: int) -> None:
        await self.db.execute("UPDATE matrix_outbox SET tried=true WHERE id=$1", row_id)

    async def set_event_id(self, row_id: int, event_id: str) -> None:
        await self.db.execute("UPDATE matrix_outbox SET event_id=$2 WHERE id=$1", row_id, event_id)

    async def event_id_of(self, row_id: int) -> str | None:
        event_id: str | None = await self.db.fetchval(
            "SELECT event_id FROM matrix_outbox WHERE id=$1", row_id
        )
        return event_id

    async def status_of(self, row_id: int) -> str | None:
        status: str | None = await self.db.fetchval(
            "SELECT status FROM matrix_outbox WHERE id=$1", row_id
        )
        return status

    async def event_id_by_key(self, dedup_key: str) -> str | None:
        event_id: str | None = await self.db.fetchval(
            "SELECT event_id FROM matrix_outbox WHERE dedup_key=$1", dedup_key
        )
        return event_id
