"""The transparency log against a real homeserver and both databases: every fact on record,
checkpoints signed and handed to a witness, inclusion proofs over REST, and an export that an
offline verifier accepts untouched and rejects, naming the first bad entry, after every way
whoever holds the database could change it."""

from __future__ import annotations

import asyncio
import base64
import json
import stat
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from mautrix.util.async_db import Database, Scheme

from bridge.audit.export import export
from bridge.audit.keeper import Checkpoints, LogTampered, sign_checkpoint, verifier_key
from bridge.audit.verify import VerificationFailed, verify
from bridge.core import BridgeCore
from bridge.domain import merkle, tlog
from bridge.domain.locale import Locale

from ..cast import Cast, make_cast
from ..conftest import StartBridge
from ..erp import ERP
from ..local_server import LocalServer
from ..waiting import wait_for
from .test_votes import RESPONSE, answer, commission_room, from_bot, vote_request

POLL_START = "org.matrix.msc3381.poll.start"


class Witness(LocalServer):
    """Someone outside the bridge's database who keeps every checkpoint POSTed to them."""

    def __init__(self) -> None:
        super().__init__()
        self.notes: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/checkpoints"

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/checkpoints", self.keep)

    async def keep(self, request: web.Request) -> web.Response:
        self.notes.append(await request.text())
        return web.Response(status=204)


@pytest.fixture
async def witness() -> AsyncIterator[Witness]:
    keeper = Witness()
    await keeper.start()
    yield keeper
    await keeper.stop()


@pytest.fixture
async def audited(bridge_with: StartBridge, witness: Witness) -> BridgeCore:
    return await bridge_with(audit__checkpoint_url=witness.url, audit__checkpoint_seconds=1)


async def a_finished_vote(erp: ERP, user_factory: Any) -> Cast:
    """A procurement with its rooms, and a vote of three answered to the end."""
    cast = await make_cast(user_factory, suppliers=2, commission=3)
    await erp.upsert(cast.snapshot("commission"))
    room_id = await commission_room(cast)
    status, refused = await erp.send("vote.requested", vote_request(cast, "V-1", quorum=2))
    assert status == 202, refused
    poll = await cast.manager.wait_for_event(room_id, from_bot(POLL_START))
    for member in cast.commission:
        await member.send_event(room_id, RESPONSE, answer(poll["event_id"], "for"))
    await cast.manager.wait_for_event(room_id, from_bot("org.matrix.msc3381.poll.end"))
    return cast


async def settled(bridge: BridgeCore, at_least: int = 8) -> None:
    """The log holds `at_least` entries, and every record committed so far has its place."""
    await wait_for(lambda: _holds(bridge, at_least), what=f"{at_least} entries in the log")
    await wait_for(lambda: _nothing_waits(bridge), what="the log sequenced")


async def _holds(bridge: BridgeCore, entries: int) -> bool:
    return await bridge.store.audit.size() >= entries


async def _removed(bridge: BridgeCore, user_id: str) -> bool:
    return any(
        e["kind"] == "enforcement" and e["payload"]["target"] == user_id
        for e in await all_entries(bridge)
    )


async def _nothing_waits(bridge: BridgeCore) -> bool:
    return await bridge.store.audit.waiting() == 0


async def exported(bridge: BridgeCore, out: Path, procurement: str | None = None) -> Path:
    await settled(bridge)
    checkpoints = Checkpoints(bridge.store.audit, bridge.signer)
    await export(bridge.store, checkpoints, out, Locale.RU, procurement)
    return out


def key_of(bridge: BridgeCore) -> str:
    return verifier_key(bridge.signer)


def kinds(bridge_entries: list[dict[str, Any]]) -> set[str]:
    return {e["kind"] for e in bridge_entries}


async def all_entries(bridge: BridgeCore) -> list[dict[str, Any]]:
    size = await bridge.store.audit.size()
    return [json.loads(e.data) for e in await bridge.store.audit.entries(0, size)]


# What is on record ----------------------------------------------------------------------------


