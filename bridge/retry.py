"""Which failures are worth retrying, and how long to wait: transient ones are retried for as
long as they last, permanent refusals are parked at once, anything else a few times."""

from __future__ import annotations

import random
import sqlite3
from enum import Enum

import aiohttp
import asyncpg
from mautrix.errors import MatrixConnectionError, MatrixRequestError

DEFAULT_MAX_BACKOFF_S = 300.0

# The database or its pool going away, or a lock held by another writer for too long.
_DATABASE_UNAVAILABLE: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    sqlite3.OperationalError,
)
# HTTP answers that say "not now" rather than "never": timeouts, rate limits, server trouble;
# 401 comes from a token being rotated on one side, which the operator finishes.
_RETRYABLE_STATUS = frozenset({401, 408, 425, 429})


class Failure(Enum):
    TRANSIENT = "transient"  # retried with capped backoff for as long as it lasts
    PERMANENT = "permanent"  # parked at once, with the reason
    UNEXPECTED = "unexpected"  # a fault of the bridge: retried a few times, then parked


class Transient(Exception):
    """A failure that will pass (something is not there yet, a peer is down)."""


class Permanent(Exception):
    """A failure that retrying cannot fix: park the item at once."""


def classify(error: BaseException) -> Failure:
    if isinstance(error, Permanent):
        return Failure.PERMANENT
    if isinstance(error, Transient):
        return Failure.TRANSIENT
    if isinstance(error, MatrixRequestError):
        return _by_status(error.http_status)
    if isinstance(error, aiohttp.ClientResponseError):
        return _by_status(error.status)
    if isinstance(
        error,
        MatrixConnectionError | aiohttp.ClientError | TimeoutError | OSError,
    ):
        return Failure.TRANSIENT
    if isinstance(error, _DATABASE_UNAVAILABLE):
        return Failure.TRANSIENT
    return Failure.UNEXPECTED


def _by_status(status: int) -> Failure:
    if not status or status >= 500 or status in _RETRYABLE_STATUS:
        return Failure.TRANSIENT
    return Failure.PERMANENT


def backoff_ms(attempts: int, cap_s: float = DEFAULT_MAX_BACKOFF_S) -> int:
    """Exponential backoff with jitter: 1 s, 2 s, 4 s … up to `cap_s`."""
    seconds = min(2.0 ** min(max(attempts - 1, 0), 32), cap_s)
    return int(seconds * (0.8 + 0.4 * random.random()) * 1000)  # noqa: S311 - jitter only
