"""One database transaction for a fact and everything it causes; wake-ups after the commit."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar

from mautrix.util.async_db import Connection, Database

# Callbacks to run once the current transaction has committed (None: not in one).
_after_commit: ContextVar[list[Callable[[], None]] | None] = ContextVar(
    "after_commit", default=None
)


@asynccontextmanager
async def transaction(db: Database) -> AsyncIterator[None]:
    """Everything awaited inside, through any table of `db`, commits or rolls back together.

    mautrix binds the acquired connection to the task's context, so the tables' own methods
    run on it without being handed a connection. A nested call joins the outer transaction.
    """
    if _after_commit.get() is not None:
        yield
        return
    callbacks: list[Callable[[], None]] = []
    token = _after_commit.set(callbacks)
    conn: Connection
    try:
        async with db.acquire() as conn, conn.transaction():
            yield
    finally:
        _after_commit.reset(token)
    for callback in callbacks:
        callback()


def after_commit(callback: Callable[[], None]) -> None:
    """Runs `callback` when the current transaction commits, or now outside of one: a worker
    woken before the commit would look for the new work and not find it yet."""
    pending = _after_commit.get()
    if pending is None:
        callback()
    else:
        pending.append(callback)
