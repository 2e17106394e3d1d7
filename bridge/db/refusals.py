"""Changes the homeserver refused while converging a procurement's rooms: each kept once with
its latest reason, shown with the dead letters and retried on an operator's request."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from mautrix.util.async_db import Database

from .queue import DeadLetter


class RefusedEffects:
    def __init__(self, db: Database) -> None:
        self.db = db
        # Set by core: asks for another pass of a procurement (an operator's retry).
        self.request_reconcile: Callable[[str], Awaitable[None]] = _no_reconcile

    async def record(
        self, procurement_id: str, room_key: str, effect: str, reason: str, now: int
    ) -> None:
        await self.db.execute(
            "INSERT INTO refused_effect (procurement_id, room_key, effect, reason, first_at, "
            "last_at) VALUES ($1, $2, $3, $4, $5, $5) "
            "ON CONFLICT (procurement_id, room_key, effect) DO UPDATE SET "
            "reason=excluded.reason, last_at=excluded.last_at, "
            "attempts=refused_effect.attempts+1",
            procurement_id,
            room_key,
            effect[:500],
            reason[:2000],
            now,
        )

    async def of_procurement(self, procurement_id: str) -> set[tuple[str, str]]:
        """(room key, change) of each refusal on record for the procurement."""
        rows = await self.db.fetch(
            "SELECT room_key, effect FROM refused_effect WHERE procurement_id=$1", procurement_id
        )
        return {(r["room_key"], r["effect"]) for r in rows}

    async def clear(self, procurement_id: str, room_key: str, effect: str) -> None:
        """The change went through after all."""
        await self.db.execute(
            "DELETE FROM refused_effect WHERE procurement_id=$1 AND room_key=$2 AND effect=$3",
            procurement_id,
            room_key,
            effect[:500],
        )

    async def dead_count(self) -> int:
        count: int = await self.db.fetchval("SELECT COUNT(*) FROM refused_effect")
        return count

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        rows = await self.db.fetch(
            "SELECT id, procurement_id, room_key, effect, attempts, reason FROM refused_effect "
            "ORDER BY id LIMIT $1",
            limit,
        )
        return [
            DeadLetter(
                r["id"],
                f"{r['procurement_id']} {r['room_key']}: {r['effect']}",
                r["attempts"],
                r["reason"],
            )
            for r in rows
        ]

    async def retry_dead(self, key: int) -> bool:
        """Forgets the refusal and converges its procurement again; False if there is none."""
        procurement_id = await self.db.fetchval(
            "DELETE FROM refused_effect WHERE id=$1 RETURNING procurement_id", key
        )
        if procurement_id is None:
            return False
        await self.request_reconcile(procurement_id)
        return True


async def _no_reconcile(_: str) -> None:
    return None
