"""The offline verifier of an audit export (DESIGN §6): from the export and the log's verifier key
alone, it shows that the entries are the log the checkpoint signs, or names the first that is not.

Two exports are read. A full one is the C2SP tlog-tiles layout — ``checkpoint``, hash tiles under
``tile/<L>/…``, entry bundles under ``tile/entries/…`` — with ``blobs/<sha256>``. A procurement's
export has the ``checkpoint``, ``entries.jsonl`` (``{"index", "entry", "proof"}`` a line, the
entry and its inclusion proof in base64) and its ``blobs/``.

The checks run in this order and stop at the first failure: the checkpoint's signature; every
entry's form and place in the tree, and the tree's root; every payload and file against its
hash; and, given an earlier checkpoint, that the log extends it.

``python -m bridge audit verify OUT/ --key VERIFIER [--checkpoint EARLIER]`` calls `run`.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import re
import sys
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bridge.domain.audit import file_refs
from bridge.domain.merkle import (
    HASH_SIZE,
    TreeLevels,
    all_nodes,
    leaf_hash,
    root,
    verify_inclusion,
)
from bridge.domain.tlog import (
    TILE_HEIGHT,
    TILE_WIDTH,
    BundleError,
    Checkpoint,
    Tile,
    TlogError,
    Verifier,
    canonical,
    iter_bundle,
    open_note,
    parse_verifier,
    tiles_for,
)

FULL = "full"
PROCUREMENT = "procurement"
CHECKPOINT_FILE = "checkpoint"
ENTRIES_FILE = "entries.jsonl"
BLOBS_DIR = "blobs"

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_READ_CHUNK = 1 << 20


class VerificationFailed(Exception):
    """The export is not what its checkpoint signs; ``index`` is the first entry concerned,
    when the failure can be pinned to one."""

    def __init__(self, reason: str, index: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.index = index


@dataclass(frozen=True, slots=True)
class Report:
    """What a verified export holds."""

    mode: str  # FULL or PROCUREMENT
    origin: str
    signed_by: str  # <key name>+<key id>
    size: int  # the checkpoint's tree size
    root: bytes
    entries: int  # entries read: all of them in a full export
    kinds: Mapping[str, int]
    first_time: int | None  # milliseconds since the epoch, as entries write it
    last_time: int | None
    blobs: int  # distinct payload and file blobs checked
    earlier_size: int | None = None
    notes: tuple[str, ...] = field(default=())

    def lines(self) -> list[str]:
        lines = [
            f"OK: {self.origin}, {self.mode} export",
            f"  checkpoint: {self.size} entries, root {base64.b64encode(self.root).decode()}",
            f"  signed by:  {self.signed_by}",
            f"  entries:    {self.entries}",
        ]
        width = max((len(kind) for kind in self.kinds), default=0)
        lines += [f"    {kind:<{width}}  {count}" for kind, count in sorted(self.kinds.items())]
        if self.first_time is not None and self.last_time is not None:
            lines.append(f"  time:       {_when(self.first_time)} … {_when(self.last_time)}")
        lines.append(f"  blobs:      {self.blobs}")
        if self.earlier_size is not None:
            lines.append(f"  extends the earlier checkpoint of size {self.earlier_size}")
        lines += [f"  note: {note}" for note in self.notes]
        return lines


def verify(out_dir: Path, verifier: str, earlier: str | None = None) -> Report:
    """Verifies the export in ``out_dir`` against the log's ``verifier`` key, and that it extends
    ``earlier`` (the text of a signed checkpoint) when given. Raises `VerificationFailed`."""
    key = _parse_key(verifier)
    checkpoint = _read_checkpoint(out_dir, key)
    reader = _EntryReader(out_dir / BLOBS_DIR)
    if (out_dir / ENTRIES_FILE).exists():
        mode, tree = PROCUREMENT, None
        _verify_procurement(out_dir / ENTRIES_FILE, checkpoint, reader)
    else:
        mode, tree = FULL, _verify_full(out_dir, checkpoint, reader)
    if reader.payload_failure is not None:
        raise reader.payload_failure
    earlier_size = None if earlier is None else _verify_extends(earlier, key, checkpoint, tree)
    return Report(
        mode=mode,
        origin=checkpoint.origin,
        signed_by=key.identity,
        size=checkpoint.size,
        root=checkpoint.root,
        entries=reader.count,
        kinds=dict(reader.kinds),
        first_time=reader.first_time,
        last_time=reader.last_time,
        blobs=len(reader.checked_blobs),
        earlier_size=earlier_size,
        notes=_notes(checkpoint, key),
    )


def run(args: list[str]) -> int:
    """``audit verify``: prints the report, or why the export fails; 0 if it verifies, else 1."""
    parser = argparse.ArgumentParser(
        prog="python -m bridge audit verify",
        description="Verify an export of the audit log offline, with the log's verifier key.",
    )
    parser.add_argument("out", type=Path, metavar="OUT", help="the export's directory")
    parser.add_argument(
        "--key", required=True, metavar="VERIFIER", help="the log's key: <name>+<hash>+<base64>"
    )
    parser.add_argument(
        "--checkpoint",
        type=Path,
        metavar="EARLIER",
        help="a checkpoint of this log held earlier (a file): the log must extend it",
    )
    options = parser.parse_args(args)
    try:
        earlier = None if options.checkpoint is None else _read_text(options.checkpoint)
        report = verify(options.out, options.key, earlier)
    except VerificationFailed as failure:
        print(f"FAILED: {failure.reason}")
        return 1
    except OSError as error:
        print(f"FAILED: cannot read {error.filename}: {error.strerror}")
        return 1
    print("\n".join(report.lines()))
    return 0


# -- The checkpoint ---------------------------------------------------------------------------


def _parse_key(verifier: str) -> Verifier:
    try:
        return parse_verifier(verifier)
    except TlogError as error:
        raise VerificationFailed(f"the key is not a verifier key: {error}") from None


def _read_checkpoint(out_dir: Path, key: Verifier) -> Checkpoint:
    path = out_dir / CHECKPOINT_FILE
    if not path.is_file():
        raise VerificationFailed(f"{path} is missing: an export starts with its checkpoint")
    return _open_checkpoint(_read_text(path), key, "the checkpoint")


def _open_checkpoint(note: str, key: Verifier, what: str) -> Checkpoint:
    try:
        return Checkpoint.parse(open_note(note, key))
    except TlogError as error:
        raise VerificationFailed(f"{what}: {error}") from None


def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode()
    except UnicodeDecodeError:
        raise VerificationFailed(f"{path} is not UTF-8 text") from None


def _notes(checkpoint: Checkpoint, key: Verifier) -> tuple[str, ...]:
    if checkpoint.origin == key.name:
        return ()
    # C2SP recommends, not requires, that they match; a differing name is worth a look only.
    return (f"the checkpoint's origin {checkpoint.origin!r} is not the key's name {key.name!r}",)


# -- Entries, whichever the export ------------------------------------------------------------


class _EntryReader:
    """Checks each entry's form, and tallies what the report says. A payload or file that does
    not match its hash is kept, not raised: it is reported after the tree's own checks."""

    def __init__(self, blobs_dir: Path) -> None:
        self.blobs_dir = blobs_dir
        self.count = 0
        self.kinds: Counter[str] = Counter()
        self.first_time: int | None = None
        self.last_time: int | None = None
        self.checked_blobs: dict[str, int] = {}  # name → size, once it hashes to its name
        self.payload_failure: VerificationFailed | None = None

    def read(self, index: int, data: bytes) -> dict[str, Any]:
        entry = _parse_entry(index, data)
        self._tally(entry)
        if self.payload_failure is None:
            self.payload_failure = self._payload_failure(index, entry)
        return entry

    def _tally(self, entry: dict[str, Any]) -> None:
        self.count += 1
        kind = entry.get("kind")
        self.kinds[kind if isinstance(kind, str) else "(no kind)"] += 1
        time = entry.get("time")
        if isinstance(time, int) and not isinstance(time, bool):
            self.first_time = time if self.first_time is None else min(self.first_time, time)
            self.last_time = time if self.last_time is None else max(self.last_time, time)

    def _payload_failure(self, index: int, entry: dict[str, Any]) -> VerificationFailed | None:
        digest = entry.get("payload_sha256")
        if not isinstance(digest, str) or not _SHA256_HEX.fullmatch(digest):
            return VerificationFailed(f"entry {index} has no payload_sha256", index)
        if "payload" in entry:
            payload = entry["payload"]
            if hashlib.sha256(canonical(payload)).hexdigest() != digest:
                return VerificationFailed(
                    f"entry {index}: its payload does not hash to its payload_sha256", index
                )
        else:
            problem = self._blob_problem(digest, None)
            if problem is not None:
                return VerificationFailed(f"entry {index}: its payload {problem}", index)
            try:
                payload = json.loads((self.blobs_dir / digest).read_bytes())
            except (ValueError, RecursionError):
                return VerificationFailed(
                    f"entry {index}: its payload {BLOBS_DIR}/{digest} is not JSON", index
                )
        for reference in file_refs(entry.get("kind"), payload):
            problem = self._blob_problem(reference["sha256"], reference["size"])
            if problem is not None:
                return VerificationFailed(f"entry {index}: a file of its payload {problem}", index)
        return None

    def _blob_problem(self, name: object, size: object) -> str | None:
        if not isinstance(name, str) or not _SHA256_HEX.fullmatch(name):
            return f"names a blob by {name!r}, not by a SHA-256 in hex"
        if size is not None and (not isinstance(size, int) or isinstance(size, bool)):
            return f"gives {BLOBS_DIR}/{name} a size that is not a number: {size!r}"
        if name not in self.checked_blobs:
            path = self.blobs_dir / name
            if not path.is_file():
                return f"{BLOBS_DIR}/{name} is missing"
            actual_size, digest = _hash_file(path)
            if digest != name:
                return f"{BLOBS_DIR}/{name} does not hash to its name"
            self.checked_blobs[name] = actual_size
        if size is not None and self.checked_blobs[name] != size:
            return f"{BLOBS_DIR}/{name} has {self.checked_blobs[name]} bytes, not {size}"
        return None


