"""The transparency log's tables (DESIGN §6): records written with their facts, the sequencer
that gives them their place in the Merkle tree, the stored subtree hashes, blobs and signed
checkpoints."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mautrix.util.async_db import Connection, Database, Scheme

from ..domain import merkle
from ..domain.audit import Entry, Record, entry_of, file_ref
from .transaction import after_commit, transaction

Node = tuple[int, int]
_READ_HEAD = "SELECT size FROM audit_head WHERE id=1"
_LOCK_HEAD = _READ_HEAD + " FOR UPDATE"


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    size: int
    root: bytes
    note: str
    created_at: int
    delivered_at: int | None


@dataclass(frozen=True, slots=True)
class LoggedEntry:
    index: int
    data: bytes


def payload_json(payload: Mapping[str, Any]) -> str:
    # NUL and every other character survive as JSON escapes (PostgreSQL's text holds no NUL).
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str)


class AuditLog:
    def __init__(self, db: Database) -> None:
        self.db = db
        # Set by the sequencer; called once a new record is committed.
        self.on_new_record: Callable[[], None] = _nothing

    @property
    def _postgres(self) -> bool:
        return self.db.scheme in (Scheme.POSTGRES, Scheme.COCKROACH)

    # Writing records, in the fact's transaction ----------------------------------------------

    async def record(
        self,
        kind: str,
        payload: Mapping[str, Any],
        *,
        now: int,
        procurement: str | None = None,
        room: str | None = None,
        subject: str | None = None,
    ) -> None:
        await self.db.execute(
            "INSERT INTO audit_record (kind, recorded_at, procurement_id, room_id, subject, "
            "payload) VALUES ($1, $2, $3, $4, $5, $6)",
            kind,
            now,
            procurement,
            room,
            subject,
            payload_json(payload),
        )
        self.notify()

    def notify(self) -> None:
        """Wakes the sequencer once the records just written are committed."""
        after_commit(self.on_new_record)

    async def record_many(self, conn: Connection, records: Sequence[Record]) -> None:
        """Many records in one statement, on the caller's connection (a homeserver batch);
        the caller notifies once it has committed."""
        if not records:
            return
        rows = [(r.kind, r.time, r.procurement, r.room, r.subject, r.payload) for r in records]
        if self._postgres:
            await conn.execute(
                "INSERT INTO audit_record (kind, recorded_at, procurement_id, room_id, subject, "
                "payload) SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], "
                "$4::text[], $5::text[], $6::text[])",
                *zip(*rows, strict=True),
            )
        else:
            await conn.executemany(
                "INSERT INTO audit_record (kind, recorded_at, procurement_id, room_id, subject, "
                "payload) VALUES ($1, $2, $3, $4, $5, $6)",
                rows,
            )

    async def keep_file(self, data: bytes) -> dict[str, Any]:
        """Keeps a file's bytes by their hash; returns how a payload names it."""
        digest = hashlib.sha256(data).hexdigest()
        await self._store_blob(digest, data)
        return file_ref(digest, len(data))

    async def _store_blob(self, digest: str, data: bytes) -> None:
        await self.db.execute(
            "INSERT INTO audit_blob (sha256, size, data) VALUES ($1, $2, $3) "
            "ON CONFLICT (sha256) DO NOTHING",
            digest,
            len(data),
            data,
        )

    # The sequencer --------------------------------------------------------------------------

    async def sequence(self, limit: int = 1000) -> int:
        """Gives up to `limit` waiting records their place in the tree, in one transaction;
        returns how many. Only one sequencer appends at a time (the head row is held)."""
        async with transaction(self.db):
            size = await self._lock_head()
            waiting = await self.db.fetch(
                "SELECT seq, kind, recorded_at, procurement_id, room_id, subject, payload "
                "FROM audit_record WHERE idx IS NULL ORDER BY seq LIMIT $1",
                limit,
            )
            if not waiting:
                return 0
            rooms = await self._procurements_of({r["room_id"] for r in waiting})
            records = [_record(row, rooms) for row in waiting]
            entries = [entry_of(size + n, record) for n, record in enumerate(records)]
            frontier = await self.nodes(merkle.root_parts(size))
            nodes, _ = merkle.append(
                size,
                [frontier[key] for key in merkle.root_parts(size)],
                [merkle.leaf_hash(e.data) for e in entries],
            )
            await self._place([row["seq"] for row in waiting], records, entries)
            await self._store_nodes(nodes)
            await self.db.execute("UPDATE audit_head SET size=$1 WHERE id=1", size + len(entries))
            return len(entries)

    async def _lock_head(self) -> int:
        # SQLite has one writer at a time: the transaction alone keeps others out.
        query = _LOCK_HEAD if self._postgres else _READ_HEAD
        size: int = await self.db.fetchval(query)
        return size

    async def _procurements_of(self, room_ids: Iterable[str | None]) -> dict[str, str]:
        """The procurement of each managed room among `room_ids` (events come without one)."""
        wanted = sorted(r for r in room_ids if r)
        if not wanted:
            return {}
        if self._postgres:
            rows = await self.db.fetch(
                "SELECT room_id, procurement_id FROM managed_room WHERE room_id = ANY($1)",
                wanted,
            )
        else:
            rows = await self.db.fetch(
                "SELECT room_id, procurement_id FROM managed_room "
                "WHERE room_id IN (SELECT value FROM json_each($1))",
                json.dumps(wanted),
            )
        return {r["room_id"]: r["procurement_id"] for r in rows}

    async def _place(
        self, seqs: Sequence[int], records: Sequence[Record], entries: Sequence[Entry]
    ) -> None:
        """Each record gets its index and entry; its payload, now in the entry (or a blob), is
        not kept twice."""
        for entry in entries:
            if entry.blob is not None:
                await self._store_blob(entry.payload_sha256, entry.blob)
        placed = [
            (seq, entry.index, entry.data, record.procurement)
            for seq, record, entry in zip(seqs, records, entries, strict=True)
        ]
        if self._postgres:
            await self.db.execute(
                "UPDATE audit_record r SET idx=p.idx, entry=p.entry, payload='', "
                "procurement_id=p.procurement_id FROM unnest($1::bigint[], $2::bigint[], "
                "$3::bytea[], $4::text[]) AS p(seq, idx, entry, procurement_id) "
                "WHERE r.seq = p.seq",
                *zip(*placed, strict=True),
            )
        else:
            await self.db.executemany(
                "UPDATE audit_record SET idx=$2, entry=$3, procurement_id=$4, payload='' "
                "WHERE seq=$1",
                placed,
            )

    async def _store_nodes(self, nodes: Mapping[Node, bytes]) -> None:
        rows = [(level, index, digest) for (level, index), digest in nodes.items()]
        if self._postgres:
            await self.db.execute(
                "INSERT INTO audit_node (level, idx, hash) SELECT * FROM "
                "unnest($1::smallint[], $2::bigint[], $3::bytea[])",
                *zip(*rows, strict=True),
            )
        else:
            await self.db.executemany(
                "INSERT INTO audit_node (level, idx, hash) VALUES ($1, $2, $3)", rows
            )

    # Reading the tree -----------------------------------------------------------------------

    async def size(self) -> int:
        size: int = await self.db.fetchval(_READ_HEAD)
        return size

    async def waiting(self) -> int:
        count: int = await self.db.fetchval("SELECT COUNT(*) FROM audit_record WHERE idx IS NULL")
        return count

    async def nodes(self, keys: Iterable[Node]) -> dict[Node, bytes]:
        """The stored hashes of these perfect subtrees (one query)."""
        wanted = sorted(set(keys))
        if not wanted:
            return {}
        found: dict[Node, bytes] = {}
        for start in range(0, len(wanted), 200):
            chunk = wanted[start : start + 200]
            pairs = " OR ".join(
                f"(level=${2 * n + 1} AND idx=${2 * n + 2})" for n in range(len(chunk))
            )
            rows = await self.db.fetch(
                f"SELECT level, idx, hash FROM audit_node WHERE {pairs}",  # noqa: S608
                *[v for key in chunk for v in key],
            )
            found.update({(r["level"], r["idx"]): bytes(r["hash"]) for r in rows})
        return found

    async def level(self, level: int, first: int, last: int) -> list[bytes]:
        """Hashes of level `level`, indexes first..last-1, in order (a hash tile)."""
        rows = await self.db.fetch(
            "SELECT hash FROM audit_node WHERE level=$1 AND idx >= $2 AND idx < $3 ORDER BY idx",
            level,
            first,
            last,
        )
        return [bytes(r["hash"]) for r in rows]

    async def root(self, size: int) -> bytes:
        parts = merkle.root_parts(size)
        return merkle.root(size, await self.nodes(parts))

    async def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        return merkle.inclusion_proof(
            index, size, await self.nodes(merkle.inclusion_parts(index, size))
        )

    async def consistency_proof(self, old: int, size: int) -> list[bytes]:
        return merkle.consistency_proof(
            old, size, await self.nodes(merkle.consistency_parts(old, size))
        )

    async def entries(self, first: int, last: int) -> list[LoggedEntry]:
        rows = await self.db.fetch(
            "SELECT idx, entry FROM audit_record WHERE idx >= $1 AND idx < $2 ORDER BY idx",
            first,
            last,
        )
        return [LoggedEntry(r["idx"], bytes(r["entry"])) for r in rows]

    async def entries_of_procurement(self, procurement_id: str, size: int) -> list[LoggedEntry]:
        """A procurement's entries within the first `size`: its own and those of its rooms."""
        rows = await self.db.fetch(
            "SELECT idx, entry FROM audit_record WHERE idx < $2 AND (procurement_id=$1 OR "
            "room_id IN (SELECT room_id FROM managed_room WHERE procurement_id=$1)) "
            "ORDER BY idx",
            procurement_id,
            size,
        )
        return [LoggedEntry(r["idx"], bytes(r["entry"])) for r in rows]

    async def of_subject(self, subject: str) -> list[LoggedEntry]:
        rows = await self.db.fetch(
            "SELECT idx, entry FROM audit_record WHERE subject=$1 AND idx IS NOT NULL "
            "ORDER BY idx",
            subject,
        )
        return [LoggedEntry(r["idx"], bytes(r["entry"])) for r in rows]

    async def entry(self, index: int) -> LoggedEntry | None:
        row = await self.db.fetchrow("SELECT idx, entry FROM audit_record WHERE idx=$1", index)
        return None if row is None else LoggedEntry(row["idx"], bytes(row["entry"]))

    async def blob(self, digest: str) -> bytes | None:
        data = await self.db.fetchval("SELECT data FROM audit_blob WHERE sha256=$1", digest)
        return None if data is None else bytes(data)

    # Checkpoints ----------------------------------------------------------------------------

    async def add_checkpoint(self, size: int, root: bytes, note: str, now: int) -> None:
        await self.db.execute(
            "INSERT INTO audit_checkpoint (size, root, note, created_at) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (size) DO NOTHING",
            size,
            root,
            note,
            now,
        )

    async def latest_checkpoint(self) -> StoredCheckpoint | None:
        row = await self.db.fetchrow(
            "SELECT size, root, note, created_at, delivered_at FROM audit_checkpoint "
            "ORDER BY size DESC LIMIT 1"
        )
        return None if row is None else _checkpoint(row)

    async def checkpoint_covering(self, index: int) -> StoredCheckpoint | None:
        """The latest checkpoint, if its tree holds entry `index`."""
        latest = await self.latest_checkpoint()
        return latest if latest is not None and latest.size > index else None

    async def undelivered(self) -> StoredCheckpoint | None:
        """The latest checkpoint, if no witness has it yet (older ones it supersedes)."""
        latest = await self.latest_checkpoint()
        return latest if latest is not None and latest.delivered_at is None else None

    async def mark_delivered(self, size: int, now: int) -> None:
        await self.db.execute(
            "UPDATE audit_checkpoint SET delivered_at=$2 WHERE size=$1", size, now
        )


def _record(row: Any, rooms: Mapping[str, str]) -> Record:
    return Record(
        row["kind"],
        row["recorded_at"],
        row["procurement_id"] or rooms.get(row["room_id"] or ""),
        row["room_id"],
        row["subject"],
        row["payload"],
    )


def _checkpoint(row: Any) -> StoredCheckpoint:
    return StoredCheckpoint(
        row["size"], bytes(row["root"]), row["note"], row["created_at"], row["delivered_at"]
    )


def _nothing() -> None:
    pass
