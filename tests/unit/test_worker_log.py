"""What a queue worker logs when an item fails: a traceback only for a fault of the bridge."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import pytest

from bridge.retry import Permanent
from bridge.worker import QueueWorker


@dataclass(frozen=True)
class Item:
    key: int = 1
    attempts: int = 0
    label: str = "event $e (m.room.message)"
    received_at: int = 0


class Queue:
    """Just what the worker calls when an item fails."""

    on_new_work: Any = None

    def __init__(self) -> None:
        self.parked: list[tuple[int, str, bool]] = []

    async def mark_failed(self, key: int, error: str, next_attempt_at: int, dead: bool) -> None:
        self.parked.append((key, error, dead))

    async def release(self, key: int) -> None:
        pass


def worker_failing_with(error: Exception, queue: Queue) -> QueueWorker[Any]:
    async def handle(_: Item) -> None:
        raise error

    async def due(_: int) -> list[Item]:
        return []

    return QueueWorker("events", queue, due, handle, 3)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("error", "traceback", "parked"),
    [
        (Permanent("M_FORBIDDEN: the invite is gone"), False, True),
        (KeyError("content"), True, False),  # a fault: retried up to max_attempts
    ],
)
async def test_a_refusal_is_logged_with_its_reason_a_fault_with_its_traceback(
    caplog: pytest.LogCaptureFixture, error: Exception, traceback: bool, parked: bool
) -> None:
    queue = Queue()
    with caplog.at_level(logging.ERROR, logger="bridge.worker"):
        await worker_failing_with(error, queue)._process(Item())
    [record] = caplog.records
    assert record.levelno == logging.ERROR
    assert bool(record.exc_info) is traceback
    if not traceback:
        assert "the invite is gone" in record.getMessage()
    assert [dead for _, _, dead in queue.parked] == [parked]
