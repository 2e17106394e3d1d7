"""The document registry's values: a file posted in a room, who has seen it, what goes out."""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from .ids import DocumentId, EventId, ProcurementId, RoomId, RoomKey, UserId
from .text import clean_text

# Files as Matrix clients send them (m.image and the rest are files too).
FILE_MSGTYPES = frozenset({"m.file", "m.image", "m.video", "m.audio"})
_MIME = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$"
)
# A file name as people give it (a file system's limit); a caption as `document.published`.
MAX_FILENAME = 255
MAX_CAPTION = 4000
_MXC = re.compile(r"^mxc://([A-Za-z0-9.:\[\]-]{1,255})/([A-Za-z0-9_-]{1,255})$")
OCTET_STREAM = "application/octet-stream"


class DocumentSource(Enum):
    USER = "user"  # a member posted it in the room
    BRIDGE = "bridge"  # the bot posted it (document.published, an approval's document)


@dataclass(frozen=True, slots=True)
class RegisteredDocument:
    doc_id: DocumentId
    procurement_id: ProcurementId
    room_id: RoomId
    room_key: RoomKey
    event_id: EventId | None  # None until the bot's own post is sent
    filename: str
    mime_type: str | None
    size: int
    sha256: str
    uploader: UserId
    uploaded_at: datetime
    source: DocumentSource
    caption: str | None


@dataclass(frozen=True, slots=True)
class Sighting:
    """A member whose read receipt lies at or after the document: they have seen it."""

    user: UserId
    ts: datetime  # the time of that receipt (their latest), not of the first look


@dataclass(frozen=True, slots=True)
class ReadMark:
    """A member's latest public read receipt in a room; `seq` orders it among the events."""

    user: UserId
    seq: int
    ts: datetime


@dataclass(frozen=True, slots=True)
class FileMessage:
    """What an `m.room.message` file event says about its file."""

    mxc: str
    filename: str
    mime_type: str | None
    caption: str | None


def parse_file_message(content: Mapping[str, Any]) -> FileMessage | None:
    """The file of a message, None if it is no file (or an edit, or an encrypted one)."""
    msgtype = content.get("msgtype")
    # A client may put anything there; only a string can be looked up in a set.
    if not isinstance(msgtype, str) or msgtype not in FILE_MSGTYPES:
        return None
    relation = content.get("m.relates_to")
    if isinstance(relation, Mapping) and relation.get("rel_type") == "m.replace":
        return None
    url = content.get("url")
    if not isinstance(url, str) or parse_mxc(url) is None:
        return None
    body = content.get("body") if isinstance(content.get("body"), str) else None
    filename = content.get("filename") if isinstance(content.get("filename"), str) else None
    # Matrix 1.10 captions: with `filename` present, a different `body` is the caption.
    name = clean_text((filename or body or "").strip(), MAX_FILENAME, single_line=True) or "file"
    caption = body if filename and body and body != filename else None
    if caption is not None:
        caption = clean_text(caption, MAX_CAPTION)
    info = content.get("info")
    mime = info.get("mimetype") if isinstance(info, Mapping) else None
    return FileMessage(url, name, checked_mime(mime), caption)


def parse_mxc(uri: str) -> tuple[str, str] | None:
    """(server name, media id) of an `mxc://` URI."""
    match = _MXC.fullmatch(uri)
    return (match.group(1), match.group(2)) if match else None


def checked_mime(value: object) -> str | None:
    """A MIME type as given, if it looks like one (it ends up in a Content-Type header)."""
    return value if isinstance(value, str) and _MIME.fullmatch(value) else None


def mime_for(filename: str, declared: str | None) -> str:
    """The declared type, else the one the file name suggests, else octet-stream."""
    guessed, _ = mimetypes.guess_type(filename, strict=False)
    return checked_mime(declared) or checked_mime(guessed) or OCTET_STREAM


def file_message_content(
    filename: str, mime_type: str, size: int, mxc: str, caption: str | None
) -> dict[str, Any]:
    """An `m.file` message; a caption goes in `body` the way Matrix 1.10 clients show it."""
    return {
        "msgtype": "m.file",
        "body": caption or filename,
        "filename": filename,
        "url": mxc,
        "info": {"mimetype": mime_type, "size": size},
        "m.mentions": {},
    }


def seen_by(
    document_seq: int | None, uploader: UserId, marks: Iterable[ReadMark], bot: UserId
) -> list[Sighting]:
    """Who has read the room up to the document or past it, the uploader and the bot aside.

    Best effort: private read receipts never reach the bridge.
    """
    if document_seq is None:
        return []
    return sorted(
        (
            Sighting(mark.user, mark.ts)
            for mark in marks
            if mark.seq >= document_seq and mark.user not in (uploader, bot)
        ),
        key=lambda s: (s.ts, s.user),
    )


def find_document(
    documents: Sequence[RegisteredDocument], query: str
) -> RegisteredDocument | None:
    """The latest document whose name contains `query` (any case); the latest if no query."""
    wanted = query.strip().casefold()
    matching = [d for d in documents if wanted in d.filename.casefold()]
    return matching[-1] if matching else None


def document_uploaded_payload(document: RegisteredDocument) -> dict[str, Any]:
    """The `document.uploaded` callback's `data` (DESIGN §4.2)."""
    return {
        "procurement_id": document.procurement_id,
        "document_id": document.doc_id,
        "room": document.room_key,
        "room_id": document.room_id,
        "event_id": document.event_id,
        "filename": document.filename,
        "mime_type": document.mime_type,
        "size": document.size,
        "sha256": document.sha256,
        "uploader": document.uploader,
        "uploaded_at": timestamp(document.uploaded_at),
    }


def document_view(document: RegisteredDocument, sightings: Sequence[Sighting]) -> dict[str, Any]:
    """One entry of `GET /api/v1/procurements/{id}/documents`."""
    return {
        "doc_id": document.doc_id,
        "room_key": document.room_key,
        "room_id": document.room_id,
        "event_id": document.event_id,
        "filename": document.filename,
        "mime_type": document.mime_type,
        "size": document.size,
        "sha256": document.sha256,
        "uploader": document.uploader,
        "uploaded_at": timestamp(document.uploaded_at),
        "source": document.source.value,
        "caption": document.caption,
        "content": f"/api/v1/documents/{document.doc_id}/content",
        "seen_by": [{"user": s.user, "ts": timestamp(s.ts)} for s in sightings],
    }


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def timestamp(value: datetime) -> str:
    return value.isoformat(timespec="milliseconds")
