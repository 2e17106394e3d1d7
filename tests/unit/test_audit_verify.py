"""The offline verifier: an export as the bridge writes it passes; every way of changing one
afterwards — an entry, a tile, a blob, a deleted, swapped or truncated row, another key, a log
rewritten and re-signed — fails, naming the first entry concerned."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bridge.audit.verify import (
    FULL,
    PROCUREMENT,
    Report,
    VerificationFailed,
    run,
    verify,
)
from bridge.domain.merkle import all_nodes, inclusion_proof, leaf_hash, root
from bridge.domain.tlog import (
    TILE_HEIGHT,
    Checkpoint,
    Signer,
    canonical,
    decode_bundle,
    encode_bundle,
    tiles_for,
    verifier_key,
)

ORIGIN = "corp.example/procurement-bridge"
T0 = 1_764_600_000_000
INLINE_LIMIT = 16 * 1024
KINDS = ("document", "webhook", "vote.ballot")
SIZE = 300  # two entry bundles, and a hash tile at level 1
LARGE_PAYLOAD = 7  # kept as a blob
WITH_FILE = range(3, SIZE, 50)  # name a file blob


# -- Building exports as the bridge writes them -----------------------------------------------


@dataclass
class Log:
    """A log's entries and blobs, before it is exported."""

    entries: list[bytes] = field(default_factory=list)
    blobs: dict[str, bytes] = field(default_factory=dict)

    def add(self, payload: Any, kind: str = "document", procurement: str = "P-1") -> None:
        index = len(self.entries)
        payload_bytes = canonical(payload)
        digest = hashlib.sha256(payload_bytes).hexdigest()
        entry: dict[str, Any] = {
            "index": index,
            "kind": kind,
            "time": T0 + index * 1000,
            "procurement": procurement,
            "room": "!org:corp.example",
            "subject": f"S-{index:03d}",
            "payload_sha256": digest,
        }
        if len(payload_bytes) <= INLINE_LIMIT:
            entry["payload"] = payload
        else:
            self.blobs[digest] = payload_bytes
        self.entries.append(canonical(entry))

    def add_file(self, content: bytes) -> dict[str, Any]:
        digest = hashlib.sha256(content).hexdigest()
        self.blobs[digest] = content
        return {"sha256": digest, "size": len(content)}


def standard_log(size: int = SIZE) -> Log:
    log = Log()
    for index in range(size):
        payload: dict[str, Any] = {"body": f"message {index}"}
        if index == LARGE_PAYLOAD:
            payload = {"body": "x" * (INLINE_LIMIT + 1)}
        if index in WITH_FILE:
            payload["document"] = log.add_file(f"document {index}".encode())
        log.add(payload, KINDS[index % len(KINDS)], procurement=f"P-{index % 2}")
    return log


def checkpoint_of(entries: list[bytes]) -> Checkpoint:
    tree = all_nodes([leaf_hash(entry) for entry in entries])
    return Checkpoint(ORIGIN, len(entries), root(len(entries), tree))


def write_full(out: Path, log: Log, signer: Signer) -> Checkpoint:
    """The tlog-tiles layout of the whole log, with its checkpoint signed by ``signer``."""
    tree = all_nodes([leaf_hash(entry) for entry in log.entries])
    for tile in tiles_for(len(log.entries)):
        level = tree.levels[tile.level * TILE_HEIGHT]
        first = tile.index * 256
        write(out / tile.path, b"".join(level[first : first + tile.width]))
        if tile.level == 0:
            bundle = encode_bundle(log.entries[first : first + tile.width])
            write(out / tile.entries_path, bundle)
    write_blobs(out, log.blobs)
    checkpoint = checkpoint_of(log.entries)
    write(out / "checkpoint", signer.sign(checkpoint.body()).encode())
    return checkpoint


def write_procurement(out: Path, log: Log, signer: Signer, procurement: str) -> list[int]:
    """One procurement's entries with their inclusion proofs; returns their indexes."""
    tree = all_nodes([leaf_hash(entry) for entry in log.entries])
    size = len(log.entries)
    lines, indexes = [], []
    for index, entry in enumerate(log.entries):
        if json.loads(entry)["procurement"] != procurement:
            continue
        proof = [_b64(hash_) for hash_ in inclusion_proof(index, size, tree)]
        lines.append(json.dumps({"index": index, "entry": _b64(entry), "proof": proof}))
        indexes.append(index)
    write(out / "entries.jsonl", "".join(f"{line}\n" for line in lines).encode())
    write_blobs(out, log.blobs)
    write(out / "checkpoint", signer.sign(checkpoint_of(log.entries).body()).encode())
    return indexes


