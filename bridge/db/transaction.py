"""One database transaction for a fact and everything it causes; wake-ups after the commit."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar

from mautrix.util.async_db import Connection, Database, Scheme
from mautrix.util.async_db.aiosqlite import in_transaction as _sqlite_in_transaction

# Callbacks to run once the current transaction has committed (None: not in one).
_after_commit: ContextVar[list[Callable[[], None]] | None] = ContextVar(
    "after_commit", default=None
)


@asynccontextmanager
async def transaction(db: Database) -> AsyncIterator[Connection]:
    """Everything awaited inside, through any table of `db`, commits or rolls back together.

    mautrix binds the acquired connection to the task's context, so the tables' own methods
    run on it without being handed a connection. A nested call joins the outer transaction.
    """
    if _after_commit.get() is not None:
        joined: Connection
        async with db.acquire() as joined:
            yield joined
        return
    callbacks: list[Callable[[], None]] = []
    token = _after_commit.set(callbacks)
    conn: Connection
    try:
        async with db.acquire() as conn:
            begin = _sqlite_writing if db.scheme == Scheme.SQLITE else _postgres
            async with begin(conn):
                yield conn
    finally:
        _after_commit.reset(token)
    for callback in callbacks:
        callback()


@asynccontextmanager
async def _postgres(conn: Connection) -> AsyncIterator[None]:
    # mautrix annotates transaction() as returning None; it is an async context manager.
    async with conn.transaction():  # type: ignore[attr-defined]
        yield


@asynccontextmanager
async def _sqlite_writing(conn: Connection) -> AsyncIterator[None]:
    """SQLite's own BEGIN reads first and asks for the write lock at the first write; if
    another process (an operator's command beside the running bridge) wrote in between, that
    write fails at once with "database is locked", the busy timeout never consulted. Taking
    the write lock at BEGIN waits for the other writer instead."""
    token = _sqlite_in_transaction.set(True)  # mautrix's own transaction() joins this one
    try:
        await conn.execute("BEGIN IMMEDIATE")
        yield
    except BaseException:
        # Also when cancelled, even during BEGIN (aiosqlite runs it anyway, then this): the
        # pooled connection is used again and must not stay inside a transaction.
        await _rollback(conn)
        raise
    else:
        await conn.execute("COMMIT")
    finally:
        _sqlite_in_transaction.reset(token)


async def _rollback(conn: Connection) -> None:
    try:
        await conn.execute("ROLLBACK")
    except sqlite3.OperationalError as e:
        if "no transaction is active" not in str(e):  # BEGIN itself failed: nothing to undo
            raise


def after_commit(callback: Callable[[], None]) -> None:
    """Runs `callback` when the current transaction commits, or now outside of one: a worker
    woken before the commit would look for the new work and not find it yet."""
    pending = _after_commit.get()
    if pending is None:
        callback()
    else:
        pending.append(callback)
