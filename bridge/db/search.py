"""The search index: what people wrote and posted in managed rooms. PostgreSQL stems with its
`russian` text search configuration; SQLite's FTS5 indexes Snowball stems (domain.search)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from mautrix.util.async_db import Database, Scheme

from ..domain.search import fts5_query, index_terms, postgres_query


@dataclass(frozen=True, slots=True)
class Hit:
    event_id: str
    room_id: str
    sender: str
    ts: int
    body: str


class SearchIndex:
    def __init__(self, db: Database) -> None:
        self.db = db

    @property
    def _sqlite(self) -> bool:
        return self.db.scheme == Scheme.SQLITE

    async def add(self, event_id: str, room_id: str, sender: str, ts: int, text: str) -> None:
        """Indexes a message once (a repeat of the same event changes nothing)."""
        seq = await self.db.fetchval(
            "INSERT INTO search_entry (event_id, room_id, sender, ts, body) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_id) DO NOTHING RETURNING seq",
            event_id,
            room_id,
            sender,
            ts,
            text,
        )
        if seq is not None and self._sqlite:
            await self.db.execute(
                "INSERT INTO search_fts (rowid, terms) VALUES ($1, $2)", seq, index_terms(text)
            )

    async def replace(self, event_id: str, sender: str, text: str) -> None:
        """An edit: the message is found by its new text (its sender's edits only)."""
        seq = await self.db.fetchval(
            "UPDATE search_entry SET body=$3 WHERE event_id=$1 AND sender=$2 RETURNING seq",
            event_id,
            sender,
            text,
        )
        if seq is not None and self._sqlite:
            await self.db.execute("DELETE FROM search_fts WHERE rowid=$1", seq)
            await self.db.execute(
                "INSERT INTO search_fts (rowid, terms) VALUES ($1, $2)", seq, index_terms(text)
            )

    async def remove(self, event_id: str) -> None:
        """A redacted message is found no more (the record keeps it: matrix_event)."""
        seq = await self.db.fetchval(
            "DELETE FROM search_entry WHERE event_id=$1 RETURNING seq", event_id
        )
        if seq is not None and self._sqlite:
            await self.db.execute("DELETE FROM search_fts WHERE rowid=$1", seq)

    async def search(self, rooms: list[str], query: str, offset: int, limit: int) -> list[Hit]:
        """Messages of `rooms` matching every word of `query`, newest first."""
        if not rooms:
            return []
        if self._sqlite:
            match = fts5_query(query)
            if match is None:
                return []
            rows = await self.db.fetch(
                "SELECT e.event_id, e.room_id, e.sender, e.ts, e.body FROM search_fts f "
                "JOIN search_entry e ON e.seq = f.rowid WHERE search_fts MATCH $1 "
                "AND e.room_id IN (SELECT value FROM json_each($2)) "
                "ORDER BY e.ts DESC, e.seq DESC LIMIT $3 OFFSET $4",
                match,
                json.dumps(rooms),
                limit,
                offset,
            )
        else:
            words = postgres_query(query)
            if words is None:
                return []
            rows = await self.db.fetch(
                "SELECT event_id, room_id, sender, ts, body FROM search_entry "
                "WHERE room_id = ANY($1::text[]) AND tsv @@ to_tsquery('russian', $2) "
                "ORDER BY ts DESC, seq DESC LIMIT $3 OFFSET $4",
                rooms,
                words,
                limit,
                offset,
            )
        return [Hit(r["event_id"], r["room_id"], r["sender"], r["ts"], r["body"]) for r in rows]

    async def remember(self, user_id: str, room_id: str, query: str, shown: int, now: int) -> None:
        """The person's last search in a room, and how many hits they have seen (for «ещё»)."""
        await self.db.execute(
            "INSERT INTO search_session (user_id, room_id, query, shown, updated_at) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id, room_id) DO UPDATE SET "
            "query=excluded.query, shown=excluded.shown, updated_at=excluded.updated_at",
            user_id,
            room_id,
            query,
            shown,
            now,
        )

    async def last(self, user_id: str, room_id: str) -> tuple[str, int] | None:
        row = await self.db.fetchrow(
            "SELECT query, shown FROM search_session WHERE user_id=$1 AND room_id=$2",
            user_id,
            room_id,
        )
        return None if row is None else (row["query"], row["shown"])
