"""`audit export`: the log in the C2SP tlog-tiles layout with its blobs and the readable
dossiers, or one procurement's entries each with its inclusion proof (DESIGN §6)."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..db.audit import AuditLog, LoggedEntry, StoredCheckpoint
from ..db.store import Store
from ..domain import tlog
from ..domain.audit import blob_refs
from ..domain.dossier import LogEntry, RoomInfo, render_dossier
from ..domain.locale import Locale
from .keeper import Checkpoints

_PAGE = 4096  # entries read at a time


@dataclass(slots=True)
class ExportSummary:
    checkpoint: StoredCheckpoint
    entries: int = 0
    blobs: int = 0
    dossiers: list[str] = field(default_factory=list)


async def export(
    store: Store,
    checkpoints: Checkpoints,
    out: Path,
    locale: Locale,
    procurement: str | None = None,
) -> ExportSummary:
    """Writes the export into `out` (made if missing) against a checkpoint of the whole log
    as it is now."""
    audit = store.audit
    while await audit.sequence() > 0:
        pass
    checkpoint = await checkpoints.sign_now()
    if checkpoint is None:
        raise ValueError("the audit log is empty")
    _write(out / "checkpoint", checkpoint.note.encode())
    summary = ExportSummary(checkpoint)
    if procurement is None:
        blobs = await _write_tiles(audit, out, checkpoint.size, summary)
        procurements = await store.procurements.ids()
    else:
        blobs = await _write_proved(audit, out, checkpoint.size, procurement, summary)
        procurements = [procurement]
    summary.blobs = await _write_blobs(audit, out, blobs)
    for procurement_id in procurements:
        await _write_dossier(store, out, checkpoint.size, procurement_id, locale)
        summary.dossiers.append(procurement_id)
    return summary


async def _write_tiles(audit: AuditLog, out: Path, size: int, summary: ExportSummary) -> set[str]:
    """Hash tiles of every level and the entry bundles; returns the blobs entries name."""
    blobs: set[str] = set()
    for tile in tlog.tiles_for(size):
        level = tlog.TILE_HEIGHT * tile.level
        first = tile.index * tlog.TILE_WIDTH
        hashes = await audit.level(level, first, first + tile.width)
        _write(out / tile.path, b"".join(hashes))
        if tile.level == 0:
            entries = await audit.entries(first, first + tile.width)
            _write(out / tile.entries_path, tlog.encode_bundle([e.data for e in entries]))
            blobs |= _blobs_of(entries)
            summary.entries += len(entries)
    return blobs


async def _write_proved(
    audit: AuditLog, out: Path, size: int, procurement: str, summary: ExportSummary
) -> set[str]:
    """One procurement's entries, each with its inclusion proof; no other entry's content."""
    entries = await audit.entries_of_procurement(procurement, size)
    lines = []
    for entry in entries:
        proof = await audit.inclusion_proof(entry.index, size)
        lines.append(
            json.dumps(
                {
                    "index": entry.index,
                    "entry": _b64(entry.data),
                    "proof": [_b64(h) for h in proof],
                }
            )
        )
    _write(out / "entries.jsonl", "".join(line + "\n" for line in lines).encode())
    summary.entries = len(entries)
    return _blobs_of(entries)


async def _write_blobs(audit: AuditLog, out: Path, digests: Iterable[str]) -> int:
    count = 0
    for digest in sorted(digests):
        data = await audit.blob(digest)
        if data is not None:  # a blob missing from the database is for the verifier to report
            _write(out / "blobs" / digest, data)
            count += 1
    return count


async def _write_dossier(
    store: Store, out: Path, size: int, procurement_id: str, locale: Locale
) -> None:
    entries = [
        LogEntry.from_json(json.loads(e.data))
        for e in await store.audit.entries_of_procurement(procurement_id, size)
    ]
    rooms = await _rooms(store, procurement_id)
    pages = render_dossier(
        procurement_id, entries, rooms, locale, lambda digest: f"../../blobs/{digest}"
    )
    folder = out / "dossier" / _safe_name(procurement_id)
    for relative, text in pages.items():
        _write(folder / relative, text.encode())


async def _rooms(store: Store, procurement_id: str) -> dict[str, RoomInfo]:
    managed = [r for r in await store.rooms.of_procurement(procurement_id) if r.room_id]
    states = await store.rooms.state_of([r.room_id for r in managed if r.room_id])
    rooms: dict[str, RoomInfo] = {}
    for room in managed:
        assert room.room_id is not None
        name = (states.get(room.room_id, {}).get(("m.room.name", "")) or {}).get("name")
        kind = "space" if room.is_space else room.key.split(":", 1)[0]
        rooms[room.room_id] = RoomInfo(str(name or room.key), kind)
    return rooms


def _blobs_of(entries: Iterable[LoggedEntry]) -> set[str]:
    found: set[str] = set()
    for entry in entries:
        found |= blob_refs(json.loads(entry.data))
    return found


def _safe_name(text: str) -> str:
    """A procurement id as a folder name (ids are the procurement system's, not ours)."""
    cleaned = "".join(c if c.isalnum() or c in "-_." else "_" for c in text).strip(".")
    return cleaned or "_"


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