def write_blobs(out: Path, blobs: dict[str, bytes]) -> None:
    (out / "blobs").mkdir(parents=True, exist_ok=True)
    for name, content in blobs.items():
        write(out / "blobs" / name, content)


def write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def new_signer() -> Signer:
    return Signer(ORIGIN, Ed25519PrivateKey.generate())


def key_of(signer: Signer) -> str:
    return verifier_key(signer.name, signer.private_key.public_key())


# -- Tampering --------------------------------------------------------------------------------


def rewrite_entries(out: Path, size: int, change: Callable[[list[bytes]], list[bytes]]) -> None:
    """Rewrites the entry bundles as an exporter would from changed rows, laid out for the
    checkpoint's ``size``; the hash tiles and the checkpoint stay as they were."""
    level_0 = [tile for tile in tiles_for(size) if tile.level == 0]
    entries = [entry for tile in level_0 for entry in decode_bundle(read(out, tile.entries_path))]
    changed = change(entries)
    for tile in level_0:
        chunk = changed[tile.first_leaf : tile.first_leaf + tile.width]
        path = out / tile.entries_path
        if chunk:
            path.write_bytes(encode_bundle(chunk))
        else:
            path.unlink()


def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def read(out: Path, path: str) -> bytes:
    return (out / path).read_bytes()


def failure_of(out: Path, key: str, earlier: str | None = None) -> VerificationFailed:
    with pytest.raises(VerificationFailed) as failure:
        verify(out, key, earlier)
    return failure.value


# -- Fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def signer() -> Signer:
    return new_signer()


@pytest.fixture
def log() -> Log:
    return standard_log()


@pytest.fixture
def out(tmp_path: Path, log: Log, signer: Signer) -> Path:
    write_full(tmp_path / "export", log, signer)
    return tmp_path / "export"


# -- An untouched export ----------------------------------------------------------------------


def test_an_untouched_full_export_verifies(out: Path, signer: Signer, log: Log) -> None:
    report = verify(out, key_of(signer))
    assert report.mode == FULL
    assert report.origin == ORIGIN
    assert report.size == report.entries == SIZE
    assert report.root == checkpoint_of(log.entries).root
    assert report.kinds == {"document": 100, "webhook": 100, "vote.ballot": 100}
    assert report.first_time == T0
    assert report.last_time == T0 + (SIZE - 1) * 1000
    assert report.blobs == len(log.blobs) == len(WITH_FILE) + 1
    assert report.notes == ()


@pytest.mark.parametrize("size", [0, 1, 255, 256, 257, 512])
def test_an_export_of_any_size_verifies(tmp_path: Path, signer: Signer, size: int) -> None:
    write_full(tmp_path, standard_log(size), signer)
    assert verify(tmp_path, key_of(signer)).entries == size


def test_the_report_reads_well(out: Path, signer: Signer) -> None:
    text = "\n".join(verify(out, key_of(signer)).lines())
    assert text.startswith(f"OK: {ORIGIN}, full export")
    assert "checkpoint: 300 entries, root " in text
    assert "vote.ballot  100" in text
    assert "time:       2025-12-01T14:40:00Z … 2025-12-01T14:44:59Z" in text


