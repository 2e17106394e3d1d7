"""Leases: work one process at a time does (an ordered queue's consumer, the timers), held by
name for a short time and renewed while the holder lives."""

from __future__ import annotations

from mautrix.util.async_db import Database

# A lease that ran out this long ago is of a process that is gone.
_FORGOTTEN_MS = 3_600_000


class Leases:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def hold(self, name: str, owner: str, now: int, until: int) -> bool:
        """Takes or renews the lease `name` until `until` (ms); False while another holds it."""
        holder = await self.db.fetchval(
            "INSERT INTO lease (name, holder, until) VALUES ($1, $2, $3) "
            "ON CONFLICT (name) DO UPDATE SET holder=excluded.holder, until=excluded.until "
            "WHERE lease.holder = excluded.holder OR lease.until < $4 RETURNING holder",
            name,
            owner,
            until,
            now,
        )
        return bool(holder == owner)

    async def runs_out_at(self, name: str) -> int | None:
        """When the lease `name` runs out (ms) unless renewed; None when no one holds it."""
        until: int | None = await self.db.fetchval("SELECT until FROM lease WHERE name=$1", name)
        return until

    async def let_go(self, name: str, owner: str) -> None:
        """Gives the lease up at once (a clean stop): another takes over without waiting."""
        await self.db.execute("DELETE FROM lease WHERE name=$1 AND holder=$2", name, owner)

    async def live(self, prefix: str, now: int) -> int:
        """How many leases named `prefix…` are held now (the processes alive); those that ran
        out long ago are cleared on the way."""
        await self.db.execute(
            "DELETE FROM lease WHERE name LIKE $1 AND until < $2",
            prefix + "%",
            now - _FORGOTTEN_MS,
        )
        count: int = await self.db.fetchval(
            "SELECT COUNT(*) FROM lease WHERE name LIKE $1 AND until >= $2", prefix + "%", now
        )
        return count

    async def holders(self) -> dict[str, tuple[str, int]]:
        rows = await self.db.fetch("SELECT name, holder, until FROM lease")
        return {r["name"]: (r["holder"], r["until"]) for r in rows}
