"""The transparency log's published formats (C2SP): checkpoints, Ed25519 signed notes and their
key strings, tlog-tiles paths and entry bundles, and RFC 8785 canonical JSON.

Following the C2SP specifications to the byte lets an auditor check an export with any
tlog-tiles tool, not only with ours.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

HASH_SIZE = 32
TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
MAX_ENTRY_SIZE = 0xFFFF  # an entry bundle gives each entry a uint16 length

_ED25519 = b"\x01"  # signed-note signature type
_KEY_ID_SIZE = 4
_ED25519_KEY_SIZE = 32
_SIGNATURE_PREFIX = "— "
# Go's reference verifier refuses notes with more; the specification asks for at least 16.
_MAX_SIGNATURES = 100
_PRIVATE_KEY_PREFIX = "PRIVATE+KEY+"
_SIZE_LINE = re.compile(r"0|[1-9][0-9]*")
_KEY_ID_HEX = re.compile(r"[0-9a-fA-F]{8}")
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")


class TlogError(ValueError):
    """Text or bytes that do not follow the log's formats, or a signature that does not verify."""


def canonical(value: Any) -> bytes:
    """RFC 8785 (JCS) canonical JSON: the bytes every reader re-derives from the same value."""
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, UnicodeEncodeError) as error:
        raise TlogError(f"not representable as canonical JSON: {error}") from error


# -- Checkpoints (c2sp.org/tlog-checkpoint) ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin:
            raise TlogError("a checkpoint's origin is one non-empty line")
        if self.size < 0:
            raise TlogError(f"a tree cannot have {self.size} leaves")
        if len(self.root) != HASH_SIZE:
            raise TlogError(f"a root hash has {HASH_SIZE} bytes, not {len(self.root)}")
        for line in self.extensions:
            if not line or "\n" in line:
                raise TlogError("a checkpoint's extension is one non-empty line")

    def body(self) -> str:
        """The note text to sign."""
        lines = [self.origin, str(self.size), _b64(self.root), *self.extensions]
        return "".join(f"{line}\n" for line in lines)

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        if not text.endswith("\n"):
            raise TlogError("checkpoint: the text does not end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise TlogError(f"checkpoint: {len(lines)} lines, at least 3 expected")
        origin, size, root, *extensions = lines
        if not origin:
            raise TlogError("checkpoint: the origin line is empty")
        if not _SIZE_LINE.fullmatch(size):
            raise TlogError(f"checkpoint: tree size {size!r} is not a decimal number")
        root_hash = _b64_decode(root, f"checkpoint: root hash {root!r}")
        if len(root_hash) != HASH_SIZE:
            raise TlogError(f"checkpoint: the root hash has {len(root_hash)} bytes, not 32")
        if any(not line for line in extensions):
            raise TlogError("checkpoint: an extension line is empty")
        return cls(origin, int(size), root_hash, tuple(extensions))


# -- Signed notes (c2sp.org/signed-note), Ed25519 ---------------------------------------------


def key_id(name: str, public_key: Ed25519PublicKey) -> bytes:
    """The 4 bytes that, with the key name, say which key made a signature."""
    digest = hashlib.sha256(name.encode() + b"\n" + _ED25519 + _raw(public_key)).digest()
    return digest[:_KEY_ID_SIZE]


@dataclass(frozen=True, slots=True)
class Verifier:
    name: str
    public_key: Ed25519PublicKey

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.public_key)

    @property
    def identity(self) -> str:
        """``<name>+<key id hex>``: how errors and reports name the key."""
        return f"{self.name}+{self.key_id.hex()}"


@dataclass(frozen=True, slots=True)
class Signer:
    name: str
    private_key: Ed25519PrivateKey

    def sign(self, text: str) -> str:
        return sign_note(text, self.name, self.private_key)

    @property
    def verifier(self) -> Verifier:
        return Verifier(self.name, self.private_key.public_key())


def verifier_key(name: str, public_key: Ed25519PublicKey) -> str:
    """``<name>+<key id hex>+<base64(0x01 ‖ public key)>``, as Go's ``note`` package writes it."""
    _check_name(name)
    return f"{name}+{key_id(name, public_key).hex()}+{_b64(_ED25519 + _raw(public_key))}"


def parse_verifier(text: str) -> Verifier:
    name, id_hex, key = _split_key(text, "verifier key")
    public_key = Ed25519PublicKey.from_public_bytes(key)
    _check_key_id(name, id_hex, public_key, "verifier key")
    return Verifier(name, public_key)


