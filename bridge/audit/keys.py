"""The key that signs the audit log's checkpoints: a signed-note signer key in a file of the
owner's alone (0600), made once; a log that has checkpoints never gets a new key silently.
The key's name is the log's origin, fixed when the key is made."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ..domain import tlog


class KeyProblem(Exception):
    """The key file cannot be used; the message says what to do."""


def create_key(path: Path, origin: str) -> tlog.Signer:
    """Makes a new key for the log named `origin` (refuses to replace an existing file)."""
    text = tlog.signer_key(origin, Ed25519PrivateKey.generate())
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyProblem(f"audit.key: {path} exists already; not replaced") from None
    except OSError as e:
        raise KeyProblem(f"audit.key: cannot write {path} ({e}); make it with -g") from None
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text + "\n")
    return tlog.parse_signer(text)


def load_key(path: Path, origin: str | None) -> tlog.Signer | None:
    """The log's signer from `path`; None if there is no such file. `origin`, when the config
    sets one, must be the key's name."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise KeyProblem(f"audit.key: cannot read {path} ({e})") from None
    try:
        signer = tlog.parse_signer(text)
    except (ValueError, tlog.TlogError) as e:
        raise KeyProblem(f"audit.key: {path} is not a signer key ({e})") from None
    if origin is not None and signer.name != origin:
        raise KeyProblem(
            f"audit.key: {path} signs for {signer.name!r}, but audit.origin is {origin!r}"
        )
    if path.stat().st_mode & 0o077:
        raise KeyProblem(f"audit.key: {path} is readable by others; chmod 600 it")
    return signer
