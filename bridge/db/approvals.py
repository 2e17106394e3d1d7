"""Approval routes: the request, the document's exact bytes, decisions and signatures."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mautrix.util.async_db import Connection, Database, Scheme


async def create_approval_tables(conn: Connection, scheme: Scheme) -> None:
    from .upgrade import serial  # upgrade.py imports this module to call this function

    blob = "BLOB" if scheme == Scheme.SQLITE else "BYTEA"
    await conn.execute(
        f"""CREATE TABLE IF NOT EXISTS approval (
            procurement_id     TEXT NOT NULL,
            approval_id        TEXT NOT NULL,
            request            TEXT NOT NULL,
            document           {blob} NOT NULL,
            card_outbox_id     BIGINT,
            poll_outbox_id     BIGINT,
            file_outbox_id     BIGINT,
            ended_at           BIGINT,
            outcome            TEXT,
            cancel_reason      TEXT,
            finished           BOOLEAN NOT NULL DEFAULT false,
            created_at         BIGINT NOT NULL,
            PRIMARY KEY (procurement_id, approval_id)
        )"""
    )
    # Accepted decisions only, in the order they were taken: the route replays from them.
    await conn.execute(
        f"""CREATE TABLE IF NOT EXISTS approval_decision (
            seq             {serial(scheme)},
            event_id        TEXT NOT NULL UNIQUE,
            procurement_id  TEXT NOT NULL,
            approval_id     TEXT NOT NULL,
            approver        TEXT NOT NULL,
            decision        TEXT NOT NULL,
            comment         TEXT,
            signature       TEXT,
            ts              BIGINT NOT NULL
        )"""
    )
    # Every signature file an approver posted, with what the verifier said of it.
    await conn.execute(
        """CREATE TABLE IF NOT EXISTS approval_signature (
            event_id        TEXT PRIMARY KEY,
            procurement_id  TEXT NOT NULL,
            approval_id     TEXT NOT NULL,
            approver        TEXT NOT NULL,
            ok              BOOLEAN NOT NULL,
            result          TEXT NOT NULL,
            ts              BIGINT NOT NULL
        )"""
    )


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
    "ended_at, outcome, cancel_reason, finished"
)


class Approvals:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(
        self,
        procurement_id: str,
        approval_id: str,
        request: dict[str, Any],
        document: bytes,
        now: int,
    ) -> None:
        await self.db.execute(
            "INSERT INTO approval (procurement_id, approval_id, request, document, created_at) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (procurement_id, approval_id) DO NOTHING",
            procurement_id,
            approval_id,
            json.dumps(request, ensure_ascii=False),
            document,
            now,
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

    async def unfinished(self) -> list[StoredApproval]:
        rows = await self.db.fetch(
            f"SELECT {_COLUMNS} FROM approval WHERE NOT finished "  # noqa: S608
            "ORDER BY created_at"
        )
        return [_approval(r) for r in rows]

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
        self, approval: StoredApproval, file_id: int, card_id: int, poll_id: int
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
    )