async def test_every_fact_is_on_record_and_the_export_verifies(
    audited: BridgeCore, erp: ERP, user_factory: Any, witness: Witness, tmp_path: Path
) -> None:
    cast = await a_finished_vote(erp, user_factory)
    # A supplier's member leaves the procurement: the bot takes them out, on record.
    leaving = cast.suppliers[0].members.pop()
    await erp.upsert(cast.snapshot("commission"))
    await settled(audited)
    await wait_for(lambda: _removed(audited, leaving.user_id), what="the removal on record")
    entries = await all_entries(audited)
    assert [e["index"] for e in entries] == list(range(len(entries)))
    assert {"matrix.event", "webhook", "vote.ballot", "vote.result", "enforcement"} <= kinds(
        entries
    )
    ballots = [e for e in entries if e["kind"] == "vote.ballot"]
    assert {b["payload"]["voter"] for b in ballots} == {m.user_id for m in cast.commission}
    (result,) = [e for e in entries if e["kind"] == "vote.result"]
    assert result["procurement"] == cast.procurement_id
    assert result["payload"]["tally"]["outcome"] == "for"
    webhooks = [e for e in entries if e["kind"] == "webhook"]
    assert {w["payload"]["type"] for w in webhooks} >= {"procurement.upserted", "vote.requested"}
    events = [e for e in entries if e["kind"] == "matrix.event"]
    assert all(e["subject"] == e["payload"]["event"]["event_id"] for e in events)

    # A witness outside the database holds a checkpoint signed by the log's key.
    await wait_for(lambda: witness.notes, what="a checkpoint at the witness")
    verifier = tlog.parse_verifier(key_of(audited))
    held = tlog.Checkpoint.parse(tlog.open_note(witness.notes[-1], verifier))
    assert held.origin == audited.signer.name

    out = await exported(audited, tmp_path / "full")
    report = verify(out, key_of(audited), earlier=witness.notes[-1])
    assert report.size >= len(entries)
    assert report.kinds["vote.ballot"] == 3
    index = (out / "dossier" / cast.procurement_id / "index.html").read_text()
    assert f"№ {result['index']}" in index or str(result["index"]) in index

    one = await exported(audited, tmp_path / "one", cast.procurement_id)
    assert not (one / "tile" / "entries").exists()
    assert verify(one, key_of(audited)).kinds["vote.result"] == 1


async def test_an_inclusion_proof_over_rest_checks_against_the_signed_checkpoint(
    audited: BridgeCore, erp: ERP, user_factory: Any
) -> None:
    await a_finished_vote(erp, user_factory)
    await settled(audited)
    status, found = await erp.get("/api/v1/audit/subjects/V-1")
    assert status == 200, found
    (index,) = [e["index"] for e in found["entries"] if e["kind"] == "vote.result"]
    status, proved = await erp.get(f"/api/v1/audit/entries/{index}")
    assert status == 200, proved
    assert proved["entry"]["kind"] == "vote.result"
    verifier = tlog.parse_verifier(key_of(audited))
    checkpoint = tlog.Checkpoint.parse(tlog.open_note(proved["checkpoint"], verifier))
    assert checkpoint.size == proved["tree_size"]
    leaf = merkle.leaf_hash(base64.b64decode(proved["entry_base64"]))
    proof = [base64.b64decode(h) for h in proved["proof"]]
    assert merkle.verify_inclusion(leaf, index, checkpoint.size, proof, checkpoint.root)
    assert not merkle.verify_inclusion(leaf, index + 1, checkpoint.size, proof, checkpoint.root)
    status, _ = await erp.get(f"/api/v1/audit/entries/{10**9}")
    assert status == 404
    status, _ = await erp.get("/api/v1/audit/entries/-1")
    assert status == 404


async def test_the_database_refuses_changes_to_the_log(
    audited: BridgeCore, erp: ERP, user_factory: Any
) -> None:
    cast = await make_cast(user_factory, suppliers=1, commission=0)
    await erp.upsert(cast.snapshot("offers"))
    await settled(audited)
    db = audited.store.db
    for statement in (
        "UPDATE audit_record SET entry=entry WHERE idx=0",
        "DELETE FROM audit_record WHERE idx=0",
        "DELETE FROM audit_node WHERE level=0",
    ):
        with pytest.raises(Exception, match="append-only"):
            await db.execute(statement)


# As whoever holds the database would change it -----------------------------------------------

Tamper = Callable[[BridgeCore, Database], Awaitable[None]]


