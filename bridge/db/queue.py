"""What every durable work table shares: pending → done, or retried with backoff, then dead."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Generic, Protocol, TypeVar

from mautrix.util.async_db import Database

from .transaction import after_commit


class Keyed(Protocol):
    @property
    def key(self) -> int: ...


T = TypeVar("T", bound=Keyed)


class NumberedItem:
    """A queued row keyed by its `id` that waits since its `created_at` (the dataclasses of
    the work tables mix this in)."""

    __slots__ = ()
    id: int
    created_at: int

    @property
    def key(self) -> int:
        return self.id

    @property
    def received_at(self) -> int:
        return self.created_at


# How long a claimed row stays with the process that took it unless renewed: a process killed
# with SIGKILL has its rows taken over by the others within this.
LEASE_MS = 15_000
# Every queue's `due` query has the time as $1: rows another process works on are not due.
UNCLAIMED = "claimed_until < $1"
# When a pending row can be taken: its next attempt, or the end of another's claim.
AVAILABLE_AT = (
    "CASE WHEN claimed_until > next_attempt_at THEN claimed_until ELSE next_attempt_at END"
)

PENDING = "pending"
DONE = "done"
DEAD = "dead"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    key: int
    name: str
    attempts: int
    last_error: str | None


class WorkQueue(Generic[T]):
    """A table with `status`, `attempts`, `next_attempt_at`, `last_error` columns.

    Subclasses name the table, its integer key column and the column saying since when an item
    waits; the names are constants of the code, never input, so building them into the SQL is
    safe.
    """

    table: ClassVar[str]
    key: ClassVar[str]
    since: ClassVar[str]
    name: ClassVar[str]  # what names an item in the list of dead letters

    def __init__(self, db: Database) -> None:
        self.db = db
        # Set by the queue's consumer; called after new work is committed.
        self.on_new_work: Callable[[], None] = _nothing
        # This process, when others may share the database (PostgreSQL): rows are claimed.
        self.owner: str | None = None
        # The rows this process has in hand: only these are renewed. A row whose release was
        # lost (the database away at that moment) is not, so its claim runs out.
        self._in_hand: set[int] = set()

    def notify(self) -> None:
        """Wakes the consumer once the work just written is committed."""
        after_commit(self.on_new_work)

    async def claim(self, items: list[T], now: int) -> list[T]:
        """The items this process takes: with other processes on the database, those no one
        else took meanwhile (the row's lock decides); alone, all of them."""
        if self.owner is None or not items:
            return items
        taken = await self.db.fetch(
            f"UPDATE {self.table} SET claimed_by=$1, claimed_until=$2 "  # noqa: S608
            f"WHERE {self.key} = ANY($3::bigint[]) AND status='pending' AND claimed_until < $4 "
            f"RETURNING {self.key}",
            self.owner,
            now + LEASE_MS,
            [item.key for item in items],
            now,
        )
        keys = {row[0] for row in taken}
        self._in_hand |= keys
        return [item for item in items if item.key in keys]

    async def renew(self, now: int) -> None:
        """Keeps this process's claims on the rows in hand (a claim that ran out but no one
        took is still this process's)."""
        if self.owner is not None and self._in_hand:
            await self.db.execute(
                f"UPDATE {self.table} SET claimed_until=$2 "  # noqa: S608
                f"WHERE claimed_by=$1 AND {self.key} = ANY($3::bigint[]) AND status='pending'",
                self.owner,
                now + LEASE_MS,
                sorted(self._in_hand),
            )

    async def release(self, *keys: int) -> None:
        """Lets others take the rows (done, waiting out a backoff, or not reached); if the
        database does not hear of it, the claims run out within LEASE_MS all the same."""
        self._in_hand.difference_update(keys)
        if self.owner is not None and keys:
            await self.db.execute(
                f"UPDATE {self.table} SET claimed_by=NULL, claimed_until=0 "  # noqa: S608
                f"WHERE {self.key} = ANY($1::bigint[]) AND claimed_by=$2",
                list(keys),
                self.owner,
            )

    async def mark_done(self, item: T, now: int) -> None:
        await self.db.execute(
            f"UPDATE {self.table} SET status='done', processed_at=$2, last_error=NULL "  # noqa: S608
            f"WHERE {self.key}=$1",
            item.key,
            now,
        )

    async def mark_failed(self, key: int, error: str, next_attempt_at: int, dead: bool) -> None:
        await self.db.execute(
            f"UPDATE {self.table} SET attempts=attempts+1, last_error=$2, "  # noqa: S608
            f"next_attempt_at=$3, status=$4 WHERE {self.key}=$1",
            key,
            error[:2000],
            next_attempt_at,
            DEAD if dead else PENDING,
        )

    async def depth(self) -> int:
        count: int = await self.db.fetchval(
            f"SELECT COUNT(*) FROM {self.table} WHERE status='pending'"  # noqa: S608
        )
        return count

    async def dead_count(self) -> int:
        count: int = await self.db.fetchval(
            f"SELECT COUNT(*) FROM {self.table} WHERE status='dead'"  # noqa: S608
        )
        return count

    async def next_due_at(self) -> int | None:
        due: int | None = await self.db.fetchval(
            f"SELECT MIN({AVAILABLE_AT}) FROM {self.table} WHERE status='pending'"  # noqa: S608
        )
        return due

    async def oldest_waiting_since(self) -> int | None:
        """When the longest-waiting pending item arrived (ms), None when nothing waits."""
        since: int | None = await self.db.fetchval(
            f"SELECT MIN({self.since}) FROM {self.table} WHERE status='pending'"  # noqa: S608
        )
        return since

    async def retry_waiting(self) -> None:
        """Everything backing off after a failure is due now (what it waited for is back)."""
        await self.db.execute(
            f"UPDATE {self.table} SET next_attempt_at=0 "  # noqa: S608
            "WHERE status='pending' AND attempts > 0"
        )

    async def retry_dead(self, key: int) -> bool:
        """Puts a dead letter back in the queue (an operator's request); False if none."""
        row = await self.db.fetchval(
            f"UPDATE {self.table} SET status='pending', attempts=0, next_attempt_at=0 "  # noqa: S608
            f"WHERE {self.key}=$1 AND status='dead' RETURNING {self.key}",
            key,
        )
        if row is not None:
            self.notify()
        return row is not None

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        rows = await self.db.fetch(
            f"SELECT {self.key} AS key, {self.name} AS name, attempts, last_error "  # noqa: S608
            f"FROM {self.table} WHERE status='dead' ORDER BY {self.key} LIMIT $1",
            limit,
        )
        return [DeadLetter(r["key"], r["name"], r["attempts"], r["last_error"]) for r in rows]


def _nothing() -> None:
    pass
