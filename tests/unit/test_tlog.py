"""The log's published formats, against the vectors of Go's golang.org/x/mod/sumdb/note and the
examples of the C2SP specifications, so that other tools read what the bridge writes."""

from __future__ import annotations

import base64
import math

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from bridge.domain.tlog import (
    MAX_ENTRY_SIZE,
    BundleError,
    Checkpoint,
    Tile,
    TlogError,
    canonical,
    decode_bundle,
    encode_bundle,
    entries_path,
    open_note,
    parse_signer,
    parse_verifier,
    sign_note,
    signer_key,
    tile_path,
    tiles_for,
    verifier_key,
)

# golang.org/x/mod/sumdb/note, note_test.go.
PETER_VERIFIER = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_SIGNER = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
ENOCH_VERIFIER = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_SIGNATURE = (
    "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2"
    "pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
ENOCH_SIGNATURE = (
    "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aG"
    "rQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"
)


# -- Key strings ------------------------------------------------------------------------------


def test_the_go_verifier_key_is_read_and_written_alike() -> None:
    verifier = parse_verifier(PETER_VERIFIER)
    assert verifier.name == "PeterNeumann"
    assert verifier.key_id == bytes.fromhex("c74f20a3")
    assert verifier.identity == "PeterNeumann+c74f20a3"
    assert verifier_key(verifier.name, verifier.public_key) == PETER_VERIFIER


def test_the_go_signer_key_is_read_and_written_alike() -> None:
    signer = parse_signer(PETER_SIGNER)
    assert signer.name == "PeterNeumann"
    assert signer_key(signer.name, signer.private_key) == PETER_SIGNER
    assert verifier_key(signer.name, signer.private_key.public_key()) == PETER_VERIFIER


def _manglings(key: str) -> list[str]:
    """Every proper substring and every one-character change, as Go's tests try them."""
    cut = [key[i:j] for i in range(len(key) + 1) for j in range(i + 1, len(key) + 1)]
    changed = [key[:i] + chr(ord(key[i]) + 1) + key[i + 1 :] for i in range(len(key))]
    return [text for text in cut + changed if text != key]


def test_a_mangled_verifier_key_is_refused() -> None:
    for text in _manglings(PETER_VERIFIER):
        with pytest.raises(TlogError):
            parse_verifier(text)
    # A key of the wrong length, and an unknown algorithm, each with a key id that fits.
    with pytest.raises(TlogError, match="verifier key"):
        parse_verifier(
            "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=="
        )
    with pytest.raises(TlogError, match="not an Ed25519 key"):
        parse_verifier("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")


def test_a_mangled_signer_key_is_refused() -> None:
    for text in _manglings(PETER_SIGNER):
        with pytest.raises(TlogError):
            parse_signer(text)


@pytest.mark.parametrize("name", ["", "two words", "a+b", "tab\there"])
def test_a_key_name_without_spaces_or_plus(name: str) -> None:
    key = Ed25519PrivateKey.generate()
    with pytest.raises(TlogError, match="not a key name"):
        verifier_key(name, key.public_key())
    with pytest.raises(TlogError, match="not a key name"):
        sign_note(TEXT, name, key)


def test_a_generated_key_round_trips() -> None:
    key = Ed25519PrivateKey.generate()
    name = "corp.example/procurement-bridge"
    signer = parse_signer(signer_key(name, key))
    verifier = parse_verifier(verifier_key(name, key.public_key()))
    assert signer.verifier.identity == verifier.identity
    assert open_note(signer.sign(TEXT), verifier) == TEXT


# -- Signed notes -----------------------------------------------------------------------------


def test_signing_gives_the_go_signature() -> None:
    signer = parse_signer(PETER_SIGNER)
    assert sign_note(TEXT, signer.name, signer.private_key) == f"{TEXT}\n{PETER_SIGNATURE}"


def test_open_verifies_the_known_key_and_ignores_others() -> None:
    note = f"{TEXT}\n{PETER_SIGNATURE}{ENOCH_SIGNATURE}"
    assert open_note(note, parse_verifier(PETER_VERIFIER)) == TEXT
    assert open_note(note, parse_verifier(ENOCH_VERIFIER)) == TEXT


def test_a_note_not_signed_by_the_key_is_refused() -> None:
    with pytest.raises(TlogError, match=r"not signed by EnochRoot\+af0cfe78 .*PeterNeumann"):
        open_note(f"{TEXT}\n{PETER_SIGNATURE}", parse_verifier(ENOCH_VERIFIER))


def test_a_key_of_the_same_name_is_another_key() -> None:
    impostor = Ed25519PrivateKey.generate()
    note = sign_note(TEXT, "PeterNeumann", impostor)
    with pytest.raises(TlogError, match=r"not signed by PeterNeumann\+c74f20a3"):
        open_note(note, parse_verifier(PETER_VERIFIER))


def test_a_bad_signature_by_the_key_refuses_the_note() -> None:
    broken = PETER_SIGNATURE[:60] + "ABCD" + PETER_SIGNATURE[60:]
    with pytest.raises(TlogError, match=r"invalid signature for key PeterNeumann\+c74f20a3"):
        open_note(f"{TEXT}\n{broken}", parse_verifier(PETER_VERIFIER))
    changed_text = TEXT.replace("answer", "Answer")
    with pytest.raises(TlogError, match="invalid signature"):
        open_note(f"{changed_text}\n{PETER_SIGNATURE}", parse_verifier(PETER_VERIFIER))


@pytest.mark.parametrize(
    "note",
    [
        TEXT,
        TEXT + "\n",
        TEXT + "\n" + PETER_SIGNATURE[:-1],
        "\x01" + TEXT + "\n" + PETER_SIGNATURE,
        TEXT + "\n" + PETER_SIGNATURE.replace("PeterNeumann", "Bad Name"),
        TEXT + "\n" + PETER_SIGNATURE + "Unexpected line.\n",
        TEXT + "\n" + PETER_SIGNATURE * 101,
        TEXT + "\n— PeterNeumann x08g\n",
    ],
)
def test_a_malformed_note_is_refused(note: str) -> None:
    with pytest.raises(TlogError, match="malformed note"):
        open_note(note, parse_verifier(PETER_VERIFIER))


def test_only_a_text_ending_in_a_newline_is_signed() -> None:
    with pytest.raises(TlogError, match="newline"):
        sign_note("abc", "PeterNeumann", parse_signer(PETER_SIGNER).private_key)


# -- Checkpoints ------------------------------------------------------------------------------


def test_the_c2sp_example_checkpoint() -> None:
    text = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    checkpoint = Checkpoint.parse(text)
    assert checkpoint.origin == "example.com/behind-the-sofa"
    assert checkpoint.size == 20852163
    assert checkpoint.root == base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
    assert checkpoint.extensions == ()
    assert checkpoint.body() == text


@given(
    st.text(st.characters(blacklist_characters="\n"), min_size=1),
    st.integers(0, 2**63),
    st.binary(min_size=32, max_size=32),
    st.lists(st.text(st.characters(blacklist_characters="\n"), min_size=1), max_size=3),
)
def test_a_checkpoint_round_trips(origin: str, size: int, root: bytes, extra: list[str]) -> None:
    checkpoint = Checkpoint(origin, size, root, tuple(extra))
    assert Checkpoint.parse(checkpoint.body()) == checkpoint


ROOT_B64 = base64.b64encode(bytes(32)).decode()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (f"log\n1\n{ROOT_B64}", "newline"),
        ("log\n1\n", "at least 3"),
        (f"\n1\n{ROOT_B64}\n", "origin line is empty"),
        (f"log\n01\n{ROOT_B64}\n", "'01' is not a decimal"),
        (f"log\n-1\n{ROOT_B64}\n", "'-1' is not a decimal"),
        (f"log\n１\n{ROOT_B64}\n", "is not a decimal"),
        (f"log\n 1\n{ROOT_B64}\n", "is not a decimal"),
        ("log\n1\nnot base64!\n", "not base64"),
        (f"log\n1\n{ROOT_B64[:-4]}\n", "30 bytes, not 32"),
        (f"log\n1\n{ROOT_B64}\n\n", "extension line is empty"),
    ],
)
def test_a_malformed_checkpoint_says_what_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(TlogError, match=problem):
        Checkpoint.parse(text)


