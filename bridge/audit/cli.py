"""`python -m bridge [-c CONFIG] audit key|export|verify …`: the audit log from the command
line. `verify` needs only the export and the verifier key; the others read the config and the
database (the bridge may be running meanwhile)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from ..config import Config, ConfigError
from ..db import open_database
from ..db.store import Store
from ..domain import tlog
from . import verify
from .export import export
from .keeper import Checkpoints, verifier_key
from .keys import KeyProblem, load_key

EXIT_FAILED = 1
EXIT_CONFIG = 11


def is_audit_command(argv: list[str]) -> bool:
    """Whether the arguments ask for `audit …` (after an optional `-c CONFIG`)."""
    rest = argv[2:] if argv[:1] in (["-c"], ["--config"]) else argv
    return rest[:1] == ["audit"]


def main(argv: list[str]) -> int:
    config_path = "config.yaml"
    if argv[:1] in (["-c"], ["--config"]) and len(argv) > 1:
        config_path, argv = argv[1], argv[2:]
    args = argv[1:]  # after "audit"
    if args[:1] == ["verify"]:
        return verify.run(args[1:])
    parser = argparse.ArgumentParser(prog="python -m bridge -c config.yaml audit")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("key", help="print the log's verifier key (signed-note format)")
    out = commands.add_parser("export", help="export the log and the dossiers")
    out.add_argument("out", type=Path, metavar="OUT")
    out.add_argument("--procurement", metavar="ID", help="only this procurement, with proofs")
    commands.add_parser("verify", help="verify an export offline (needs no config)")
    parsed = parser.parse_args(args)
    try:
        config = _config(config_path)
        signer = load_key(config.audit_key_path, config.audit_origin)
    except (ConfigError, KeyProblem) as e:
        print(f"Configuration error: {e}", file=sys.stderr)
        return EXIT_CONFIG
    if signer is None:
        print(
            f"Configuration error: audit.key: {config.audit_key_path} does not exist; "
            "run the bridge with -g",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    if parsed.command == "key":
        print(verifier_key(signer))
        return 0
    return asyncio.run(_export(config, signer, parsed.out, parsed.procurement))


def _config(path: str) -> Config:
    if not Path(path).exists():
        raise ConfigError("config", f"{path} does not exist")
    config = Config(path, "pkg://bridge/example-config.yaml")
    config.load()
    config.update(save=False)
    config.check()
    return config


async def _export(config: Config, signer: tlog.Signer, out: Path, procurement: str | None) -> int:
    db = open_database(str(config["database"]), config["database_opts"])
    await db.start()
    try:
        store = Store(db, callbacks_enabled=False)
        if procurement is not None and await store.procurements.get(procurement) is None:
            print(f"No procurement {procurement!r} in this log", file=sys.stderr)
            return EXIT_FAILED
        summary = await export(
            store, Checkpoints(store.audit, signer), out, config.locale, procurement
        )
    finally:
        await db.stop()
    print(
        f"Exported {summary.entries} entries, {summary.blobs} blobs, "
        f"{len(summary.dossiers)} dossiers to {out}"
    )
    print(f"Checkpoint: tree size {summary.checkpoint.size}, key {verifier_key(signer)}")
    return 0
