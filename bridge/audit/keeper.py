"""The transparency log at work (DESIGN §6): the sequencer that gives records their place in
the tree, signed checkpoints (on a timer, on demand and at shutdown) handed to a witness, and
the REST views of checkpoints and inclusion proofs."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Mapping
from typing import Any

import aiohttp
from prometheus_client import Counter, Gauge

from .. import metrics
from ..background import IDLE_S, Background
from ..db.audit import AuditLog, StoredCheckpoint
from ..domain import merkle, tlog
from ..feature import Feature, JsonView, Scope
from ..retry import backoff_ms
from ..worker import now_ms

log = logging.getLogger("bridge.audit")

BATCH = 1000
_WITNESS_TIMEOUT_S = 30

LOG_SIZE = Gauge("bridge_audit_log_size", "Entries in the audit log", registry=metrics.REGISTRY)
CHECKPOINTS = Counter(
    "bridge_audit_checkpoints_total", "Checkpoints signed", registry=metrics.REGISTRY
)
INCONSISTENT = Counter(
    "bridge_audit_inconsistent_total",
    "Times the stored tree did not extend the last checkpoint (nothing was signed)",
    registry=metrics.REGISTRY,
)


class LogTampered(Exception):
    """The stored tree does not extend the last signed checkpoint."""


def sign_checkpoint(signer: tlog.Signer, size: int, root: bytes) -> str:
    """The C2SP checkpoint of a tree, as a note signed by the log's key (named by origin)."""
    return signer.sign(tlog.Checkpoint(signer.name, size, root).body())


class Checkpoints:
    """Signs what the tree holds now, if it grew, once the stored tree is seen to extend the
    last checkpoint stored and the last one this process signed or saw (kept in memory, out of
    reach of whoever rewrites the database): a rewritten log is never signed."""

    def __init__(self, audit: AuditLog, signer: tlog.Signer) -> None:
        self.audit = audit
        self.signer = signer
        self.seen: tuple[int, bytes] | None = None  # (size, root)

    async def sign_now(self) -> StoredCheckpoint | None:
        """A checkpoint of the whole tree as it is (the latest if it did not grow)."""
        size = await self.audit.size()
        LOG_SIZE.set(size)
        latest = await self.audit.latest_checkpoint()
        known = [self.seen] if self.seen is not None else []
        if latest is not None:
            known.append((latest.size, latest.root))
        if latest is not None and latest.size >= size:
            await self._check_extends(known, latest.size, latest.root)
            self.seen = (latest.size, latest.root)
            return latest
        root = await self.audit.root(size)
        await self._check_extends(known, size, root)
        note = sign_checkpoint(self.signer, size, root)
        await self.audit.add_checkpoint(size, root, note, now_ms())
        CHECKPOINTS.inc()
        self.seen = (size, root)
        return await self.audit.latest_checkpoint()

    async def _check_extends(self, known: list[tuple[int, bytes]], size: int, root: bytes) -> None:
        for old_size, old_root in known:
            if old_size > size:
                consistent = False
            elif old_size == size:
                consistent = old_root == root
            else:
                proof = await self.audit.consistency_proof(old_size, size)
                consistent = merkle.verify_consistency(old_size, size, old_root, root, proof)
            if not consistent:
                INCONSISTENT.inc()
                raise LogTampered(
                    f"the stored tree of size {size} does not extend the checkpoint of size "
                    f"{old_size}; nothing is signed until this is investigated"
                )


class Sequencer(Background):
    """Gives waiting records their place in the tree as soon as they are committed."""

    def __init__(self, audit: AuditLog, max_backoff_s: float) -> None:
        super().__init__("audit-sequencer", log, max_backoff_s)
        self.audit = audit
        audit.on_new_record = self.wake

    def retry_now(self) -> None:
        self.wake()

    async def cycle(self) -> float:
        placed = await self.audit.sequence(BATCH)
        return 0 if placed == BATCH else IDLE_S

    async def drain(self) -> None:
        while await self.audit.sequence(BATCH) == BATCH:
            pass


