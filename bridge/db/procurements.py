"""Procurements: the latest snapshot of each, and the queue of those whose rooms must converge."""

from __future__ import annotations

from dataclasses import dataclass

from .queue import UNCLAIMED, WorkQueue


@dataclass(frozen=True, slots=True)
class ReconcileJob:
    seq: int
    procurement_id: str
    generation: int
    attempts: int
    received_at: int  # when the change that asks for it was recorded

    @property
    def key(self) -> int:
        return self.seq

    @property
    def label(self) -> str:
        return f"procurement {self.procurement_id} (pass {self.generation})"


@dataclass(frozen=True, slots=True)
class StoredProcurement:
    id: str
    version: int
    stage: str
    snapshot: str  # the webhook's `data` as JSON


class Procurements(WorkQueue[ReconcileJob]):
    table = "procurement"
    key = "seq"
    since = "updated_at"
    name = "id"

    async def save_snapshot(
        self, procurement_id: str, version: int, stage: str, snapshot: str, now: int
    ) -> bool:
        """Stores a newer snapshot and asks for reconciliation; False if not newer."""
        seq = await self.db.fetchval(
            "INSERT INTO procurement (id, version, stage, snapshot, updated_at) "
            "VALUES ($1, $2, $3, $4, $5) "
            "ON CONFLICT (id) DO UPDATE SET version=excluded.version, stage=excluded.stage, "
            "snapshot=excluded.snapshot, updated_at=excluded.updated_at, "
            "generation=procurement.generation+1, status='pending', attempts=0, "
            "next_attempt_at=0 "
            "WHERE procurement.version < excluded.version RETURNING seq",
            procurement_id,
            version,
            stage,
            snapshot,
            now,
        )
        if seq is None:
            return False
        # The first time a stage is applied is when it began (the status card's dates).
        await self.db.execute(
            "INSERT INTO stage_history (procurement_id, stage, since) VALUES ($1, $2, $3) "
            "ON CONFLICT (procurement_id, stage) DO NOTHING",
            procurement_id,
            stage,
            now,
        )
        self.notify()
        return True

    async def stages(self, procurement_id: str) -> dict[str, int]:
        """Each stage the procurement has been in, and since when (ms)."""
        rows = await self.db.fetch(
            "SELECT stage, since FROM stage_history WHERE procurement_id=$1", procurement_id
        )
        return {r["stage"]: r["since"] for r in rows}

    async def ids(self) -> list[str]:
        rows = await self.db.fetch("SELECT id FROM procurement ORDER BY seq")
        return [r["id"] for r in rows]

    async def get(self, procurement_id: str) -> StoredProcurement | None:
        row = await self.db.fetchrow(
            "SELECT id, version, stage, snapshot FROM procurement WHERE id=$1", procurement_id
        )
        if row is None:
            return None
        return StoredProcurement(row["id"], row["version"], row["stage"], row["snapshot"])

    async def request_reconcile(self, procurement_id: str, now: int) -> None:
        """Asks for another pass (something in Matrix changed); a no-op for unknown ids."""
        await self.db.execute(
            "UPDATE procurement SET generation=generation+1, status='pending', attempts=0, "
            "next_attempt_at=0, updated_at=$2 WHERE id=$1",
            procurement_id,
            now,
        )
        self.notify()

    async def request_reconcile_all(self, now: int) -> None:
        """Asks for another pass of every procurement (something all rooms show changed)."""
        await self.db.execute(
            "UPDATE procurement SET generation=generation+1, status='pending', attempts=0, "
            "next_attempt_at=0, updated_at=$1",
            now,
        )
        self.notify()

    async def due(self, now: int, limit: int = 20) -> list[ReconcileJob]:
        rows = await self.db.fetch(
            "SELECT seq, id, generation, attempts, updated_at FROM procurement "  # noqa: S608
            f"WHERE status='pending' AND next_attempt_at <= $1 AND {UNCLAIMED} "
            "ORDER BY next_attempt_at, seq "
            "LIMIT $2",
            now,
            limit,
        )
        return [
            ReconcileJob(r["seq"], r["id"], r["generation"], r["attempts"], r["updated_at"])
            for r in rows
        ]

    async def mark_done(self, item: ReconcileJob, now: int) -> None:
        # A change that arrived during the pass raised the generation: stay pending for it.
        await self.db.execute(
            "UPDATE procurement SET status='done', processed_at=$3, last_error=NULL "
            "WHERE seq=$1 AND generation=$2",
            item.seq,
            item.generation,
            now,
        )
