"""The document registry: every file posted in a managed room, its bytes, and read receipts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mautrix.util.async_db import Database

from ..domain.audit import Kind
from ..domain.ids import DocumentId, EventId, ProcurementId, RoomId, RoomKey, UserId
from ..domain.registry import (
    DocumentSource,
    ReadMark,
    RegisteredDocument,
    document_uploaded_payload,
    from_ms,
)
from .audit import AuditLog
from .transaction import transaction


@dataclass(frozen=True, slots=True)
class StoredDocument:
    document: RegisteredDocument
    seq: int | None
    mxc_uri: str


_COLUMNS = (
    "doc_id, procurement_id, room_id, room_key, event_id, seq, filename, mime_type, size, "
    "sha256, uploader, uploaded_at, mxc_uri, source, caption"
)


class Documents:
    """The registry: every document with its bytes, on record in the audit log."""

    def __init__(self, db: Database, audit: AuditLog) -> None:
        self.db = db
        self.audit = audit

    # Recording -------------------------------------------------------------------------------

    async def record(
        self,
        document: RegisteredDocument,
        mxc_uri: str,
        content: bytes,
        *,
        seq: int | None = None,
        outbox_id: int | None = None,
    ) -> bool:
        """Stores a document and its bytes together; False if its event (or outbox row) was
        recorded before."""
        async with transaction(self.db):
            recorded = await self.db.fetchval(
                "INSERT INTO document (doc_id, procurement_id, room_id, room_key, event_id, "
                "outbox_id, seq, filename, mime_type, size, sha256, uploader, uploaded_at, "
                "mxc_uri, source, caption) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, "
                "$11, $12, $13, $14, $15, $16) ON CONFLICT DO NOTHING RETURNING doc_id",
                document.doc_id,
                document.procurement_id,
                document.room_id,
                document.room_key,
                document.event_id,
                outbox_id,
                seq,
                document.filename,
                document.mime_type,
                document.size,
                document.sha256,
                document.uploader,
                int(document.uploaded_at.timestamp() * 1000),
                mxc_uri,
                document.source.value,
                document.caption,
            )
            if recorded is None:
                return False
            await self.audit.record(
                Kind.DOCUMENT.value,
                {
                    **document_uploaded_payload(document),
                    "source": document.source.value,
                    "caption": document.caption,
                    "file": await self.audit.keep_file(content),
                },
                now=int(document.uploaded_at.timestamp() * 1000),
                procurement=document.procurement_id,
                room=document.room_id,
                subject=document.doc_id,
            )
            await self.db.execute(
                "INSERT INTO document_content (doc_id, content) VALUES ($1, $2)",
                document.doc_id,
                content,
            )
        return True

    async def settle_posted(self) -> None:
        """Fills in the event id and seq of the bot's posts that have been sent since."""
        await self.db.execute(
            "UPDATE document SET event_id=(SELECT o.event_id FROM matrix_outbox o "
            "WHERE o.id=document.outbox_id) WHERE event_id IS NULL AND outbox_id IS NOT NULL"
        )
        await self.db.execute(
            "UPDATE document SET seq=(SELECT m.seq FROM matrix_event m "
            "WHERE m.event_id=document.event_id) WHERE seq IS NULL AND event_id IS NOT NULL"
        )

    # Reading ---------------------------------------------------------------------------------

    async def get(self, doc_id: str) -> StoredDocument | None:
        row = await self.db.fetchrow(
            f"SELECT {_COLUMNS} FROM document WHERE doc_id=$1",  # noqa: S608
            doc_id,
        )
        return _stored(row) if row else None

    async def by_event(self, event_id: str) -> StoredDocument | None:
        row = await self.db.fetchrow(
            f"SELECT {_COLUMNS} FROM document WHERE event_id=$1",  # noqa: S608
            event_id,
        )
        return _stored(row) if row else None

    async def of_procurement(self, procurement_id: str) -> list[StoredDocument]:
        rows = await self.db.fetch(
            f"SELECT {_COLUMNS} FROM document WHERE procurement_id=$1 "  # noqa: S608
            "ORDER BY seq IS NULL, seq, uploaded_at, doc_id",
            procurement_id,
        )
        return [_stored(r) for r in rows]

    async def of_room(self, room_id: str) -> list[StoredDocument]:
        rows = await self.db.fetch(
            f"SELECT {_COLUMNS} FROM document WHERE room_id=$1 "  # noqa: S608
            "ORDER BY seq IS NULL, seq, uploaded_at, doc_id",
            room_id,
        )
        return [_stored(r) for r in rows]

    async def content(self, doc_id: str) -> bytes | None:
        content: bytes | None = await self.db.fetchval(
            "SELECT content FROM document_content WHERE doc_id=$1", doc_id
        )
        return None if content is None else bytes(content)

    async def event_seq(self, room_id: str, event_id: str) -> int | None:
        """Where an event of a room stands in what the homeserver sent (None if unknown)."""
        seq: int | None = await self.db.fetchval(
            "SELECT seq FROM matrix_event WHERE event_id=$1 AND room_id=$2 AND NOT ephemeral",
            event_id,
            room_id,
        )
        return seq

    # Read receipts ---------------------------------------------------------------------------

    async def record_receipt(
        self, room_id: str, user_id: str, event_id: str, seq: int, ts: int
    ) -> None:
        """Keeps a member's latest receipt in a room; an older one arriving late is ignored."""
        await self.db.execute(
            "INSERT INTO read_receipt (room_id, user_id, event_id, seq, ts) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (room_id, user_id) DO UPDATE SET "
            "event_id=excluded.event_id, seq=excluded.seq, ts=excluded.ts "
            "WHERE excluded.seq > read_receipt.seq",
            room_id,
            user_id,
            event_id,
            seq,
            ts,
        )

    async def read_marks(self, room_ids: list[str]) -> dict[str, list[ReadMark]]:
        marks: dict[str, list[ReadMark]] = {room_id: [] for room_id in room_ids}
        if not room_ids:
            return marks
        placeholders = ", ".join(f"${i + 1}" for i in range(len(room_ids)))
        rows = await self.db.fetch(
            f"SELECT room_id, user_id, seq, ts FROM read_receipt "  # noqa: S608
            f"WHERE room_id IN ({placeholders})",
            *room_ids,
        )
        for r in rows:
            marks[r["room_id"]].append(ReadMark(UserId(r["user_id"]), r["seq"], from_ms(r["ts"])))
        return marks

    # Uploads of the bot ---------------------------------------------------------------------

    async def uploaded_mxc(self, doc_id: str) -> str | None:
        """The mxc:// URI of a bot's post once its bytes are uploaded."""
        mxc: str | None = await self.db.fetchval(
            "SELECT mxc_uri FROM document WHERE doc_id=$1", doc_id
        )
        return mxc or None

    async def set_uploaded_mxc(self, doc_id: str, mxc_uri: str) -> str:
        """Keeps the first upload of a post; returns the one kept."""
        await self.db.execute(
            "UPDATE document SET mxc_uri=$2 WHERE doc_id=$1 AND mxc_uri=''", doc_id, mxc_uri
        )
        kept = await self.uploaded_mxc(doc_id)
        assert kept is not None
        return kept

    # Where a document.published goes ---------------------------------------------------------

    async def room_is_unknown(self, procurement_id: str, room_key: str) -> bool:
        """Whether a procurement whose rooms have converged has no such room at all (not even
        one being created): then waiting for it is pointless."""
        settled = await self.db.fetchval(
            "SELECT 1 FROM procurement WHERE id=$1 AND status='done'", procurement_id
        )
        if settled is None:
            return False
        planned = await self.db.fetchval(
            "SELECT 1 FROM managed_room WHERE procurement_id=$1 AND room_key=$2",
            procurement_id,
            room_key,
        )
        return planned is None


def _stored(row: Any) -> StoredDocument:
    return StoredDocument(
        RegisteredDocument(
            doc_id=DocumentId(row["doc_id"]),
            procurement_id=ProcurementId(row["procurement_id"]),
            room_id=RoomId(row["room_id"]),
            room_key=RoomKey(row["room_key"]),
            event_id=EventId(row["event_id"]) if row["event_id"] else None,
            filename=row["filename"],
            mime_type=row["mime_type"],
            size=row["size"],
            sha256=row["sha256"],
            uploader=UserId(row["uploader"]),
            uploaded_at=from_ms(row["uploaded_at"]),
            source=DocumentSource(row["source"]),
            caption=row["caption"],
        ),
        seq=row["seq"],
        mxc_uri=row["mxc_uri"],
    )
