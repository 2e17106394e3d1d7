"""One process at a time where it matters. SQLite serves one bridge process: a second one on
the same file would run every queue and timer twice, so the first holds an exclusive lock on
`<file>.lock` for its lifetime (the kernel lets it go however the process ends, SIGKILL
included). On PostgreSQL several processes share the database, but only one upgrades its
schema at a time."""

from __future__ import annotations

import fcntl
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
from yarl import URL


class SecondProcess(Exception):
    """Another bridge process has this SQLite database."""


class SqliteProcessLock:
    def __init__(self, database_url: str) -> None:
        self.path = _lock_path(database_url)
        self._fd: int | None = None

    def acquire(self) -> None:
        """Takes the lock, or raises SecondProcess at once; nothing to do for PostgreSQL."""
        if self.path is None or self._fd is not None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise SecondProcess(
                f"another bridge process uses this SQLite database ({self.path} is locked); "
                "SQLite serves one process: stop the other, or use PostgreSQL to run several"
            ) from None
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor lets the lock go
            self._fd = None


def _lock_path(database_url: str) -> Path | None:
    url = URL(database_url)
    if url.scheme not in ("sqlite", "sqlite3"):
        return None
    # mautrix takes "sqlite:<path>" (also "sqlite:///abs/path"); ":memory:" has no file.
    file = url.path if url.path else database_url.split(":", 1)[1]
    if not file or file == ":memory:":
        return None
    return Path(file).with_name(Path(file).name + ".lock")


# pg_advisory_lock's key for schema upgrades: any constant of the bridge's own.
_UPGRADE_LOCK = 0x70726F63


@asynccontextmanager
async def upgrading_alone(database_url: str) -> AsyncIterator[None]:
    """Holds a PostgreSQL advisory lock while the body runs (the schema's upgrade): processes
    starting together on an empty database upgrade it one after the other. SQLite: nothing."""
    if URL(database_url).scheme not in ("postgres", "postgresql"):
        yield
        return
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _UPGRADE_LOCK)
        yield
    finally:
        await conn.close()  # the lock goes with the session
