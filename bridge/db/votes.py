"""Commission votes and their ballots, as received."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mautrix.util.async_db import Database, Scheme


@dataclass(frozen=True, slots=True)
class VoteKey:
    procurement_id: str
    vote_id: str


@dataclass(frozen=True, slots=True)
class StoredVote:
    procurement_id: str
    vote_id: str
    room_id: str
    request: dict[str, Any]  # the webhook's `data`
    voters: list[str]
    card_outbox_id: int | None
    poll_outbox_id: int | None
    pinned: bool
    closed_at: int | None
    close_reason: str | None
    cancel_reason: str | None
    closed_after: int | None
    finished: bool

    @property
    def key(self) -> VoteKey:
        return VoteKey(self.procurement_id, self.vote_id)


@dataclass(frozen=True, slots=True)
class StoredBallot:
    seq: int
    event_id: str
    user_id: str
    answers: list[str]
    ts: int


_COLUMNS = (
    "procurement_id, vote_id, room_id, request, voters, card_outbox_id, poll_outbox_id, pinned, "
    "closed_at, close_reason, cancel_reason, closed_after, finished"
)


class Votes:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(
        self,
        procurement_id: str,
        vote_id: str,
        room_id: str,
        request: dict[str, Any],
        voters: list[str],
        closes_at: int,
        now: int,
    ) -> None:
        await self.db.execute(
            "INSERT INTO vote (procurement_id, vote_id, room_id, request, voters, closes_at, "
            "created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) "
            "ON CONFLICT (procurement_id, vote_id) DO NOTHING",
            procurement_id,
            vote_id,
            room_id,
            json.dumps(request, ensure_ascii=False),
            json.dumps(voters),
            closes_at,
            now,
        )

    async def lock(self, key: VoteKey) -> None:
        """Holds the vote's row to the end of the transaction: a process deciding on the same
        vote waits for this one (PostgreSQL; SQLite has one writer at a time)."""
        if self.db.scheme != Scheme.SQLITE:
            await self.db.execute(
                "SELECT 1 FROM vote WHERE procurement_id=$1 AND vote_id=$2 FOR UPDATE",
                key.procurement_id,
                key.vote_id,
            )

    async def get(self, procurement_id: str, vote_id: str) -> StoredVote | None:
        row = await self.db.fetchrow(
            f"SELECT {_COLUMNS} FROM vote WHERE procurement_id=$1 AND vote_id=$2",  # noqa: S608
            procurement_id,
            vote_id,
        )
        return _vote(row) if row else None

    async def by_poll_event(self, poll_event_id: str) -> StoredVote | None:
        row = await self.db.fetchrow(
            f"SELECT {_COLUMNS} FROM vote WHERE poll_outbox_id = "  # noqa: S608
            "(SELECT id FROM matrix_outbox WHERE event_id=$1)",
            poll_event_id,
        )
        return _vote(row) if row else None

    async def due(self, now: int) -> list[StoredVote]:
        """Votes with something to do now: not posted, past their deadline, or closed but not
        finished."""
        rows = await self.db.fetch(
            f"SELECT {_COLUMNS} FROM vote WHERE NOT finished AND (card_outbox_id IS NULL "  # noqa: S608
            "OR closed_at IS NOT NULL OR closes_at <= $1) ORDER BY closes_at, created_at",
            now,
        )
        return [_vote(r) for r in rows]

    async def next_deadline(self) -> int | None:
        """The earliest deadline of an open vote (ms)."""
        at: int | None = await self.db.fetchval(
            "SELECT MIN(closes_at) FROM vote WHERE NOT finished AND closed_at IS NULL"
        )
        return at

    async def procurement_of(self, vote_id: str) -> str | None:
        found: str | None = await self.db.fetchval(
            "SELECT procurement_id FROM vote WHERE vote_id=$1", vote_id
        )
        return found

    async def reminding(self, now: int, limit: int = 100) -> list[StoredVote]:
        """Open, posted votes whose reminders are to be looked at now."""
        rows = await self.db.fetch(
            f"SELECT {_COLUMNS} FROM vote WHERE closed_at IS NULL "  # noqa: S608
            "AND poll_outbox_id IS NOT NULL AND remind_at <= $1 ORDER BY remind_at LIMIT $2",
            now,
            limit,
        )
        return [_vote(r) for r in rows]

    async def next_reminding(self) -> int | None:
        """When the reminders of an open vote are next to be looked at (ms)."""
        at: int | None = await self.db.fetchval(
            "SELECT MIN(remind_at) FROM vote WHERE closed_at IS NULL "
            "AND poll_outbox_id IS NOT NULL"
        )
        return at

    async def remind_at(self, key: VoteKey, at: int) -> None:
        await self.db.execute(
            "UPDATE vote SET remind_at=$3 WHERE procurement_id=$1 AND vote_id=$2",
            key.procurement_id,
            key.vote_id,
            at,
        )

    async def remind_all_now(self) -> None:
        """Every open vote looked at again (the reminder offsets may have changed)."""
        await self.db.execute("UPDATE vote SET remind_at=0 WHERE closed_at IS NULL")

    async def open_of_procurement(self, procurement_id: str) -> list[StoredVote]:
        rows = await self.db.fetch(
            f"SELECT {_COLUMNS} FROM vote WHERE procurement_id=$1 "  # noqa: S608
            "AND closed_at IS NULL ORDER BY closes_at",
            procurement_id,
        )
        return [_vote(r) for r in rows]

    async def open_in_room(self, room_id: str) -> list[StoredVote]:
        rows = await self.db.fetch(
            f"SELECT {_COLUMNS} FROM vote WHERE room_id=$1 AND closed_at IS NULL "  # noqa: S608
            "ORDER BY created_at",
            room_id,
        )
        return [_vote(r) for r in rows]

    async def set_outbox(self, vote: StoredVote, card_id: int, poll_id: int) -> None:
        await self.db.execute(
            "UPDATE vote SET card_outbox_id=$3, poll_outbox_id=$4 "
            "WHERE procurement_id=$1 AND vote_id=$2",
            vote.procurement_id,
            vote.vote_id,
            card_id,
            poll_id,
        )

    async def set_finished(self, vote: StoredVote) -> None:
        await self.db.execute(
            "UPDATE vote SET finished=true WHERE procurement_id=$1 AND vote_id=$2",
            vote.procurement_id,
            vote.vote_id,
        )

    async def close(
        self, vote: StoredVote, reason: str, at: int, cancel_reason: str | None
    ) -> bool:
        """Closes the vote once; False if it was closed already."""
        closed = await self.db.fetchval(
            "UPDATE vote SET closed_at=$3, close_reason=$4, cancel_reason=$5, closed_after="
            "(SELECT COALESCE(MAX(seq), 0) FROM vote_ballot "
            " WHERE procurement_id=$1 AND vote_id=$2) "
            "WHERE procurement_id=$1 AND vote_id=$2 AND closed_at IS NULL RETURNING vote_id",
            vote.procurement_id,
            vote.vote_id,
            at,
            reason,
            cancel_reason,
        )
        return closed is not None

    async def add_ballot(
        self,
        event_id: str,
        vote: StoredVote,
        user_id: str,
        answers: list[str],
        ts: int,
    ) -> bool:
        added = await self.db.fetchval(
            "INSERT INTO vote_ballot (event_id, procurement_id, vote_id, user_id, answers, ts) "
            "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (event_id) DO NOTHING RETURNING seq",
            event_id,
            vote.procurement_id,
            vote.vote_id,
            user_id,
            json.dumps(answers),
            ts,
        )
        return added is not None

    async def ballots(self, vote: StoredVote) -> list[StoredBallot]:
        rows = await self.db.fetch(
            "SELECT seq, event_id, user_id, answers, ts FROM vote_ballot "
            "WHERE procurement_id=$1 AND vote_id=$2 ORDER BY seq",
            vote.procurement_id,
            vote.vote_id,
        )
        return [
            StoredBallot(r["seq"], r["event_id"], r["user_id"], json.loads(r["answers"]), r["ts"])
            for r in rows
        ]


def _vote(row: Any) -> StoredVote:
    return StoredVote(
        procurement_id=row["procurement_id"],
        vote_id=row["vote_id"],
        room_id=row["room_id"],
        request=json.loads(row["request"]),
        voters=json.loads(row["voters"]),
        card_outbox_id=row["card_outbox_id"],
        poll_outbox_id=row["poll_outbox_id"],
        pinned=bool(row["pinned"]),
        closed_at=row["closed_at"],
        close_reason=row["close_reason"],
        cancel_reason=row["cancel_reason"],
        closed_after=row["closed_after"],
        finished=bool(row["finished"]),
    )
