"""Documents to fetch from the procurement system's URLs, each on its own, outside the order of
the webhooks that asked for them."""

from __future__ import annotations

from dataclasses import dataclass

from .queue import UNCLAIMED, NumberedItem, WorkQueue


@dataclass(frozen=True, slots=True)
class DocumentFetch(NumberedItem):
    id: int
    webhook_id: str
    procurement_id: str
    url: str
    attempts: int
    created_at: int

    @property
    def label(self) -> str:
        return f"fetch of {self.url} for webhook {self.webhook_id}"


class DocumentFetches(WorkQueue[DocumentFetch]):
    table = "document_fetch"
    key = "id"
    since = "created_at"
    name = "webhook_id"

    async def enqueue(self, webhook_id: str, procurement_id: str, url: str, now: int) -> None:
        """Asks for the document of a webhook once, however often this runs."""
        created = await self.db.fetchval(
            "INSERT INTO document_fetch (webhook_id, procurement_id, url, created_at) "
            "VALUES ($1, $2, $3, $4) ON CONFLICT (webhook_id) DO NOTHING RETURNING id",
            webhook_id,
            procurement_id,
            url,
            now,
        )
        if created is not None:
            self.notify()

    async def due(self, now: int, limit: int = 50) -> list[DocumentFetch]:
        rows = await self.db.fetch(
            "SELECT id, webhook_id, procurement_id, url, attempts, created_at FROM document_fetch "  # noqa: S608
            f"WHERE status='pending' AND next_attempt_at <= $1 AND {UNCLAIMED} "
            "ORDER BY next_attempt_at, id "
            "LIMIT $2",
            now,
            limit,
        )
        return [
            DocumentFetch(
                r["id"],
                r["webhook_id"],
                r["procurement_id"],
                r["url"],
                r["attempts"],
                r["created_at"],
            )
            for r in rows
        ]

    async def waiting_bodies(self, procurement_id: str) -> list[str]:
        """The webhooks (their raw bodies) whose documents are still being fetched."""
        rows = await self.db.fetch(
            "SELECT w.body FROM document_fetch f JOIN webhook w ON w.webhook_id = f.webhook_id "
            "WHERE f.procurement_id=$1 AND f.status='pending'",
            procurement_id,
        )
        return [r["body"] for r in rows]

    async def status_of(self, webhook_id: str) -> str | None:
        status: str | None = await self.db.fetchval(
            "SELECT status FROM document_fetch WHERE webhook_id=$1", webhook_id
        )
        return status
