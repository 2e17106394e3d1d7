"""The durable inbox of homeserver transactions: stored before acknowledged, processed after."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from mautrix.util.async_db import Connection, Database, Scheme

from ..domain.audit import Kind, Record
from ..domain.events import OUTBOX_MARKER
from ..domain.incoming import is_timestamp
from .audit import AuditLog
from .queue import UNCLAIMED, WorkQueue
from .transaction import transaction

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class InboxEvent:
    seq: int
    event: dict[str, Any]
    ephemeral: bool
    attempts: int
    received_at: int

    @property
    def key(self) -> int:
        return self.seq

    @property
    def label(self) -> str:
        return f"event {self.event.get('event_id')} ({self.event.get('type')})"


def ephemeral_id(edu: dict[str, Any]) -> str:
    """Ephemeral events have no id; the same content is the same fact, so hash it."""
    canonical = json.dumps(edu, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    # A lone surrogate (a JSON escape can make one) has no UTF-8; its own bytes still hash.
    return "~" + hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


class Inbox(WorkQueue[InboxEvent]):
    """Every event is on record in the audit log in the transaction that stores it. `bot` is
    the bridge's own user: the echoes of its events say which outbox row they were sent for
    (OUTBOX_MARKER), recorded as they are stored."""

    table = "matrix_event"
    key = "seq"

    def __init__(self, db: Database, audit: AuditLog, bot: str | None = None) -> None:
        super().__init__(db)
        self.audit = audit
        self.bot = bot

    since = "received_at"
    name = "event_id"

    async def store_transaction(
        self,
        txn_id: str,
        events: list[dict[str, Any]],
        ephemeral: list[dict[str, Any]],
        now: int,
    ) -> bool:
        """Stores a transaction's events in one database transaction; False when every one of
        them was stored before (a transaction sent again).

        The transaction id is recorded but decides nothing: a homeserver may use an id again
        for other events (Synapse on SQLite numbers them from its unfinished ones after a
        restart), so each event is taken or not by its own id.
        """
        rows = [event_row(ev, False, now) for ev in events]
        rows += [event_row({**edu, "event_id": ephemeral_id(edu)}, True, now) for edu in ephemeral]
        async with transaction(self.db) as conn:
            await conn.execute(
                "INSERT INTO hs_transaction (txn_id, received_at, event_count) "
                "VALUES ($1, $2, $3) ON CONFLICT (txn_id) DO NOTHING",
                txn_id,
                now,
                len(rows),
            )
            new = await self._insert(conn, rows)
            if not new:
                return False
            logged = [r for r in map(_audit_record, rows) if r is not None and r.subject in new]
            await self.audit.record_many(conn, logged)
            # Before any later event is handled: an answer to a poll the bridge sent just
            # before it was killed finds the poll by its event id.
            echoes = [echo for ev in events if (echo := self._echo(ev)) is not None]
            if echoes:
                await conn.executemany(
                    "UPDATE matrix_outbox SET event_id=$2 WHERE id=$1 AND event_id IS NULL",
                    echoes,
                )
        self.notify()
        self.audit.notify()
        return True

    async def _insert(self, conn: Connection, rows: list[tuple[Any, ...]]) -> set[str]:
        """Inserts the events not stored before; returns their ids."""
        if self.db.scheme in (Scheme.POSTGRES, Scheme.COCKROACH):
            # One statement for the whole batch: a round trip per event would dominate.
            columns = list(zip(*rows, strict=True))
            inserted = await conn.fetch(
                "INSERT INTO matrix_event (event_id, room_id, sender, type, state_key, "
                "origin_ts, event, ephemeral, received_at) "
                "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], "
                "$5::text[], $6::bigint[], $7::text[], $8::boolean[], $9::bigint[]) "
                "ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
                *columns,
            )
            return {r["event_id"] for r in inserted}
        ids = [row[0] for row in rows]
        known = await conn.fetch(
            "SELECT event_id FROM matrix_event "
            "WHERE event_id IN (SELECT value FROM json_each($1))",
            json.dumps(ids),
        )
        await conn.executemany(
            "INSERT INTO matrix_event (event_id, room_id, sender, type, state_key, "
            "origin_ts, event, ephemeral, received_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
            "ON CONFLICT (event_id) DO NOTHING",
            rows,
        )
        return set(ids) - {r["event_id"] for r in known}

    def _echo(self, event: dict[str, Any]) -> tuple[int, str] | None:
        """(outbox row, event id) of the bridge's own event, None for anyone else's."""
        if self.bot is None or event.get("sender") != self.bot:
            return None
        content = event.get("content")
        row = content.get(OUTBOX_MARKER) if isinstance(content, dict) else None
        if isinstance(row, bool) or not isinstance(row, int):
            return None
        return row, str(event["event_id"])

    async def due(self, now: int, limit: int = 100) -> list[InboxEvent]:
        rows = await self.db.fetch(
            "SELECT seq, event, ephemeral, attempts, received_at FROM matrix_event "  # noqa: S608
            f"WHERE status = 'pending' AND next_attempt_at <= $1 AND {UNCLAIMED} "
            "ORDER BY seq LIMIT $2",
            now,
            limit,
        )
        return [
            InboxEvent(
                r["seq"],
                json.loads(r["event"]),
                bool(r["ephemeral"]),
                r["attempts"],
                r["received_at"],
            )
            for r in rows
        ]

    async def get_event(self, event_id: str) -> dict[str, Any] | None:
        """The event as it first arrived (its content survives a later redaction)."""
        raw = await self.db.fetchval("SELECT event FROM matrix_event WHERE event_id=$1", event_id)
        return json.loads(raw) if raw else None

    async def status_of(self, event_id: str) -> str | None:
        status: str | None = await self.db.fetchval(
            "SELECT status FROM matrix_event WHERE event_id=$1", event_id
        )
        return status


def event_row(ev: dict[str, Any], ephemeral: bool, now: int) -> tuple[Any, ...]:
    """The columns of an event; the event itself is kept whole as JSON (which escapes what
    the columns cannot hold: PostgreSQL refuses NUL in text)."""
    state_key = ev.get("state_key")
    origin_ts = ev.get("origin_server_ts")
    return (
        _column(ev["event_id"]),
        _column(ev.get("room_id")),
        _column(ev.get("sender")),
        _column(ev["type"]),
        _column(state_key),
        origin_ts if is_timestamp(origin_ts) else None,
        _json(ev),
        ephemeral,
        now,
    )


def _audit_record(row: tuple[Any, ...]) -> Record | None:
    """What the log keeps of a stored event (an event row's columns): the event as delivered,
    marked when it came already redacted. Ephemeral events are not facts of a room."""
    event_id, room_id, _, _, _, _, event_json, ephemeral, now = row
    if ephemeral:
        return None
    redacted = '"redacted_because"' in event_json and _redacted(json.loads(event_json))
    payload = f'{{"event":{event_json},"redacted":{"true" if redacted else "false"}}}'
    return Record(Kind.MATRIX_EVENT.value, now, None, room_id, event_id, payload)


def _redacted(event: dict[str, Any]) -> bool:
    unsigned = event.get("unsigned")
    return isinstance(unsigned, dict) and "redacted_because" in unsigned


def _column(value: object) -> str | None:
    """A text column: NUL (PostgreSQL refuses it) and lone surrogates (no UTF-8 store takes
    them) replaced; the event's JSON keeps what was delivered."""
    return _UNSTORABLE.sub("\ufffd", value) if isinstance(value, str) else None


def _json(event: dict[str, Any]) -> str:
    text = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    try:
        text.encode()
    except UnicodeEncodeError:
        # A lone surrogate escaped in the JSON cannot be stored as UTF-8: keep it escaped.
        text = json.dumps(event, separators=(",", ":"))
    return text