def signer_key(name: str, private_key: Ed25519PrivateKey) -> str:
    """``PRIVATE+KEY+<name>+<key id hex>+<base64(0x01 ‖ seed)>``, as Go's ``note`` writes it."""
    _check_name(name)
    id_hex = key_id(name, private_key.public_key()).hex()
    seed = _b64(_ED25519 + private_key.private_bytes_raw())
    return f"{_PRIVATE_KEY_PREFIX}{name}+{id_hex}+{seed}"


def parse_signer(text: str) -> Signer:
    if not text.startswith(_PRIVATE_KEY_PREFIX):
        raise TlogError(f"a signer key starts with {_PRIVATE_KEY_PREFIX!r}")
    name, id_hex, seed = _split_key(text.removeprefix(_PRIVATE_KEY_PREFIX), "signer key")
    private_key = Ed25519PrivateKey.from_private_bytes(seed)
    _check_key_id(name, id_hex, private_key.public_key(), "signer key")
    return Signer(name, private_key)


def sign_note(text: str, name: str, private_key: Ed25519PrivateKey) -> str:
    """``text`` followed by a blank line and this key's signature line."""
    _check_text(text)
    _check_name(name)
    signature = private_key.sign(text.encode())
    stamp = key_id(name, private_key.public_key()) + signature
    return f"{text}\n{_SIGNATURE_PREFIX}{name} {_b64(stamp)}\n"


def open_note(note: str, verifier: Verifier) -> str:
    """The text of ``note`` once ``verifier``'s key is found to have signed it.

    Signatures by other keys are ignored, as the specification requires (witnesses cosign the
    same note); a signature by this key that does not verify rejects the note.
    """
    if _CONTROL.search(note):
        raise TlogError("malformed note: it holds a control character")
    split = note.rfind("\n\n")
    if split < 0:
        raise TlogError("malformed note: no blank line before the signatures")
    text, signature_block = note[: split + 1], note[split + 2 :]
    if not signature_block.endswith("\n"):
        raise TlogError("malformed note: the signatures do not end with a newline")
    lines = signature_block[:-1].split("\n")
    if len(lines) > _MAX_SIGNATURES:
        raise TlogError(f"malformed note: more than {_MAX_SIGNATURES} signatures")
    signed_by: list[str] = []
    verified = False
    for line in lines:
        name, stamp = _parse_signature_line(line)
        signer = f"{name}+{stamp[:_KEY_ID_SIZE].hex()}"
        signed_by.append(signer)
        if name != verifier.name or stamp[:_KEY_ID_SIZE] != verifier.key_id:
            continue
        try:
            verifier.public_key.verify(stamp[_KEY_ID_SIZE:], text.encode())
        except InvalidSignature:
            raise TlogError(f"invalid signature for key {signer}") from None
        verified = True
    if not verified:
        others = ", ".join(signed_by)
        raise TlogError(f"the note is not signed by {verifier.identity} (signed by {others})")
    return text


def _parse_signature_line(line: str) -> tuple[str, bytes]:
    if not line.startswith(_SIGNATURE_PREFIX):
        raise TlogError(f"malformed note: {line[:40]!r} is not a signature line")
    name, _, encoded = line.removeprefix(_SIGNATURE_PREFIX).partition(" ")
    if not _is_valid_name(name):
        raise TlogError(f"malformed note: {name!r} is not a key name")
    stamp = _b64_decode(encoded, "malformed note: the signature")
    if len(stamp) <= _KEY_ID_SIZE:
        raise TlogError("malformed note: a signature is too short")
    return name, stamp


def _split_key(text: str, what: str) -> tuple[str, str, bytes]:
    """``name+hex+base64(0x01 ‖ key)``; the base64 may itself hold ``+``."""
    name, _, rest = text.partition("+")
    id_hex, _, encoded = rest.partition("+")
    if not _is_valid_name(name) or not _KEY_ID_HEX.fullmatch(id_hex):
        raise TlogError(f"{what}: expected <name>+<8 hex digits>+<base64>")
    key = _b64_decode(encoded, what)
    if key[:1] != _ED25519 or len(key) != 1 + _ED25519_KEY_SIZE:
        raise TlogError(f"{what}: not an Ed25519 key")
    return name, id_hex, key[1:]


