"""Webhooks received from the procurement system: stored before 202, applied once."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mautrix.util.async_db import Database

from ..domain.audit import Kind
from .audit import AuditLog
from .queue import UNCLAIMED, WorkQueue
from .transaction import transaction


@dataclass(frozen=True, slots=True)
class StoredWebhook:
    seq: int
    webhook_id: str
    type: str
    data: Any
    attempts: int
    received_at: int

    @property
    def key(self) -> int:
        return self.seq

    @property
    def label(self) -> str:
        return f"webhook {self.webhook_id} ({self.type})"


class WebhookInbox(WorkQueue[StoredWebhook]):
    table = "webhook"
    key = "seq"
    since = "received_at"
    name = "webhook_id"

    def __init__(self, db: Database, audit: AuditLog) -> None:
        super().__init__(db)
        self.audit = audit

    async def store(
        self, webhook_id: str, type: str, procurement_id: str | None, body: str, now: int
    ) -> bool:
        """Stores a webhook, on record in the audit log; False (and nothing changed) if this id
        was stored before."""
        async with transaction(self.db):
            seq = await self.db.fetchval(
                "INSERT INTO webhook (webhook_id, type, procurement_id, body, received_at) "
                "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (webhook_id) DO NOTHING RETURNING seq",
                webhook_id,
                type,
                procurement_id,
                body,
                now,
            )
            if seq is None:
                return False
            await self.audit.record(
                Kind.WEBHOOK.value,
                {"id": webhook_id, "type": type, "body": body},
                now=now,
                procurement=procurement_id,
                subject=webhook_id,
            )
        self.notify()
        return True

    async def has(self, webhook_id: str) -> bool:
        found = await self.db.fetchval("SELECT 1 FROM webhook WHERE webhook_id=$1", webhook_id)
        return found is not None

    async def by_id(self, webhook_id: str) -> StoredWebhook | None:
        row = await self.db.fetchrow(
            "SELECT seq, webhook_id, type, body, attempts, received_at FROM webhook "
            "WHERE webhook_id=$1",
            webhook_id,
        )
        return None if row is None else _stored(row)

    async def pending_snapshots(self, procurement_id: str) -> list[Any]:
        """Snapshots of a procurement received but not applied yet (their `data`)."""
        rows = await self.db.fetch(
            "SELECT body FROM webhook WHERE procurement_id=$1 AND status='pending' "
            "AND type='procurement.upserted' ORDER BY seq",
            procurement_id,
        )
        return [json.loads(r["body"])["data"] for r in rows]

    async def pending_of_type(self, type: str) -> list[Any]:
        """The `data` of the webhooks of one type received but not applied yet."""
        rows = await self.db.fetch(
            "SELECT body FROM webhook WHERE type=$1 AND status='pending' ORDER BY seq", type
        )
        return [json.loads(r["body"])["data"] for r in rows]

    async def due(self, now: int, limit: int = 100) -> list[StoredWebhook]:
        rows = await self.db.fetch(
            "SELECT seq, webhook_id, type, body, attempts, received_at FROM webhook "  # noqa: S608
            f"WHERE status='pending' AND next_attempt_at <= $1 AND {UNCLAIMED} "
            "ORDER BY seq LIMIT $2",
            now,
            limit,
        )
        return [_stored(r) for r in rows]

    async def count(self) -> int:
        total: int = await self.db.fetchval("SELECT COUNT(*) FROM webhook")
        return total


def _stored(row: Any) -> StoredWebhook:
    return StoredWebhook(
        seq=row["seq"],
        webhook_id=row["webhook_id"],
        type=row["type"],
        data=json.loads(row["body"])["data"],
        attempts=row["attempts"],
        received_at=row["received_at"],
    )
