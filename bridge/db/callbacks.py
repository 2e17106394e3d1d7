"""The durable outbox of callbacks to the procurement system: in order per procurement."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from mautrix.util.async_db import Database

from ..domain.audit import Kind
from .audit import AuditLog
from .queue import AVAILABLE_AT, UNCLAIMED, NumberedItem, WorkQueue
from .transaction import transaction

# Stored, never sent: `callbacks.url` was null when the callback arose (see CallbackOutbox).
DISABLED = "disabled"


@dataclass(frozen=True, slots=True)
class OutgoingCallback(NumberedItem):
    id: int
    webhook_id: str
    procurement_id: str
    type: str
    body: str
    attempts: int
    created_at: int

    @property
    def label(self) -> str:
        return f"{self.type} #{self.id} ({self.webhook_id}) of procurement {self.procurement_id}"


# A pending row is due only if no older row of its procurement is still pending: delivered and
# parked rows let the next one go, so one refused callback does not stop a procurement forever.
_HEAD_OF_LINE = (
    "status = 'pending' AND NOT EXISTS (SELECT 1 FROM callback_outbox AS earlier "
    "WHERE earlier.procurement_id = callback_outbox.procurement_id "
    "AND earlier.status = 'pending' AND earlier.id < callback_outbox.id)"
)


class CallbackOutbox(WorkQueue[OutgoingCallback]):
    """Callbacks waiting to be POSTed, at least once, in order per procurement.

    With `enabled=False` (`callbacks.url: null`) new callbacks are recorded with status
    'disabled': kept for the record, never sent, not counted as waiting, and not replayed if a
    url is configured later (the procurement system was not listening when they arose).
    """

    table = "callback_outbox"
    key = "id"
    since = "created_at"
    name = "dedup_key"

    def __init__(self, db: Database, audit: AuditLog, enabled: bool = True) -> None:
        super().__init__(db)
        self.audit = audit
        self.enabled = enabled

    async def enqueue(
        self,
        dedup_key: str,
        procurement_id: str | None,
        type: str,
        data: dict[str, Any],
        now: int,
    ) -> int:
        """Queues a callback once per `dedup_key`; returns its row id (the first's if repeated).

        `data` gains the `procurement_id` the receiver routes by, if it lacks it. A callback of
        no procurement (a request from a direct chat) goes in a line of its own.
        """
        if data.get("procurement_id", procurement_id) != procurement_id:
            raise ValueError(f"{dedup_key}: data.procurement_id is not {procurement_id!r}")
        body = json.dumps(
            {"type": type, "data": {"procurement_id": procurement_id, **data}},
            ensure_ascii=False,
            separators=(",", ":"),
        )
        row_id: int | None = await self.db.fetchval(
            "INSERT INTO callback_outbox (dedup_key, webhook_id, procurement_id, type, body, "
            "status, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) "
            "ON CONFLICT (dedup_key) DO NOTHING RETURNING id",
            dedup_key,
            f"cb_{uuid.uuid4().hex}",
            procurement_id or "",
            type,
            body,
            "pending" if self.enabled else DISABLED,
            now,
        )
        if row_id is None:
            row_id = await self.db.fetchval(
                "SELECT id FROM callback_outbox WHERE dedup_key=$1", dedup_key
            )
        else:
            await self._record(row_id, {"type": type, "body": json.loads(body)}, now)
            if self.enabled:
                self.notify()
        assert row_id is not None
        return row_id

    async def mark_done(self, item: OutgoingCallback, now: int) -> None:
        async with transaction(self.db):
            await super().mark_done(item, now)
            await self._record(item.id, {"delivered": True}, now, answer=True)

    async def mark_failed(self, key: int, error: str, next_attempt_at: int, dead: bool) -> None:
        async with transaction(self.db):
            await super().mark_failed(key, error, next_attempt_at, dead)
            await self._record(
                key,
                {"delivered": False, "error": error[:2000], "parked": dead},
                int(time.time() * 1000),
                True,
            )

    async def _record(
        self, row_id: int, payload: dict[str, Any], now: int, answer: bool = False
    ) -> None:
        """A callback queued, or the procurement system's answer to one, on record."""
        row = await self.db.fetchrow(
            "SELECT webhook_id, procurement_id FROM callback_outbox WHERE id=$1", row_id
        )
        if row is None:
            return
        await self.audit.record(
            (Kind.CALLBACK_ANSWER if answer else Kind.CALLBACK).value,
            {"id": row["webhook_id"], **payload},
            now=now,
            procurement=row["procurement_id"] or None,
            subject=row["webhook_id"],
        )

    async def due(self, now: int, limit: int = 50) -> list[OutgoingCallback]:
        """Each procurement's oldest pending callback, if its next attempt has come."""
        rows = await self.db.fetch(
            f"SELECT id, webhook_id, procurement_id, type, body, attempts, created_at "  # noqa: S608
            f"FROM callback_outbox WHERE {_HEAD_OF_LINE} AND next_attempt_at <= $1 "
            f"AND {UNCLAIMED} "
            "ORDER BY id LIMIT $2",
            now,
            limit,
        )
        return [
            OutgoingCallback(
                r["id"],
                r["webhook_id"],
                r["procurement_id"],
                r["type"],
                r["body"],
                r["attempts"],
                r["created_at"],
            )
            for r in rows
        ]

    async def next_due_at(self) -> int | None:
        # Rows queued behind a head of line are "due" at 0 but cannot go: counting them would
        # wake the worker in a busy loop while a head waits out its backoff.
        due: int | None = await self.db.fetchval(
            f"SELECT MIN({AVAILABLE_AT}) FROM callback_outbox WHERE {_HEAD_OF_LINE}"  # noqa: S608
        )
        return due

    async def status_of(self, dedup_key: str) -> str | None:
        status: str | None = await self.db.fetchval(
            "SELECT status FROM callback_outbox WHERE dedup_key=$1", dedup_key
        )
        return status