def test_a_checkpoint_cannot_hold_what_it_cannot_write() -> None:
    with pytest.raises(TlogError, match="origin"):
        Checkpoint("two\nlines", 1, bytes(32))
    with pytest.raises(TlogError, match="32 bytes"):
        Checkpoint("log", 1, bytes(31))
    with pytest.raises(TlogError, match="extension"):
        Checkpoint("log", 1, bytes(32), ("",))


# -- Tiles ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "index", "width", "path"),
    [
        (0, 0, 256, "tile/0/000"),
        (0, 1, 256, "tile/0/001"),
        (0, 999, 256, "tile/0/999"),
        (0, 1000, 256, "tile/0/x001/000"),
        (4, 1234067, 8, "tile/4/x001/x234/067.p/8"),
        (1, 1234067, 256, "tile/1/x001/x234/067"),
        (63, 0, 1, "tile/63/000.p/1"),
    ],
)
def test_tile_paths(level: int, index: int, width: int, path: str) -> None:
    assert tile_path(level, index, width) == path
    assert Tile(level, index, width).path == path


def test_entry_bundle_paths() -> None:
    assert entries_path(1234067, 8) == "tile/entries/x001/x234/067.p/8"
    assert entries_path(0) == "tile/entries/000"
    assert Tile(0, 3, 17).entries_path == "tile/entries/003.p/17"


