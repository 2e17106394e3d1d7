"""Documents sent by the procurement system (`document.published`, the `document` block of
approvals and votes) and bot notices (`notice.posted`), checked at the webhook edge."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from datetime import date
from urllib.parse import urlsplit

from .errors import InvalidInput
from .ids import ProcurementId, RoomKey
from .reader import Reader

# Ids that end up in URL paths (`…/votes/{vote_id}`) and room keys: no slash, no space.
SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._~:-]{0,127}$")
# Room keys of DESIGN §3; the ids after the colon come from the snapshot, so they are only
# kept free of whitespace and control characters here.
_ROOM_KEY = re.compile(
    r"^(org|commission|(supplier|approval|specification|shipment):[^\s\x00-\x1f\x7f]{1,128})$"
)
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
_MIME = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$"
)
_FORBIDDEN_IN_FILENAME = re.compile(r"[/\\\x00-\x1f\x7f]")
# The webhook body limit is what bounds an inline document; this only keeps the reader from
# refusing a long string before that limit applies.
_MAX_BASE64_CHARS = 1 << 31
MAX_CAPTION = 4000
MAX_MARKDOWN = 16_000  # a Matrix event is at most 64 KiB, and the HTML rendering doubles it


@dataclass(frozen=True, slots=True)
class DocumentInfo:
    """What is known about a document without its bytes (cards, registry, REST views)."""

    filename: str
    type: str | None = None  # «Торгово-коммерческий анализ (ТКА)», «ДС к договору», …
    number: str | None = None
    series: str | None = None
    valid_until: date | None = None
    mime_type: str | None = None
    sha256: str | None = None  # lowercase hex; checked against the bytes when both are known


@dataclass(frozen=True, slots=True)
class DocumentInput:
    """A document as sent: inline bytes, a URL for the bridge to fetch, or (for a vote's
    subject) neither, when the vote only mentions a document already in the room."""

    info: DocumentInfo
    content: bytes | None = None
    url: str | None = None

    @property
    def size(self) -> int | None:
        return None if self.content is None else len(self.content)


@dataclass(frozen=True, slots=True)
class DocumentPublished:
    """`document.published`: post a file into a room and the document registry."""

    procurement_id: ProcurementId
    room: RoomKey
    document: DocumentInput
    caption: str | None = None


@dataclass(frozen=True, slots=True)
class NoticePosted:
    """`notice.posted`: a bot notice written by the procurement system."""

    procurement_id: ProcurementId
    room: RoomKey
    markdown: str


def parse_document_published(data: object, path: str = "data") -> DocumentPublished:
    reader = Reader(data, path)
    return DocumentPublished(
        procurement_id=ProcurementId(read_id(reader, "procurement_id")),
        room=read_room_key(reader, "room"),
        document=parse_document(reader.obj("document"), content_required=True),
        caption=reader.opt_text("caption", max_len=MAX_CAPTION),
    )


def parse_notice_posted(data: object, path: str = "data") -> NoticePosted:
    reader = Reader(data, path)
    return NoticePosted(
        procurement_id=ProcurementId(read_id(reader, "procurement_id")),
        room=read_room_key(reader, "room"),
        markdown=reader.text("markdown", max_len=MAX_MARKDOWN),
    )


def parse_document(reader: Reader, *, content_required: bool) -> DocumentInput:
    """The `document` block; with `content_required` exactly one of content_base64/url."""
    info = DocumentInfo(
        filename=_filename(reader),
        type=reader.opt_text("type", max_len=200),
        number=reader.opt_text("number", max_len=100),
        series=reader.opt_text("series", max_len=100),
        valid_until=reader.opt_calendar_date("valid_until"),
        mime_type=_opt_pattern(reader, "mime_type", _MIME, 'a MIME type like "application/pdf"'),
        sha256=_opt_sha256(reader),
    )
    content = _opt_base64(reader)
    url = _opt_url(reader)
    if content is not None and url is not None:
        raise InvalidInput(reader.at("url"), "give content_base64 or url, not both")
    if content_required and content is None and url is None:
        raise InvalidInput(
            reader.at("content_base64"),
            "the document needs content_base64 or url",
            "M_MISSING_PARAM",
        )
    if content is not None and info.sha256 is not None:
        check_sha256(content, info.sha256, reader.at("sha256"))
    return DocumentInput(info=info, content=content, url=url)


def check_document(bytes_len: int, limit: int, path: str = "data.document") -> None:
    """Refuse a document over the configured size (inline or fetched from its URL)."""
    if bytes_len > limit:
        raise InvalidInput(
            path, f"the document is {bytes_len} bytes, over the limit of {limit}", "M_TOO_LARGE"
        )


def check_sha256(data: bytes, expected_hex: str, path: str = "data.document.sha256") -> None:
    """Refuse bytes whose SHA-256 is not the one the procurement system announced."""
    actual = sha256_hex(data)
    if actual != expected_hex.lower():
        raise InvalidInput(
            path,
            f"the document's SHA-256 is {actual}, not {expected_hex.lower()}",
            "ORG_PROCUREMENT_SHA256_MISMATCH",
        )


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_id(reader: Reader, key: str) -> str:
    """An id that goes into URLs and room keys: letters, digits and `._~:-`."""
    value = reader.text(key, max_len=128)
    if not SAFE_ID.fullmatch(value):
        raise InvalidInput(
            reader.at(key), f"{value!r} is not an id (letters, digits and ._~:- only)"
        )
    return value


def read_opt_id(reader: Reader, key: str) -> str | None:
    return read_id(reader, key) if reader.has(key) else None


def read_room_key(reader: Reader, key: str) -> RoomKey:
    value = reader.text(key, max_len=160)
    if not _ROOM_KEY.fullmatch(value):
        raise InvalidInput(
            reader.at(key),
            f"{value!r} is not a room key (org, commission, supplier:<id>, approval:<id>, "
            "specification:<id>, shipment:<id>)",
        )
    return RoomKey(value)


def _filename(reader: Reader) -> str:
    name = reader.text("filename", max_len=255)
    if _FORBIDDEN_IN_FILENAME.search(name) or name.strip() in (".", ".."):
        raise InvalidInput(
            reader.at("filename"), f"{name!r} is not a file name (no path, no control characters)"
        )
    return name


def _opt_pattern(reader: Reader, key: str, pattern: re.Pattern[str], what: str) -> str | None:
    value = reader.opt_text(key, max_len=255)
    if value is not None and not pattern.fullmatch(value):
        raise InvalidInput(reader.at(key), f"{value!r} is not {what}")
    return value


def _opt_sha256(reader: Reader) -> str | None:
    value = _opt_pattern(reader, "sha256", _SHA256, "a SHA-256 in hex (64 digits)")
    return None if value is None else value.lower()


def _opt_base64(reader: Reader) -> bytes | None:
    text = reader.opt_text("content_base64", max_len=_MAX_BASE64_CHARS)
    if text is None:
        return None
    try:
        # Senders wrap base64 at 76 columns (MIME); the line breaks carry nothing.
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(reader.at("content_base64"), "not valid base64") from None


def _opt_url(reader: Reader) -> str | None:
    url = reader.opt_text("url", max_len=2048)
    if url is None:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(reader.at("url"), f"{url!r} is not an http(s) URL")
    if any(ch.isspace() or ord(ch) < 0x20 for ch in url):
        raise InvalidInput(reader.at("url"), "a URL has no spaces or control characters")
    return url