def _check_key_id(name: str, id_hex: str, public_key: Ed25519PublicKey, what: str) -> None:
    if key_id(name, public_key) != bytes.fromhex(id_hex):
        raise TlogError(f"{what}: its key id does not match its name and key")


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise TlogError("malformed note: the text does not end with a newline")
    if _CONTROL.search(text):
        raise TlogError("malformed note: the text holds a control character")


def _check_name(name: str) -> None:
    if not _is_valid_name(name):
        raise TlogError(f"{name!r} is not a key name: it is empty, or has a space or a '+'")


def _is_valid_name(name: str) -> bool:
    return bool(name) and "+" not in name and not any(char.isspace() for char in name)


def _raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _b64_decode(text: str, what: str) -> bytes:
    """Standard base64 in its one canonical spelling, so that no two texts mean the same."""
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise TlogError(f"{what} is not base64") from None
    if _b64(data) != text:
        raise TlogError(f"{what} is not base64 in its canonical form")
    return data


# -- Tiles and entry bundles (c2sp.org/tlog-tiles) --------------------------------------------


@dataclass(frozen=True, slots=True)
class Tile:
    """``width`` hashes of tile level ``level``: each is the perfect subtree of 256^level
    leaves, so tile level L holds Merkle level 8·L."""

    level: int
    index: int
    width: int

    @property
    def path(self) -> str:
        return tile_path(self.level, self.index, self.width)

    @property
    def entries_path(self) -> str:
        """The entry bundle of the same leaves (meaningful at level 0)."""
        return entries_path(self.index, self.width)

    @property
    def first_leaf(self) -> int:
        return self.index << (TILE_HEIGHT * (self.level + 1))


def tile_path(level: int, index: int, width: int = TILE_WIDTH) -> str:
    if not 0 <= level <= 63:
        raise TlogError(f"tile level {level} is not between 0 and 63")
    return f"tile/{level}/{_tile_index_path(index, width)}"


def entries_path(index: int, width: int = TILE_WIDTH) -> str:
    return f"tile/entries/{_tile_index_path(index, width)}"


def _tile_index_path(index: int, width: int) -> str:
    """1234067 → ``x001/x234/067``: three digits a directory, so no directory grows large."""
    if index < 0:
        raise TlogError(f"tile index {index} is negative")
    if not 1 <= width <= TILE_WIDTH:
        raise TlogError(f"tile width {width} is not between 1 and {TILE_WIDTH}")
    groups = [f"{index % 1000:03d}"]
    index //= 1000
    while index:
        groups.append(f"x{index % 1000:03d}")
        index //= 1000
    partial = f".p/{width}" if width < TILE_WIDTH else ""
    return "/".join(reversed(groups)) + partial


def tiles_for(size: int) -> list[Tile]:
    """Every hash tile a log of ``size`` entries publishes, level by level, left to right; the
    level-0 tiles are also where its entry bundles are."""
    tiles: list[Tile] = []
    level = 0
    hashes = size  # at tile level L: how many perfect subtrees of 256^L leaves there are
    while hashes:
        full, partial = divmod(hashes, TILE_WIDTH)
        tiles.extend(Tile(level, index, TILE_WIDTH) for index in range(full))
        if partial:
            tiles.append(Tile(level, full, partial))
        hashes >>= TILE_HEIGHT
        level += 1
    return tiles


class BundleError(TlogError):
    """An entry bundle that cannot be read, from its ``position``-th entry on."""

    def __init__(self, position: int, reason: str) -> None:
        super().__init__(f"entry {position} of the bundle {reason}")
        self.position = position


def encode_bundle(entries: Sequence[bytes]) -> bytes:
    chunks: list[bytes] = []
    for position, entry in enumerate(entries):
        if len(entry) > MAX_ENTRY_SIZE:
            raise BundleError(position, f"has {len(entry)} bytes, more than {MAX_ENTRY_SIZE}")
        chunks.append(len(entry).to_bytes(2, "big"))
        chunks.append(entry)
    return b"".join(chunks)


def decode_bundle(data: bytes) -> list[bytes]:
    return list(iter_bundle(data))


def iter_bundle(data: bytes) -> Iterator[bytes]:
    """The entries of a bundle one by one, so that a reader meets those before a cut first."""
    position = offset = 0
    while offset < len(data):
        if offset + 2 > len(data):
            raise BundleError(position, "is cut short in its length")
        length = int.from_bytes(data[offset : offset + 2], "big")
        offset += 2
        if offset + length > len(data):
            raise BundleError(position, f"is cut short: {length} bytes announced")
        yield data[offset : offset + length]
        offset += length
        position += 1