@pytest.mark.parametrize(
    ("level", "index", "width"), [(64, 0, 256), (-1, 0, 256), (0, -1, 256), (0, 0, 0), (0, 0, 257)]
)
def test_impossible_tiles_have_no_path(level: int, index: int, width: int) -> None:
    with pytest.raises(TlogError):
        tile_path(level, index, width)


def test_the_tiles_of_the_c2sp_examples() -> None:
    # "a tree of size 70,000 will be represented by 273 full level 0 tiles, one partial level 0
    # tile of width 112, one full level 1 tile, one partial level 1 tile of width 17, and one
    # partial level 2 tile of width 1."
    tiles = tiles_for(70_000)
    assert tiles[:273] == [Tile(0, n, 256) for n in range(273)]
    assert tiles[273:] == [Tile(0, 273, 112), Tile(1, 0, 256), Tile(1, 1, 17), Tile(2, 0, 1)]
    # "a tree of size 256 will be represented by a full level 0 tile and a partial level 1 tile
    # of width 1."
    assert tiles_for(256) == [Tile(0, 0, 256), Tile(1, 0, 1)]
    assert tiles_for(0) == []
    assert tiles_for(1) == [Tile(0, 0, 1)]


@given(st.integers(0, 2**20))
def test_tiles_cover_the_tree_at_every_level(size: int) -> None:
    tiles = tiles_for(size)
    level = 0
    while size >> (8 * level):
        at_level = [tile for tile in tiles if tile.level == level]
        assert sum(tile.width for tile in at_level) == size >> (8 * level)
        assert [tile.index for tile in at_level] == list(range(len(at_level)))
        assert all(tile.width == 256 for tile in at_level[:-1])
        level += 1
    assert all(tile.level < level for tile in tiles)


def test_a_tile_knows_its_first_leaf() -> None:
    assert Tile(0, 3, 256).first_leaf == 768
    assert Tile(1, 2, 256).first_leaf == 2 * 65536
    assert Tile(2, 1, 1).first_leaf == 1 << 24


# -- Entry bundles ----------------------------------------------------------------------------


@given(st.lists(st.binary(max_size=600), max_size=20))
def test_a_bundle_round_trips(entries: list[bytes]) -> None:
    assert decode_bundle(encode_bundle(entries)) == entries


def test_a_bundle_is_length_prefixed_big_endian() -> None:
    assert encode_bundle([b"ab", b""]) == b"\x00\x02ab\x00\x00"
    assert len(encode_bundle([b"x" * MAX_ENTRY_SIZE])) == MAX_ENTRY_SIZE + 2


def test_an_entry_too_long_for_a_bundle_is_refused() -> None:
    with pytest.raises(BundleError, match="entry 1 of the bundle has 65536 bytes") as failure:
        encode_bundle([b"", b"x" * (MAX_ENTRY_SIZE + 1)])
    assert failure.value.position == 1


@pytest.mark.parametrize(
    ("data", "position"), [(b"\x00", 0), (b"\x00\x01a\x00\x05abc", 1), (b"\x00\x01a\x00", 1)]
)
def test_a_cut_bundle_names_the_entry_cut(data: bytes, position: int) -> None:
    with pytest.raises(BundleError, match="cut short") as failure:
        decode_bundle(data)
    assert failure.value.position == position


# -- Canonical JSON ---------------------------------------------------------------------------


def test_canonical_json_is_rfc8785() -> None:
    assert canonical({"b": [1.0, "é", None], "a": True}) == '{"a":true,"b":[1,"é",null]}'.encode()
    assert canonical({"€": 1, "\r": 2, "1": 3}) == '{"\\r":2,"1":3,"€":1}'.encode()
    assert canonical(1e21) == b"1e+21"


@pytest.mark.parametrize("value", [2**53, math.nan, math.inf, "\ud800"])
def test_what_canonical_json_cannot_hold_is_refused(value: object) -> None:
    with pytest.raises(TlogError, match="canonical JSON"):
        canonical(value)
