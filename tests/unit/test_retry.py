"""Which failures are waited out, which are parked at once, which are a fault of the bridge."""

from __future__ import annotations

import sqlite3

import aiohttp
import asyncpg
import pytest
from mautrix.errors import MatrixConnectionError, MForbidden, MNotFound, make_request_error

from bridge.callbacks import DeliveryFailed
from bridge.fetch import FetchFailed, FetchRefused
from bridge.retry import Failure, Permanent, Transient, backoff_ms, classify


@pytest.mark.parametrize(
    "error",
    [
        MatrixConnectionError("homeserver down"),
        aiohttp.ClientConnectionError("refused"),
        TimeoutError(),
        ConnectionRefusedError(),
        make_request_error(502, "", "M_UNKNOWN", "bad gateway"),
        make_request_error(429, "", "M_LIMIT_EXCEEDED", "slow down"),
        make_request_error(401, "", "M_UNKNOWN_TOKEN", "token being rotated"),
        asyncpg.CannotConnectNowError("starting up"),
        asyncpg.InterfaceError("connection closed"),
        sqlite3.OperationalError("database is locked"),
        Transient("not created yet"),
        DeliveryFailed("the receiver answered 503"),
        FetchFailed("timed out"),
    ],
)
def test_what_passes_is_waited_out(error: BaseException) -> None:
    assert classify(error) is Failure.TRANSIENT


@pytest.mark.parametrize(
    "error",
    [
        MForbidden(403, "not in the room"),
        MNotFound(404, "no such room"),
        make_request_error(413, "", "M_TOO_LARGE", "event too large"),
        make_request_error(400, "", "M_BAD_JSON", "bad"),
        Permanent("refused"),
        FetchRefused("not under an allowed prefix"),
    ],
)
def test_what_will_not_change_is_parked_at_once(error: BaseException) -> None:
    assert classify(error) is Failure.PERMANENT


@pytest.mark.parametrize("error", [KeyError("x"), ValueError("bug"), AssertionError()])
def test_a_fault_of_the_bridge_is_unexpected(error: BaseException) -> None:
    assert classify(error) is Failure.UNEXPECTED


def test_backoff_grows_to_its_cap_and_no_further() -> None:
    assert 800 <= backoff_ms(1) <= 1200
    assert 3200 <= backoff_ms(3) <= 4800
    assert all(backoff_ms(n, cap_s=300) <= 360_000 for n in range(1, 10_000))
    assert all(backoff_ms(n, cap_s=1) <= 1200 for n in range(1, 100))