async def change_a_byte_of_an_entry(bridge: BridgeCore, db: Database) -> None:
    entry = await db.fetchval("SELECT entry FROM audit_record WHERE idx=3")
    changed = bytearray(entry)
    changed[len(changed) // 2] ^= 0x01
    await db.execute("UPDATE audit_record SET entry=$1 WHERE idx=3", bytes(changed))


async def delete_a_row(bridge: BridgeCore, db: Database) -> None:
    await db.execute("DELETE FROM audit_record WHERE idx=3")


async def swap_two_rows(bridge: BridgeCore, db: Database) -> None:
    third = await db.fetchval("SELECT entry FROM audit_record WHERE idx=3")
    fifth = await db.fetchval("SELECT entry FROM audit_record WHERE idx=5")
    await db.execute("UPDATE audit_record SET entry=$1 WHERE idx=3", fifth)
    await db.execute("UPDATE audit_record SET entry=$1 WHERE idx=5", third)


async def truncate_the_tail(bridge: BridgeCore, db: Database) -> None:
    size = await bridge.store.audit.size()
    await db.execute("DELETE FROM audit_record WHERE idx >= $1", size - 2)


async def change_a_blob(bridge: BridgeCore, db: Database) -> None:
    digest, data = await _a_blob(db)
    await db.execute(
        "UPDATE audit_blob SET data=$2 WHERE sha256=$1", digest, bytes(data) + b"\x00"
    )


async def _a_blob(db: Database) -> tuple[str, bytes]:
    row = await db.fetchrow("SELECT sha256, data FROM audit_blob ORDER BY sha256 LIMIT 1")
    assert row is not None, "the procurement has a file on record"
    return row["sha256"], row["data"]


async def rewrite_and_resign_with_a_new_key(bridge: BridgeCore, db: Database) -> None:
    await rewrite_entry_3(
        bridge, db, tlog.Signer(bridge.signer.name, Ed25519PrivateKey.generate())
    )


async def rewrite_and_resign_with_the_real_key(bridge: BridgeCore, db: Database) -> None:
    await rewrite_entry_3(bridge, db, bridge.signer)


async def rewrite_entry_3(bridge: BridgeCore, db: Database, signer: tlog.Signer) -> None:
    """Entry 3 says something else, every hash is recomputed and the checkpoints re-signed:
    the log is consistent in itself."""
    entry = json.loads(await db.fetchval("SELECT entry FROM audit_record WHERE idx=3"))
    entry["time"] += 1
    await db.execute("UPDATE audit_record SET entry=$1 WHERE idx=3", tlog.canonical(entry))
    size = await bridge.store.audit.size()
    leaves = [merkle.leaf_hash(e.data) for e in await bridge.store.audit.entries(0, size)]
    await db.execute("DELETE FROM audit_node")
    nodes = merkle.all_nodes(leaves)
    await db.executemany(
        "INSERT INTO audit_node (level, idx, hash) VALUES ($1, $2, $3)",
        [(level, index, digest) for (level, index), digest in nodes.items()],
    )
    await db.execute("DELETE FROM audit_checkpoint")
    root = merkle.root_of_leaves(leaves)
    note = sign_checkpoint(signer, size, root)
    await db.execute(
        "INSERT INTO audit_checkpoint (size, root, note, created_at) VALUES ($1, $2, $3, 0)",
        size,
        root,
        note,
    )


async def hold_the_log(bridge: BridgeCore) -> None:
    """The bridge stops appending meanwhile, so that what the test rewrites stays whole."""
    assert bridge.audit is not None
    await bridge.audit.sequencer.stop()
    await bridge.audit.checkpointer.stop()


async def drop_the_guards(db: Database) -> None:
    """Whoever owns the database can drop the triggers that keep the log append-only."""
    if db.scheme == Scheme.SQLITE:
        names = await db.fetch(
            "SELECT name FROM sqlite_master WHERE type='trigger' AND name LIKE 'audit%'"
        )
        for row in names:
            await db.execute(f"DROP TRIGGER {row['name']}")
        return
    for table in ("audit_record", "audit_node", "audit_blob"):
        await db.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (change_a_byte_of_an_entry, "entry 3"),
        (delete_a_row, "3"),
        (swap_two_rows, "3"),
        (truncate_the_tail, "missing"),
        (change_a_blob, "blob"),
        # Signed again by the bridge if the log grew meanwhile: then the earlier one catches it.
        (rewrite_and_resign_with_a_new_key, "not signed by|earlier checkpoint"),
        (rewrite_and_resign_with_the_real_key, "earlier checkpoint"),
    ],
)
async def test_a_changed_log_fails_verification(
    audited: BridgeCore,
    erp: ERP,
    user_factory: Any,
    tmp_path: Path,
    tamper: Tamper,
    reason: str,
) -> None:
    cast = await make_cast(user_factory, suppliers=1, commission=0)
    await erp.upsert(cast.snapshot("offers"))
    status, _ = await erp.send(
        "document.published",
        {
            "procurement_id": cast.procurement_id,
            "room": "org",
            "document": {
                "type": "ТЗ",
                "filename": "ТЗ.pdf",
                "content_base64": base64.b64encode(b"%PDF-1.7 " * 100).decode(),
            },
        },
    )
    assert status == 202
    await wait_for(lambda: _has_blob(audited.store.db), what="the document on record")
    before = await exported(audited, tmp_path / "before")
    earlier = (before / "checkpoint").read_text()
    verify(before, key_of(audited), earlier=earlier)  # untouched, it verifies

    db = audited.store.db
    await hold_the_log(audited)
    await drop_the_guards(db)
    await tamper(audited, db)
    after = tmp_path / "after"
    await export(audited.store, Checkpoints(audited.store.audit, audited.signer), after, Locale.RU)
    with pytest.raises(VerificationFailed) as failed:
        verify(after, key_of(audited), earlier=earlier)
    assert any(r in str(failed.value) for r in reason.split("|")), failed.value


