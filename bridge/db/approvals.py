"""Approval routes: the request, the document's exact bytes, decisions and signatures."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mautrix.util.async_db import Database, Scheme


@dataclass(frozen=True, slots=True)
class ApprovalKey:
    procurement_id: str
    approval_id: str


@dataclass(frozen=True, slots=True)
class StoredApproval:
    procurement_id: str
    approval_id: str
    request: dict[str, Any]
    card_outbox_id: int | None
    poll_outbox_id: int | None
    file_outbox_id: int | None
    ended_at: int | None
    outcome: str | None
    cancel_reason: str | None
    finished: bool
    awaiting_document: bool  # requested by URL, not fetched yet
    overdue_noticed: bool  # the organisation chat was told its deadline passed

    @property
    def key(self) -> ApprovalKey:
        return ApprovalKey(self.procurement_id, self.approval_id)


@dataclass(frozen=True, slots=True)
class StoredDecision:
    event_id: str
    approver: str
    decision: str
    comment: str | None
    signature: dict[str, Any] | None
    ts: int


_COLUMNS = (
    "procurement_id, approval_id, request, card_outbox_id, poll_outbox_id, file_outbox_id, "
    "ended_at, outcome, cancel_reason, finished, awaiting_document, overdue_noticed"
)


class Approvals:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(
        self,
        procurement_id: str,
        approval_id: str,
        request: dict[str, Any],
        document: bytes | None,
        now: int,
    ) -> None:
        """A new route; `document` None while it is being fetched from its URL."""
        await self.db.execute(
            "INSERT INTO approval (procurement_id, approval_id, request, document, "
            "awaiting_document, created_at) VALUES ($1, $2, $3, $4, $5, $6) "
            "ON CONFLICT (procurement_id, approval_id) DO NOTHING",
            procurement_id,
            approval_id,
            json.dumps(request, ensure_ascii=False),
            document or b"",
            document is None,
            now,
        )

    async def set_document(self, key: ApprovalKey, document: bytes) -> None:
        await self.db.execute(
            "UPDATE approval SET document=$3, awaiting_document=false, remind_at=0 "
            "WHERE procurement_id=$1 AND approval_id=$2 AND awaiting_document",
            key.procurement_id,
            key.approval_id,
            document,
        )

    async def lock(self, key: ApprovalKey) -> None:
        """Holds the approval's row to the end of the transaction: a process deciding on the
        same approval waits for this one (PostgreSQL; SQLite has one writer at a time)."""
        if self.db.scheme != Scheme.SQLITE:
            await self.db.execute(
                "SELECT 1 FROM approval WHERE procurement_id=$1 AND approval_id=$2 FOR UPDATE",
                key.procurement_id,
                key.approval_id,
            )

    async def get(self, procurement_id: str, approval_id: str) -> StoredApproval | None:
        row = await self.db.fetchrow(
            f"SELECT {_COLUMNS} FROM approval "  # noqa: S608
            "WHERE procurement_id=$1 AND approval_id=$2",
            procurement_id,
            approval_id,
        )
        return _approval(row) if row else None

    async def find(self, approval_id: str) -> list[StoredApproval]:
        rows = await self.db.fetch(
            f"SELECT {_COLUMNS} FROM approval WHERE approval_id=$1",  # noqa: S608
            approval_id,
        )
        return [_approval(r) for r in rows]

    async def of_procurement(self, procurement_id: str) -> list[StoredApproval]:
        rows = await self.db.fetch(
            f"SELECT {_COLUMNS} FROM approval WHERE procurement_id=$1 "  # noqa: S608
            "ORDER BY created_at",
            procurement_id,
        )
        return [_approval(r) for r in rows]

    async def reminding(self, now: int, limit: int = 100) -> list[StoredApproval]:
        """Running routes with their document whose reminders are to be looked at now."""
        rows = await self.db.fetch(
            f"SELECT {_COLUMNS} FROM approval WHERE outcome IS NULL "  # noqa: S608
            "AND NOT awaiting_document AND remind_at <= $1 ORDER BY remind_at LIMIT $2",
            now,
            limit,
        )
        return [_approval(r) for r in rows]

    async def next_reminding(self) -> int | None:
        """When the reminders of a running route are next to be looked at (ms)."""
        at: int | None = await self.db.fetchval(
            "SELECT MIN(remind_at) FROM approval WHERE outcome IS NULL AND NOT awaiting_document"
        )
        return at

    async def remind_at(self, key: ApprovalKey, at: int) -> None:
        await self.db.execute(
            "UPDATE approval SET remind_at=$3 WHERE procurement_id=$1 AND approval_id=$2",
            key.procurement_id,
            key.approval_id,
            at,
        )

    async def remind_all_now(self) -> None:
        """Every running route looked at again (the reminder offsets may have changed)."""
        await self.db.execute("UPDATE approval SET remind_at=0 WHERE outcome IS NULL")

    async def set_overdue_noticed(self, approval: StoredApproval) -> bool:
        """Marks the missed deadline as told; False if it was told before."""
        marked = await self.db.fetchval(
            "UPDATE approval SET overdue_noticed=true WHERE procurement_id=$1 "
            "AND approval_id=$2 AND NOT overdue_noticed RETURNING approval_id",
            approval.procurement_id,
            approval.approval_id,
        )
        return marked is not None

    async def due(self, _now: int) -> list[StoredApproval]:
        """Routes with something to post: a card (once the document is there, or the route
        ended without it), or the end of a route that is over."""
        rows = await self.db.fetch(
            f"SELECT {_COLUMNS} FROM approval WHERE NOT finished AND ("  # noqa: S608
            "(card_outbox_id IS NULL AND NOT awaiting_document) OR outcome IS NOT NULL) "
            "ORDER BY created_at"
        )
        return [_approval(r) for r in rows]

    async def has_decision(self, event_id: str) -> bool:
        found = await self.db.fetchval(
            "SELECT 1 FROM approval_decision WHERE event_id=$1", event_id
        )
        return found is not None

    async def by_poll_event(self, poll_event_id: str) -> StoredApproval | None:
        row = await self.db.fetchrow(
            f"SELECT {_COLUMNS} FROM approval WHERE poll_outbox_id = "  # noqa: S608
            "(SELECT id FROM matrix_outbox WHERE event_id=$1)",
            poll_event_id,
        )
        return _approval(row) if row else None

    async def document(self, approval: StoredApproval) -> bytes:
        data = await self.db.fetchval(
            "SELECT document FROM approval WHERE procurement_id=$1 AND approval_id=$2",
            approval.procurement_id,
            approval.approval_id,
        )
        return bytes(data)

    async def set_posted(
        self, approval: StoredApproval, file_id: int | None, card_id: int, poll_id: int | None
    ) -> None:
        await self.db.execute(
            "UPDATE approval SET file_outbox_id=$3, card_outbox_id=$4, poll_outbox_id=$5 "
            "WHERE procurement_id=$1 AND approval_id=$2",
            approval.procurement_id,
            approval.approval_id,
            file_id,
            card_id,
            poll_id,
        )

    async def end(
        self, approval: StoredApproval, outcome: str, at: int, cancel_reason: str | None
    ) -> None:
        await self.db.execute(
            "UPDATE approval SET outcome=$3, ended_at=$4, cancel_reason=$5 "
            "WHERE procurement_id=$1 AND approval_id=$2 AND outcome IS NULL",
            approval.procurement_id,
            approval.approval_id,
            outcome,
            at,
            cancel_reason,
        )

    async def set_finished(self, approval: StoredApproval) -> None:
        await self.db.execute(
            "UPDATE approval SET finished=true WHERE procurement_id=$1 AND approval_id=$2",
            approval.procurement_id,
            approval.approval_id,
        )

    async def add_decision(
        self,
        event_id: str,
        approval: StoredApproval,
        approver: str,
        decision: str,
        comment: str | None,
        signature: dict[str, Any] | None,
        ts: int,
    ) -> bool:
        added = await self.db.fetchval(
            "INSERT INTO approval_decision (event_id, procurement_id, approval_id, approver, "
            "decision, comment, signature, ts) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
            "ON CONFLICT (event_id) DO NOTHING RETURNING seq",
            event_id,
            approval.procurement_id,
            approval.approval_id,
            approver,
            decision,
            comment,
            None if signature is None else json.dumps(signature, ensure_ascii=False),
            ts,
        )
        if added is not None:  # the route may wait for someone else now: remind them
            await self.remind_at(approval.key, 0)
        return added is not None

    async def decisions(self, approval: StoredApproval) -> list[StoredDecision]:
        rows = await self.db.fetch(
            "SELECT event_id, approver, decision, comment, signature, ts FROM approval_decision "
            "WHERE procurement_id=$1 AND approval_id=$2 ORDER BY seq",
            approval.procurement_id,
            approval.approval_id,
        )
        return [
            StoredDecision(
                r["event_id"],
                r["approver"],
                r["decision"],
                r["comment"],
                json.loads(r["signature"]) if r["signature"] else None,
                r["ts"],
            )
            for r in rows
        ]

    async def add_signature(
        self,
        event_id: str,
        approval: StoredApproval,
        approver: str,
        ok: bool,
        result: dict[str, Any],
        ts: int,
    ) -> None:
        await self.db.execute(
            "INSERT INTO approval_signature (event_id, procurement_id, approval_id, approver, ok, "
            "result, ts) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (event_id) DO NOTHING",
            event_id,
            approval.procurement_id,
            approval.approval_id,
            approver,
            ok,
            json.dumps(result, ensure_ascii=False),
            ts,
        )

    async def signature_of(
        self, approval: StoredApproval, approver: str
    ) -> tuple[bool, dict[str, Any]] | None:
        """The approver's latest signature file for this route and its verification."""
        row = await self.db.fetchrow(
            "SELECT ok, result FROM approval_signature WHERE procurement_id=$1 AND "
            "approval_id=$2 AND approver=$3 ORDER BY ts DESC LIMIT 1",
            approval.procurement_id,
            approval.approval_id,
            approver,
        )
        return (bool(row["ok"]), json.loads(row["result"])) if row else None


def _approval(row: Any) -> StoredApproval:
    return StoredApproval(
        procurement_id=row["procurement_id"],
        approval_id=row["approval_id"],
        request=json.loads(row["request"]),
        card_outbox_id=row["card_outbox_id"],
        poll_outbox_id=row["poll_outbox_id"],
        file_outbox_id=row["file_outbox_id"],
        ended_at=row["ended_at"],
        outcome=row["outcome"],
        cancel_reason=row["cancel_reason"],
        finished=bool(row["finished"]),
        awaiting_document=bool(row["awaiting_document"]),
        overdue_noticed=bool(row["overdue_noticed"]),
    )