def _parse_entry(index: int, data: bytes) -> dict[str, Any]:
    """The entry at ``index``, which must be canonical JSON and say it is entry ``index``."""
    try:
        entry = json.loads(data.decode())
    except (ValueError, RecursionError):
        raise VerificationFailed(f"entry {index} is not JSON", index) from None
    if not isinstance(entry, dict):
        raise VerificationFailed(f"entry {index} is not a JSON object", index)
    try:
        canonical_form = canonical(entry)
    except TlogError:
        canonical_form = b""
    if canonical_form != data:
        raise VerificationFailed(f"entry {index} is not canonical JSON (RFC 8785)", index)
    number = entry.get("index")
    if number != index or isinstance(number, bool):
        raise VerificationFailed(
            f"entry {index} is missing or out of place: the entry in its place says it is "
            f"entry {number!r}",
            index,
        )
    return entry


def _hash_file(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as file:
        while chunk := file.read(_READ_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


# -- A full export: entry bundles and hash tiles ----------------------------------------------


def _verify_full(out_dir: Path, checkpoint: Checkpoint, reader: _EntryReader) -> TreeLevels:
    """Reads every entry up to the checkpoint's size against the level-0 tiles, then checks the
    tiles above and the root against the tree recomputed from the entries."""
    tiles = tiles_for(checkpoint.size)
    leaf_hashes: list[bytes] = []
    for tile in tiles:
        if tile.level == 0:
            leaf_hashes += _verify_bundle(out_dir, tile, checkpoint.size, reader)
    tree = all_nodes(leaf_hashes)
    failures = [_tile_failure(out_dir, tile, tree) for tile in tiles if tile.level > 0]
    found = [failure for failure in failures if failure is not None]
    if found:
        # Tiles are read level by level; the failure to report is the one nearest the start.
        raise min(found, key=lambda failure: -1 if failure.index is None else failure.index)
    recomputed = root(checkpoint.size, tree)
    if recomputed != checkpoint.root:
        raise VerificationFailed(
            f"the root recomputed from the entries, {_b64(recomputed)}, is not the checkpoint's "
            f"root {_b64(checkpoint.root)}"
        )
    return tree


def _verify_bundle(out_dir: Path, tile: Tile, size: int, reader: _EntryReader) -> list[bytes]:
    """The leaf hashes of one entry bundle, each checked against the level-0 tile."""
    bundle = _read_optional(out_dir / tile.entries_path)
    if bundle is None:
        raise VerificationFailed(
            f"{tile.entries_path} is missing: the log has fewer entries than its checkpoint's "
            f"size {size}; first missing index {tile.first_leaf}",
            tile.first_leaf,
        )
    tile_data = _read_optional(out_dir / tile.path) or b""
    hashes = _split_hashes(tile_data)
    leaf_hashes: list[bytes] = []
    try:
        for offset, data in enumerate(iter_bundle(bundle)):
            index = tile.first_leaf + offset
            if offset >= tile.width:
                raise VerificationFailed(
                    f"{tile.entries_path} holds entries beyond the checkpoint's size {size}, "
                    f"from index {index}",
                    index,
                )
            reader.read(index, data)
            leaf_hashes.append(_checked_leaf(index, data, hashes, tile))
    except BundleError as error:
        index = tile.first_leaf + error.position
        raise VerificationFailed(f"entry {index}: {tile.entries_path}: {error}", index) from None
    if len(leaf_hashes) < tile.width:
        missing = tile.first_leaf + len(leaf_hashes)
        raise VerificationFailed(
            f"the log has fewer entries than its checkpoint's size {size}: "
            f"first missing index {missing}",
            missing,
        )
    _check_no_more_hashes(tile, tile_data)
    return leaf_hashes


def _checked_leaf(index: int, data: bytes, hashes: list[bytes], tile: Tile) -> bytes:
    offset = index - tile.first_leaf
    if offset >= len(hashes):
        raise VerificationFailed(
            f"entry {index} has no hash in the tiles: {tile.path} is missing or ends before it",
            index,
        )
    leaf = leaf_hash(data)
    if leaf != hashes[offset]:
        raise VerificationFailed(f"entry {index} does not match its hash in the tiles", index)
    return leaf


def _tile_failure(out_dir: Path, tile: Tile, tree: TreeLevels) -> VerificationFailed | None:
    """Whether a tile above level 0 holds the hashes recomputed from the entries; a failure
    names the first entry under the first hash that differs."""
    data = _read_optional(out_dir / tile.path)
    if data is None:
        return VerificationFailed(
            f"{tile.path} is missing (entries from {tile.first_leaf})", tile.first_leaf
        )
    hashes = _split_hashes(data)
    level = tile.level * TILE_HEIGHT
    for offset in range(tile.width):
        node = tile.index * TILE_WIDTH + offset
        if offset >= len(hashes) or hashes[offset] != tree.levels[level][node]:
            first, last = node << level, ((node + 1) << level) - 1
            return VerificationFailed(
                f"{tile.path} disagrees with the hashes recomputed from the entries: "
                f"hash {offset}, over entries {first} to {last}",
                first,
            )
    try:
        _check_no_more_hashes(tile, data)
    except VerificationFailed as failure:
        return failure
    return None


def _check_no_more_hashes(tile: Tile, data: bytes) -> None:
    """A tile holds exactly the hashes of the checkpoint's tree: more is not what was signed."""
    if len(data) != tile.width * HASH_SIZE:
        raise VerificationFailed(
            f"{tile.path} holds {len(data)} bytes, not the {tile.width} hashes of its width"
        )


def _split_hashes(data: bytes) -> list[bytes]:
    return [data[i : i + HASH_SIZE] for i in range(0, len(data) - HASH_SIZE + 1, HASH_SIZE)]


def _read_optional(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() else None


# -- A procurement's export: entries with inclusion proofs ------------------------------------


def _verify_procurement(path: Path, checkpoint: Checkpoint, reader: _EntryReader) -> None:
    previous = -1
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            index, data, proof = _parse_line(number, line)
            if index >= checkpoint.size:
                raise VerificationFailed(
                    f"entry {index} is beyond the checkpoint's size {checkpoint.size}", index
                )
            if index <= previous:
                raise VerificationFailed(
                    f"entry {index} comes after entry {previous} in {ENTRIES_FILE}", index
                )
            previous = index
            reader.read(index, data)
            if not verify_inclusion(
                leaf_hash(data), index, checkpoint.size, proof, checkpoint.root
            ):
                raise VerificationFailed(
                    f"entry {index}: its inclusion proof does not lead to the checkpoint's root",
                    index,
                )


def _parse_line(number: int, line: bytes) -> tuple[int, bytes, list[bytes]]:
    """A line of entries.jsonl: ``{"index", "entry" (base64), "proof" ([base64])}``."""
    where = f"{ENTRIES_FILE} line {number}"
    try:
        row = json.loads(line)
    except (ValueError, RecursionError):
        raise VerificationFailed(f"{where} is not JSON") from None
    index = row.get("index") if isinstance(row, dict) else None
    if not isinstance(index, int) or isinstance(index, bool) or index < 0:
        raise VerificationFailed(f"{where} has no index")
    entry, proof = row.get("entry"), row.get("proof")
    if not isinstance(entry, str) or not isinstance(proof, list):
        raise VerificationFailed(f"entry {index} ({where}) lacks its entry or its proof", index)
    try:
        return index, _b64_decode(entry), [_b64_decode(hash_) for hash_ in proof]
    except (TypeError, ValueError):
        raise VerificationFailed(
            f"entry {index} ({where}): its entry or its proof is not base64", index
        ) from None


# -- An earlier checkpoint --------------------------------------------------------------------


def _verify_extends(
    earlier_note: str, key: Verifier, checkpoint: Checkpoint, tree: TreeLevels | None
) -> int:
    """That the log is the earlier one with entries added; returns the earlier size. Only a full
    export can show it: the tree's first ``earlier.size`` leaves must give the earlier root."""
    earlier = _open_checkpoint(earlier_note, key, "the earlier checkpoint")
    if earlier.origin != checkpoint.origin:
        raise VerificationFailed(
            f"the earlier checkpoint is of the log {earlier.origin!r}, not {checkpoint.origin!r}"
        )
    if earlier.size > checkpoint.size:
        raise VerificationFailed(
            f"the log is shorter than the earlier checkpoint of size {earlier.size}: "
            f"first missing index {checkpoint.size}",
            checkpoint.size,
        )
    if earlier.size == checkpoint.size:
        extends = earlier.root == checkpoint.root
    elif tree is None:
        raise VerificationFailed(
            f"showing that the log extends the earlier checkpoint of size {earlier.size} needs "
            "a full export: this one holds one procurement's entries"
        )
    else:
        extends = root(earlier.size, tree) == earlier.root
    if not extends:
        raise VerificationFailed(
            f"the log does not extend the earlier checkpoint of size {earlier.size}: "
            "the entries before it have changed since it was signed"
        )
    return earlier.size


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _b64_decode(text: object) -> bytes:
    if not isinstance(text, str):
        raise TypeError("not a string")
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as error:
        raise ValueError(str(error)) from None


def _when(milliseconds: int) -> str:
    try:
        moment = datetime.fromtimestamp(milliseconds / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        return f"{milliseconds} ms"  # not a date an entry should hold, but shown as it is
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