async def _has_blob(db: Database) -> bool:
    return await db.fetchval("SELECT COUNT(*) FROM audit_blob") > 0


# From the command line --------------------------------------------------------------------------


def run_bridge(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridge", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_the_operator_exports_and_the_auditor_verifies_offline(
    audited: BridgeCore, erp: ERP, user_factory: Any, tmp_path: Path
) -> None:
    cast = await make_cast(user_factory, suppliers=1, commission=0)
    await erp.upsert(cast.snapshot("offers"))
    await settled(audited)
    config = audited.config.path
    key = run_bridge("-c", config, "audit", "key")
    assert key.returncode == 0, key.stderr
    assert key.stdout.strip() == key_of(audited)
    assert stat.S_IMODE(audited.config.audit_key_path.stat().st_mode) == 0o600

    out = tmp_path / "export"
    done = await asyncio.to_thread(run_bridge, "-c", config, "audit", "export", str(out))
    assert done.returncode == 0, done.stderr
    checked = run_bridge("audit", "verify", str(out), "--key", key_of(audited))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "matrix.event" in checked.stdout

    (bundle,) = [p for p in (out / "tile" / "entries").rglob("*") if p.is_file()]
    data = bytearray(bundle.read_bytes())
    data[40] ^= 0x01  # inside entry 0
    bundle.write_bytes(bytes(data))
    failed = run_bridge("audit", "verify", str(out), "--key", key_of(audited))
    assert failed.returncode == 1
    assert "entry 0" in failed.stdout + failed.stderr

    alone = tmp_path / "one"
    done = await asyncio.to_thread(
        run_bridge, "-c", config, "audit", "export", str(alone), "--procurement", "nothing"
    )
    assert done.returncode == 1
    assert "nothing" in done.stderr


async def test_the_bridge_never_signs_a_log_rewritten_under_it(
    audited: BridgeCore, erp: ERP, user_factory: Any
) -> None:
    """Whoever holds the database and the key rewrites the log and its checkpoints while the
    bridge runs: the bridge remembers what it signed and signs nothing more."""
    cast = await make_cast(user_factory, suppliers=1, commission=0)
    await erp.upsert(cast.snapshot("offers"))
    await settled(audited)
    assert audited.audit is not None
    checkpoints = audited.audit.checkpoints
    await checkpoints.sign_now()
    await hold_the_log(audited)
    await drop_the_guards(audited.store.db)
    await rewrite_and_resign_with_the_real_key(audited, audited.store.db)
    with pytest.raises(LogTampered):
        await checkpoints.sign_now()