def test_run_prints_the_report_and_exits_0(
    out: Path, signer: Signer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run([str(out), "--key", key_of(signer)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"OK: {ORIGIN}")
    assert "document" in printed


# -- The checkpoint ---------------------------------------------------------------------------


def test_a_checkpoint_signed_by_another_key_fails(out: Path, signer: Signer, log: Log) -> None:
    # Same name, another key: an impostor re-signing the export.
    impostor = new_signer()
    write(out / "checkpoint", impostor.sign(checkpoint_of(log.entries).body()).encode())
    failure = failure_of(out, key_of(signer))
    assert f"not signed by {signer.verifier.identity}" in failure.reason
    assert impostor.verifier.identity in failure.reason


def test_a_changed_checkpoint_fails(out: Path, signer: Signer) -> None:
    note = read(out, "checkpoint").decode()
    write(out / "checkpoint", note.replace(f"\n{SIZE}\n", f"\n{SIZE - 1}\n").encode())
    assert "invalid signature" in failure_of(out, key_of(signer)).reason


def test_a_missing_checkpoint_fails(out: Path, signer: Signer) -> None:
    (out / "checkpoint").unlink()
    assert "checkpoint is missing" in failure_of(out, key_of(signer)).reason


def test_a_malformed_key_fails(out: Path) -> None:
    assert "not a verifier key" in failure_of(out, "corp.example+00000000+AAAA").reason


def test_an_origin_other_than_the_key_name_is_noted(tmp_path: Path) -> None:
    signer = Signer("someone-else", Ed25519PrivateKey.generate())
    write_full(tmp_path, standard_log(3), signer)
    assert verify(tmp_path, key_of(signer)).notes == (
        f"the checkpoint's origin {ORIGIN!r} is not the key's name 'someone-else'",
    )


# -- Entries and tiles ------------------------------------------------------------------------


def test_a_byte_changed_in_an_entry_fails_at_that_entry(out: Path, signer: Signer) -> None:
    def change(entries: list[bytes]) -> list[bytes]:
        entries[17] = entries[17].replace(b'"S-017"', b'"S-018"')
        return entries

    rewrite_entries(out, SIZE, change)
    failure = failure_of(out, key_of(signer))
    assert failure.reason == "entry 17 does not match its hash in the tiles"
    assert failure.index == 17


@pytest.mark.parametrize("offset", [0, 1, 10, 40, -2, -1])
def test_any_byte_flipped_in_an_entry_names_it(out: Path, signer: Signer, offset: int) -> None:
    def change(entries: list[bytes]) -> list[bytes]:
        data = bytearray(entries[270])
        data[offset] ^= 0x01
        entries[270] = bytes(data)
        return entries

    rewrite_entries(out, SIZE, change)
    failure = failure_of(out, key_of(signer))
    assert failure.reason.startswith("entry 270 ")
    assert failure.index == 270


def test_a_byte_changed_in_a_level_0_tile_fails_at_its_entry(out: Path, signer: Signer) -> None:
    flip_byte(out / "tile/0/000", 40 * 32 + 5)
    failure = failure_of(out, key_of(signer))
    assert failure.reason == "entry 40 does not match its hash in the tiles"
    assert failure.index == 40


def test_a_byte_changed_in_a_level_1_tile_fails_at_its_entries(out: Path, signer: Signer) -> None:
    flip_byte(out / "tile/1/000.p/1", 3)
    failure = failure_of(out, key_of(signer))
    assert "tile/1/000.p/1 disagrees with the hashes recomputed from the entries" in failure.reason
    assert "over entries 0 to 255" in failure.reason
    assert failure.index == 0


@pytest.mark.parametrize("path", ["tile/0/001.p/44", "tile/1/000.p/1"])
def test_a_tile_with_hashes_beyond_its_width_fails(out: Path, signer: Signer, path: str) -> None:
    with (out / path).open("ab") as tile:
        tile.write(bytes(32))
    assert f"{path} holds " in failure_of(out, key_of(signer)).reason


def test_a_missing_level_1_tile_fails(out: Path, signer: Signer) -> None:
    (out / "tile/1/000.p/1").unlink()
    failure = failure_of(out, key_of(signer))
    assert failure.reason == "tile/1/000.p/1 is missing (entries from 0)"


def test_a_cut_level_0_tile_fails_at_the_first_entry_without_a_hash(
    out: Path, signer: Signer
) -> None:
    path = out / "tile/0/001.p/44"
    path.write_bytes(path.read_bytes()[: 10 * 32])
    failure = failure_of(out, key_of(signer))
    assert failure.reason.startswith("entry 266 has no hash in the tiles")
    assert failure.index == 266


def test_an_entry_and_its_tile_changed_together_fail_at_the_root(
    tmp_path: Path, signer: Signer
) -> None:
    # An export smaller than a tile has no level-1 tile: the root is what catches it.
    log = standard_log(20)
    write_full(tmp_path, log, signer)
    forged = Log(list(log.entries), log.blobs)
    forged.entries[5] = forged.entries[5].replace(b'"S-005"', b'"S-500"')
    write_full(tmp_path, forged, signer)
    write(tmp_path / "checkpoint", signer.sign(checkpoint_of(log.entries).body()).encode())
    failure = failure_of(tmp_path, key_of(signer))
    assert "is not the checkpoint's root" in failure.reason


def test_a_deleted_entry_fails_at_its_place(out: Path, signer: Signer) -> None:
    rewrite_entries(out, SIZE, lambda entries: entries[:17] + entries[18:])
    failure = failure_of(out, key_of(signer))
    assert failure.reason.startswith("entry 17 is missing or out of place")
    assert "says it is entry 18" in failure.reason
    assert failure.index == 17


def test_swapped_entries_fail_at_the_first(out: Path, signer: Signer) -> None:
    def swap(entries: list[bytes]) -> list[bytes]:
        entries[20], entries[21] = entries[21], entries[20]
        return entries

    rewrite_entries(out, SIZE, swap)
    failure = failure_of(out, key_of(signer))
    assert failure.reason.startswith("entry 20 is missing or out of place")
    assert failure.index == 20


def test_a_truncated_tail_names_the_first_missing_entry(out: Path, signer: Signer) -> None:
    rewrite_entries(out, SIZE, lambda entries: entries[:295])
    failure = failure_of(out, key_of(signer))
    assert failure.reason == (
        "the log has fewer entries than its checkpoint's size 300: first missing index 295"
    )
    assert failure.index == 295


def test_a_missing_bundle_names_its_first_entry(out: Path, signer: Signer) -> None:
    rewrite_entries(out, SIZE, lambda entries: entries[:256])
    failure = failure_of(out, key_of(signer))
    assert failure.reason == (
        "tile/entries/001.p/44 is missing: the log has fewer entries than its checkpoint's size "
        "300; first missing index 256"
    )
    assert failure.index == 256


def test_a_cut_bundle_names_the_entry_cut(out: Path, signer: Signer) -> None:
    path = out / "tile/entries/001.p/44"
    path.write_bytes(path.read_bytes()[:-3])
    failure = failure_of(out, key_of(signer))
    assert failure.reason.startswith("entry 299: tile/entries/001.p/44: ")
    assert "cut short" in failure.reason
    assert failure.index == 299


def test_entries_beyond_the_checkpoint_fail(out: Path, signer: Signer, log: Log) -> None:
    path = out / "tile/entries/001.p/44"
    path.write_bytes(encode_bundle([*decode_bundle(path.read_bytes()), log.entries[0]]))
    failure = failure_of(out, key_of(signer))
    assert "beyond the checkpoint's size 300, from index 300" in failure.reason
    assert failure.index == 300


def test_a_non_canonical_entry_fails(tmp_path: Path, signer: Signer) -> None:
    log = standard_log(5)
    log.entries[2] = log.entries[2].replace(b'{"index":2,', b'{ "index":2,')
    write_full(tmp_path, log, signer)
    failure = failure_of(tmp_path, key_of(signer))
    assert failure.reason == "entry 2 is not canonical JSON (RFC 8785)"


# -- Payloads and blobs -----------------------------------------------------------------------


def test_a_byte_changed_in_a_file_blob_fails_at_its_entry(
    out: Path, signer: Signer, log: Log
) -> None:
    name = json.loads(log.entries[53])["payload"]["document"]["sha256"]
    flip_byte(out / "blobs" / name, 0)
    failure = failure_of(out, key_of(signer))
    expected = f"entry 53: a file of its payload blobs/{name} does not hash to its name"
    assert failure.reason == expected
    assert failure.index == 53


def test_a_byte_changed_in_a_payload_blob_fails_at_its_entry(
    out: Path, signer: Signer, log: Log
) -> None:
    name = json.loads(log.entries[LARGE_PAYLOAD])["payload_sha256"]
    flip_byte(out / "blobs" / name, 100)
    failure = failure_of(out, key_of(signer))
    assert failure.reason == f"entry 7: its payload blobs/{name} does not hash to its name"
    assert failure.index == LARGE_PAYLOAD


def test_a_missing_file_blob_fails_at_its_first_entry(out: Path, signer: Signer, log: Log) -> None:
    name = json.loads(log.entries[3])["payload"]["document"]["sha256"]
    (out / "blobs" / name).unlink()
    failure = failure_of(out, key_of(signer))
    assert failure.reason == f"entry 3: a file of its payload blobs/{name} is missing"
    assert failure.index == 3


def test_a_file_of_another_size_fails(tmp_path: Path, signer: Signer) -> None:
    log = Log()
    reference = log.add_file(b"contract")
    log.add({"document": {**reference, "size": 9}})
    write_full(tmp_path, log, signer)
    failure = failure_of(tmp_path, key_of(signer))
    assert failure.reason.endswith("has 8 bytes, not 9")
    assert failure.index == 0


def test_an_inline_payload_that_does_not_match_its_hash_fails(
    tmp_path: Path, signer: Signer
) -> None:
    log = standard_log(4)
    entry = json.loads(log.entries[2])
    entry["payload"] = {"body": "changed before it was logged"}
    log.entries[2] = canonical(entry)
    write_full(tmp_path, log, signer)
    failure = failure_of(tmp_path, key_of(signer))
    assert failure.reason == "entry 2: its payload does not hash to its payload_sha256"


def test_a_blob_name_cannot_leave_the_blobs_directory(tmp_path: Path, signer: Signer) -> None:
    log = Log()
    log.add({"document": {"sha256": "../checkpoint", "size": 1}})
    write_full(tmp_path, log, signer)
    # Only a SHA-256 in hex names a file: this is data, nothing is read for it.
    assert verify(tmp_path, key_of(signer)).blobs == 0


def test_what_people_wrote_never_names_a_blob(tmp_path: Path, signer: Signer) -> None:
    """A message whose content looks like a file reference needs no blob: anyone in a room
    could otherwise make every later export fail."""
    log = Log()
    log.add({"event": {"content": {"x": {"sha256": "e" * 64, "size": 1}}}}, "matrix.event")
    write_full(tmp_path, log, signer)
    assert verify(tmp_path, key_of(signer)).kinds == {"matrix.event": 1}


def test_the_tree_is_checked_before_the_payloads(out: Path, signer: Signer, log: Log) -> None:
    name = json.loads(log.entries[3])["payload"]["document"]["sha256"]
    (out / "blobs" / name).unlink()
    flip_byte(out / "tile/0/000", 100 * 32)
    assert failure_of(out, key_of(signer)).index == 100


# -- An earlier checkpoint --------------------------------------------------------------------


def earlier_checkpoint(log: Log, size: int, signer: Signer) -> str:
    return signer.sign(checkpoint_of(log.entries[:size]).body())


def test_the_log_extends_an_earlier_checkpoint(out: Path, signer: Signer, log: Log) -> None:
    for size in (0, 1, 100, 256, SIZE):
        report = verify(out, key_of(signer), earlier_checkpoint(log, size, signer))
        assert report.earlier_size == size


def test_a_log_rewritten_and_re_signed_is_caught_by_an_earlier_checkpoint(
    out: Path, signer: Signer, log: Log
) -> None:
    earlier = earlier_checkpoint(log, 100, signer)
    rewritten = standard_log()
    rewritten.entries[5] = rewritten.entries[5].replace(b'"S-005"', b'"S-555"')
    write_full(out, rewritten, signer)
    verify(out, key_of(signer))  # consistent in itself: only what was held earlier can tell
    failure = failure_of(out, key_of(signer), earlier)
    assert failure.reason.startswith("the log does not extend the earlier checkpoint of size 100")


def test_a_log_shorter_than_an_earlier_checkpoint_fails(
    tmp_path: Path, signer: Signer, log: Log
) -> None:
    earlier = earlier_checkpoint(log, SIZE, signer)
    write_full(tmp_path, Log(log.entries[:290], log.blobs), signer)
    failure = failure_of(tmp_path, key_of(signer), earlier)
    assert failure.reason == (
        "the log is shorter than the earlier checkpoint of size 300: first missing index 290"
    )
    assert failure.index == 290


def test_an_earlier_checkpoint_of_the_same_size_must_be_the_same(
    out: Path, signer: Signer, log: Log
) -> None:
    other = standard_log()
    other.entries[0] = other.entries[0].replace(b'"S-000"', b'"S-999"')
    earlier = earlier_checkpoint(other, SIZE, signer)
    assert "does not extend" in failure_of(out, key_of(signer), earlier).reason


def test_an_earlier_checkpoint_by_another_key_fails(out: Path, signer: Signer, log: Log) -> None:
    earlier = earlier_checkpoint(log, 100, new_signer())
    failure = failure_of(out, key_of(signer), earlier)
    assert failure.reason.startswith("the earlier checkpoint: the note is not signed by")


def test_an_earlier_checkpoint_of_another_log_fails(out: Path, signer: Signer, log: Log) -> None:
    other = Checkpoint("other.example/log", 1, checkpoint_of(log.entries[:1]).root)
    failure = failure_of(out, key_of(signer), signer.sign(other.body()))
    assert "of the log 'other.example/log'" in failure.reason


def test_run_with_an_earlier_checkpoint_file(
    out: Path, signer: Signer, log: Log, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    earlier_file = tmp_path / "earlier"
    earlier_file.write_text(earlier_checkpoint(log, 100, signer))
    assert run([str(out), "--key", key_of(signer), "--checkpoint", str(earlier_file)]) == 0
    assert "extends the earlier checkpoint of size 100" in capsys.readouterr().out
    shutil.rmtree(out / "tile" / "entries")
    assert run([str(out), "--key", key_of(signer), "--checkpoint", str(earlier_file)]) == 1
    assert capsys.readouterr().out.startswith("FAILED: tile/entries/000 is missing")


def test_run_with_an_unreadable_earlier_checkpoint(
    out: Path, signer: Signer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere"
    assert run([str(out), "--key", key_of(signer), "--checkpoint", str(missing)]) == 1
    assert capsys.readouterr().out.startswith(f"FAILED: cannot read {missing}")


# -- A procurement's export -------------------------------------------------------------------


@pytest.fixture
def procurement_out(tmp_path: Path, log: Log, signer: Signer) -> Path:
    write_procurement(tmp_path / "p1", log, signer, "P-1")
    return tmp_path / "p1"


def rewrite_lines(out: Path, change: Callable[[list[dict[str, Any]]], None]) -> None:
    path = out / "entries.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    change(rows)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def test_an_untouched_procurement_export_verifies(procurement_out: Path, signer: Signer) -> None:
    report = verify(procurement_out, key_of(signer))
    assert report.mode == PROCUREMENT
    assert report.size == SIZE
    assert report.entries == SIZE // 2
    assert report.first_time == T0 + 1000
    assert report.last_time == T0 + (SIZE - 1) * 1000
    assert report.blobs == len(WITH_FILE) + 1  # all of them, and entry 7's payload, are P-1's
    assert isinstance(report, Report)


def test_a_changed_procurement_entry_fails_its_proof(
    procurement_out: Path, signer: Signer
) -> None:
    def change(rows: list[dict[str, Any]]) -> None:
        entry = base64.b64decode(rows[8]["entry"]).replace(b'"S-017"', b'"S-071"')
        rows[8]["entry"] = _b64(entry)

    rewrite_lines(procurement_out, change)
    failure = failure_of(procurement_out, key_of(signer))
    assert failure.reason == (
        "entry 17: its inclusion proof does not lead to the checkpoint's root"
    )
    assert failure.index == 17


def test_a_procurement_entry_under_another_index_fails(
    procurement_out: Path, signer: Signer
) -> None:
    def change(rows: list[dict[str, Any]]) -> None:
        rows[8]["index"] = 18

    rewrite_lines(procurement_out, change)
    failure = failure_of(procurement_out, key_of(signer))
    assert failure.reason.startswith("entry 18 is missing or out of place")
    assert "says it is entry 17" in failure.reason


def test_a_changed_proof_fails(procurement_out: Path, signer: Signer) -> None:
    def change(rows: list[dict[str, Any]]) -> None:
        rows[3]["proof"][0] = _b64(bytes(32))

    rewrite_lines(procurement_out, change)
    assert failure_of(procurement_out, key_of(signer)).index == 7


def test_procurement_entries_out_of_order_fail(procurement_out: Path, signer: Signer) -> None:
    def change(rows: list[dict[str, Any]]) -> None:
        rows[4], rows[5] = rows[5], rows[4]

    rewrite_lines(procurement_out, change)
    failure = failure_of(procurement_out, key_of(signer))
    assert failure.reason == "entry 9 comes after entry 11 in entries.jsonl"


def test_a_procurement_blob_changed_fails(procurement_out: Path, signer: Signer, log: Log) -> None:
    name = json.loads(log.entries[53])["payload"]["document"]["sha256"]
    flip_byte(procurement_out / "blobs" / name, 0)
    assert failure_of(procurement_out, key_of(signer)).index == 53


def test_a_malformed_line_fails(procurement_out: Path, signer: Signer) -> None:
    with (procurement_out / "entries.jsonl").open("a") as lines:
        lines.write("not json\n")
    assert failure_of(procurement_out, key_of(signer)).reason == (
        f"entries.jsonl line {SIZE // 2 + 1} is not JSON"
    )


def test_an_earlier_checkpoint_needs_a_full_export(
    procurement_out: Path, signer: Signer, log: Log
) -> None:
    failure = failure_of(procurement_out, key_of(signer), earlier_checkpoint(log, 100, signer))
    assert "needs a full export" in failure.reason
    same = earlier_checkpoint(log, SIZE, signer)
    assert verify(procurement_out, key_of(signer), same).earlier_size == SIZE
    longer = earlier_checkpoint(standard_log(SIZE + 10), SIZE + 10, signer)
    shorter = failure_of(procurement_out, key_of(signer), longer)
    assert shorter.reason.endswith("first missing index 300")
