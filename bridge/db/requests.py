"""Requests (заявки) filed through the bot, sent to the procurement system, and its answers."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mautrix.util.async_db import Database

SUBMITTED = "submitted"


@dataclass(frozen=True, slots=True)
class StoredRequest:
    request_id: str
    user_id: str
    room_id: str
    procurement_id: str | None
    fields: dict[str, Any]
    status: str  # submitted, accepted, rejected
    number: str | None
    reason: str | None


class Requests:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(
        self,
        request_id: str,
        user_id: str,
        room_id: str,
        procurement_id: str | None,
        fields: Mapping[str, Any],
        now: int,
    ) -> bool:
        """Records a submitted request once; False if this id was recorded before."""
        added = await self.db.fetchval(
            "INSERT INTO request (request_id, user_id, room_id, procurement_id, fields, status, "
            "created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) "
            "ON CONFLICT (request_id) DO NOTHING RETURNING request_id",
            request_id,
            user_id,
            room_id,
            procurement_id,
            json.dumps(fields, ensure_ascii=False),
            SUBMITTED,
            now,
        )
        return added is not None

    async def get(self, request_id: str) -> StoredRequest | None:
        row = await self.db.fetchrow(
            "SELECT request_id, user_id, room_id, procurement_id, fields, status, number, reason "
            "FROM request WHERE request_id=$1",
            request_id,
        )
        if row is None:
            return None
        return StoredRequest(
            row["request_id"],
            row["user_id"],
            row["room_id"],
            row["procurement_id"],
            json.loads(row["fields"]),
            row["status"],
            row["number"],
            row["reason"],
        )

    async def answer(
        self, request_id: str, status: str, number: str | None, reason: str | None, now: int
    ) -> bool:
        """The procurement system's answer, taken once; False if it had answered already."""
        answered = await self.db.fetchval(
            "UPDATE request SET status=$2, number=$3, reason=$4, answered_at=$5 "
            "WHERE request_id=$1 AND status=$6 RETURNING request_id",
            request_id,
            status,
            number,
            reason,
            now,
            SUBMITTED,
        )
        return answered is not None
