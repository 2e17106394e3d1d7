"""The transparency log's entries (DESIGN §6): what each kind of fact records, and the
canonical entry (RFC 8785) a record becomes once it has its place in the tree."""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from enum import Enum
from typing import Any

from . import tlog

# A payload whose canonical form is larger is kept as a blob named by its hash; an entry stays
# well below the 65,535 bytes a tlog-tiles entry bundle can hold.
INLINE_LIMIT = 16 * 1024
# JSON numbers an RFC 8785 reader takes exactly (IEEE 754 doubles); others are kept as text.
_SAFE_INTEGER = 2**53 - 1
_SURROGATE = re.compile("[\ud800-\udfff]")
_SHA256 = re.compile("[0-9a-f]{64}")


class Kind(Enum):
    MATRIX_EVENT = "matrix.event"
    WEBHOOK = "webhook"
    DOCUMENT = "document"
    CALLBACK = "callback"
    CALLBACK_ANSWER = "callback.answer"
    VOTE_BALLOT = "vote.ballot"
    VOTE_RESULT = "vote.result"
    APPROVAL_SIGNATURE = "approval.signature"
    APPROVAL_DECISION = "approval.decision"
    APPROVAL_OUTCOME = "approval.outcome"
    ENFORCEMENT = "enforcement"
    INCIDENT = "incident"


@dataclass(frozen=True, slots=True)
class Record:
    """A fact as written in its own transaction, before it has a place in the tree."""

    kind: str
    time: int
    procurement: str | None
    room: str | None
    subject: str | None
    payload: str  # JSON text


@dataclass(frozen=True, slots=True)
class Entry:
    index: int
    data: bytes  # the canonical entry: what the leaf hash covers
    blob: bytes | None  # the canonical payload, when too large to be inline
    payload_sha256: str


def canonical(value: Any) -> bytes:
    """RFC 8785 canonical JSON of any value JSON can carry: integers beyond what a double holds
    exactly become strings, and lone surrogates (valid in JSON text, not in UTF-8) U+FFFD."""
    return tlog.canonical(_representable(value))


def entry_of(index: int, record: Record) -> Entry:
    payload = canonical(json.loads(record.payload))
    digest = hashlib.sha256(payload).hexdigest()
    entry: dict[str, Any] = {
        "index": index,
        "kind": record.kind,
        "time": record.time,
        "procurement": record.procurement,
        "room": record.room,
        "subject": record.subject,
        "payload_sha256": digest,
    }
    inline = len(payload) <= INLINE_LIMIT
    if inline:
        entry["payload"] = json.loads(payload)
    return Entry(index, canonical(entry), None if inline else payload, digest)


def file_ref(sha256: str, size: int) -> dict[str, Any]:
    """How a payload names a file kept as a blob."""
    return {"sha256": sha256, "size": size}


def blob_refs(entry: Any) -> set[str]:
    """The blobs an entry needs: its payload when not inline, and every file it names."""
    if not isinstance(entry, dict):
        return set()
    found: set[str] = set()
    if "payload" not in entry and isinstance(entry.get("payload_sha256"), str):
        found.add(entry["payload_sha256"])
    found |= {ref["sha256"] for ref in file_refs(entry.get("kind"), entry.get("payload"))}
    return found


def file_refs(kind: Any, payload: Any) -> list[dict[str, Any]]:
    """The files a payload names. A Matrix event holds objects people wrote, who could make
    any of them look like a file: nothing in one names a blob (the registry's `document`
    entry names a posted file)."""
    if kind == Kind.MATRIX_EVENT.value:
        return []
    found: list[dict[str, Any]] = []
    stack = [payload]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            if is_file_ref(value):
                found.append(value)
            else:
                stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return found


def is_file_ref(value: dict[str, Any]) -> bool:
    digest, size = value.get("sha256"), value.get("size")
    return (
        set(value) == {"sha256", "size"}
        and isinstance(digest, str)
        and _SHA256.fullmatch(digest) is not None
        and isinstance(size, int)
        and not isinstance(size, bool)
    )


def _representable(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)  # JSON text may say NaN
    if isinstance(value, int):
        return value if -_SAFE_INTEGER <= value <= _SAFE_INTEGER else str(value)
    if isinstance(value, str):
        return value if _is_utf8(value) else _SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_representable(str(k)): _representable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_representable(v) for v in value]
    return str(value)


def _is_utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True
