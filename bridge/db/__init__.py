"""Storage: the only package with SQL. One upgrade step per schema version (mautrix async_db)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from mautrix.util.async_db import Database

from .schema import upgrade_table

__all__ = ["open_database", "upgrade_table"]


def open_database(url: str, options: Mapping[str, Any] | None = None) -> Database:
    """The bridge's database (call `start()` on it), with the production connection settings."""
    db_args = dict(options or {})
    if url.startswith("postgres"):
        # mautrix exits the process on asyncpg's internal errors, which a database restart
        # can cause; the bridge answers 503 and retries instead.
        db_args["meow_exit_on_ice"] = False
        # The bridge keeps no session state (no LISTEN, temp tables or SET), so a connection
        # needs no reset round trip when it goes back to the pool.
        db_args["reset"] = _keep_session
    return Database.create(
        url, upgrade_table=upgrade_table, db_args=db_args, log=logging.getLogger("bridge.db")
    )


async def _keep_session(_: Any) -> None:
    return None