class Checkpointer(Background):
    """Signs a checkpoint at least every `interval_s` while the log grows, and hands the
    latest to the witness (`audit.checkpoint_url`) until it answers 2xx."""

    def __init__(
        self,
        checkpoints: Checkpoints,
        interval_s: float,
        witness_url: str | None,
        session: aiohttp.ClientSession | None,
        max_backoff_s: float,
    ) -> None:
        super().__init__("audit-checkpoints", log, max_backoff_s)
        self.checkpoints = checkpoints
        self.audit = checkpoints.audit
        self.interval_s = interval_s
        self.witness_url = witness_url
        self.session = session
        self._failures = 0

    def retry_now(self) -> None:
        self._failures = 0
        self.wake()

    async def cycle(self) -> float:
        latest = await self.audit.latest_checkpoint()
        due_in = 0.0
        if latest is not None:
            due_in = self.interval_s - (now_ms() - latest.created_at) / 1000
        if due_in <= 0:
            try:
                await self.checkpoints.sign_now()
            except LogTampered as e:
                log.error("Audit log: %s", e)
            due_in = self.interval_s
        return min(due_in, await self.deliver())

    async def deliver(self) -> float:
        """POSTs the latest undelivered checkpoint; returns when to look again (seconds)."""
        if not self.witness_url or self.session is None:
            return IDLE_S
        pending = await self.audit.undelivered()
        if pending is None:
            return IDLE_S
        try:
            async with self.session.post(
                self.witness_url,
                data=pending.note.encode(),
                headers={"Content-Type": "text/plain; charset=utf-8"},
                timeout=aiohttp.ClientTimeout(total=_WITNESS_TIMEOUT_S),
            ) as response:
                if response.status // 100 != 2:
                    raise aiohttp.ClientResponseError(
                        response.request_info, (), status=response.status
                    )
        except Exception as e:
            self._failures += 1
            log.warning("Checkpoint %d not handed to the witness: %s", pending.size, e)
            return backoff_ms(self._failures, self.max_backoff_s) / 1000
        self._failures = 0
        await self.audit.mark_delivered(pending.size, now_ms())
        return IDLE_S


class AuditKeeper:
    def __init__(
        self,
        audit: AuditLog,
        signer: tlog.Signer,
        *,
        interval_s: float,
        witness_url: str | None,
        session: aiohttp.ClientSession | None,
        max_backoff_s: float,
    ) -> None:
        self.audit = audit
        self.signer = signer
        self.checkpoints = Checkpoints(audit, signer)
        self.sequencer = Sequencer(audit, max_backoff_s)
        self.checkpointer = Checkpointer(
            self.checkpoints, interval_s, witness_url, session, max_backoff_s
        )

    def feature(self) -> Feature:
        return Feature(
            name="audit",
            timers=(self.sequencer, self.checkpointer),
            routes=(
                JsonView("/api/v1/audit/checkpoint", self.checkpoint_view, Scope.READ),
                JsonView("/api/v1/audit/entries/{index}", self.entry_view, Scope.READ),
                JsonView("/api/v1/audit/subjects/{subject}", self.subject_view, Scope.READ),
            ),
        )

    async def close(self) -> None:
        """At shutdown, once nothing else writes: every record placed, and signed."""
        try:
            await self.sequencer.drain()
            await self.checkpoints.sign_now()
            await self.checkpointer.deliver()
        except Exception:
            log.exception("The audit log's last checkpoint was not signed at shutdown")

    # REST -----------------------------------------------------------------------------------

    async def checkpoint_view(self, _: Mapping[str, str]) -> dict[str, Any] | None:
        checkpoint = await self.checkpoints.sign_now()
        if checkpoint is None:
            return None
        return {
            "checkpoint": checkpoint.note,
            "tree_size": checkpoint.size,
            "root": base64.b64encode(checkpoint.root).decode(),
            "verifier_key": verifier_key(self.signer),
        }

    async def entry_view(self, params: Mapping[str, str]) -> dict[str, Any] | None:
        """One entry with its inclusion proof against a checkpoint that holds it."""
        index = _index(params["index"])
        if index is None:
            return None
        entry = await self.audit.entry(index)
        if entry is None:
            return None
        checkpoint = await self.audit.checkpoint_covering(index)
        if checkpoint is None:
            checkpoint = await self.checkpoints.sign_now()
            assert checkpoint is not None
        proof = await self.audit.inclusion_proof(index, checkpoint.size)
        return {
            "index": index,
            "entry": json.loads(entry.data),
            "entry_base64": base64.b64encode(entry.data).decode(),
            "leaf_hash": base64.b64encode(merkle.leaf_hash(entry.data)).decode(),
            "tree_size": checkpoint.size,
            "proof": [base64.b64encode(h).decode() for h in proof],
            "checkpoint": checkpoint.note,
        }

    async def subject_view(self, params: Mapping[str, str]) -> dict[str, Any] | None:
        """The entries about one thing (a vote, an approval, a webhook, an event), by index."""
        entries = await self.audit.of_subject(params["subject"])
        if not entries:
            return None
        found = [json.loads(e.data) for e in entries]
        return {
            "entries": [
                {"index": e["index"], "kind": e["kind"], "procurement": e["procurement"]}
                for e in found
            ]
        }


def verifier_key(signer: tlog.Signer) -> str:
    return tlog.verifier_key(signer.name, signer.private_key.public_key())


def _index(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() and len(text) < 19 else None
