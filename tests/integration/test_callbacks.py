"""Callbacks out: signed, at least once, in order per procurement, parked when refused."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from mautrix.util.async_db import Database
from standardwebhooks import Webhook

from bridge import metrics
from bridge.callbacks import QUEUE, CallbackSender, sign
from bridge.config import new_whsec
from bridge.db import upgrade_table
from bridge.db.audit import AuditLog
from bridge.db.callbacks import CallbackOutbox
from bridge.worker import QueueWorker, now_ms

from ..receiver import Receiver
from ..waiting import wait_for

SECRET = new_whsec()


async def open_database(url: str) -> Database:
    db = Database.create(url, upgrade_table=upgrade_table)
    await db.start()
    return db


def start_worker(outbox: CallbackOutbox, session: aiohttp.ClientSession, url: str) -> QueueWorker:
    sender = CallbackSender(session, url, SECRET)
    # A backoff capped at 20 ms: the tests wait for retries, not for the clock.
    worker: QueueWorker[Any] = QueueWorker(
        QUEUE, outbox, outbox.due, sender.deliver, 8, max_backoff_s=0.02
    )
    worker.start()
    return worker


def counted(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


async def enqueue(outbox: CallbackOutbox, procurement_id: str, key: str, type: str) -> int:
    data = {"key": key, "outcome": "approved", "comment": "Согласовано"}
    return await outbox.enqueue(key, procurement_id, type, data, now_ms())


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    db = await open_database(database_url)
    yield db
    await db.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver(SECRET)
    yield receiver
    await receiver.stop()


def test_signature_matches_the_standard_webhooks_test_vector() -> None:
    webhook = Webhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    headers = sign(webhook, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, '{"test": 2432232314}')
    assert headers == {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }


async def test_delivered_once_signed_with_the_body(
    db: Database, session: aiohttp.ClientSession, receiver: Receiver
) -> None:
    await receiver.start()
    outbox = CallbackOutbox(db, AuditLog(db))
    worker = start_worker(outbox, session, receiver.url)
    try:
        data = {"vote_id": "V-174", "tally": {"for": 6, "against": 1}, "closed_by": "Кворум"}
        first = await outbox.enqueue("vote.completed:V-174", "26908", "vote.completed", data, 1)
        # The handler that queued it runs again (e.g. after a crash): still one callback.
        again = await outbox.enqueue("vote.completed:V-174", "26908", "vote.completed", data, 2)
        assert again == first
        await wait_for(
            lambda: _is_done(outbox, "vote.completed:V-174"), what="the vote callback delivered"
        )
    finally:
        await worker.stop()

    [request] = receiver.requests
    assert receiver.unsigned == 0
    assert request.status == 200
    assert request.webhook_id.startswith("cb_")
    assert "Кворум".encode() in request.raw  # UTF-8, not \u escapes
    assert request.body == {
        "type": "vote.completed",
        "data": {"procurement_id": "26908", **data},
    }
    assert await outbox.depth() == 0


async def _is_done(outbox: CallbackOutbox, dedup_key: str) -> bool:
    return await outbox.status_of(dedup_key) == "done"


async def test_receiver_down_only_delays_and_retries_keep_the_id(
    db: Database, session: aiohttp.ClientSession, receiver: Receiver
) -> None:
    failed_before = counted("bridge_failed_total", queue=QUEUE)
    network_before = counted("bridge_callback_failures_total", reason="network")
    server_errors_before = counted("bridge_callback_failures_total", reason="5xx")
    outbox = CallbackOutbox(db, AuditLog(db))
    worker = start_worker(outbox, session, receiver.url)
    try:
        await enqueue(outbox, "26908", "A-17:done", "approval.completed")

        async def attempts() -> int:
            count: int = await db.fetchval("SELECT attempts FROM callback_outbox")
            return count

        await wait_for(lambda: _at_least(attempts, 2), what="attempts while the receiver is down")
        # Back, but overloaded for its first two requests.
        unavailable = iter([503, 503])
        receiver.status_for = lambda body: next(unavailable, 200)
        await receiver.start()
        await wait_for(lambda: _is_done(outbox, "A-17:done"), what="delivery after the outage")
    finally:
        await worker.stop()

    assert [r.status for r in receiver.requests] == [503, 503, 200]
    assert len({r.webhook_id for r in receiver.requests}) == 1
    assert len({r.raw for r in receiver.requests}) == 1
    assert counted("bridge_callback_failures_total", reason="network") >= network_before + 2
    assert counted("bridge_callback_failures_total", reason="5xx") == server_errors_before + 2
    assert counted("bridge_failed_total", queue=QUEUE) >= failed_before + 4


async def _at_least(count: Callable[[], Any], minimum: int) -> bool:
    return bool(await count() >= minimum)


async def test_order_kept_per_procurement_others_not_blocked(
    db: Database, session: aiohttp.ClientSession, receiver: Receiver
) -> None:
    released = False
    receiver.status_for = lambda body: 200 if released or body["data"]["key"] != "a1" else 503
    await receiver.start()
    outbox = CallbackOutbox(db, AuditLog(db))
    await enqueue(outbox, "P-A", "a1", "approval.step_decided")
    await enqueue(outbox, "P-A", "a2", "approval.step_decided")
    await enqueue(outbox, "P-A", "a3", "approval.completed")
    await enqueue(outbox, "P-B", "b1", "document.uploaded")
    worker = start_worker(outbox, session, receiver.url)
    try:
        await wait_for(
            lambda: "b1" in receiver.delivered_keys() and len(receiver.tries_of("a1")) >= 3,
            what="P-B delivered while P-A's first callback keeps failing",
        )
        assert not receiver.tries_of("a2")
        assert not receiver.tries_of("a3")
        released = True
        await wait_for(lambda: len(receiver.delivered()) == 4, what="everything delivered")
    finally:
        await worker.stop()

    assert [k for k in receiver.delivered_keys() if k.startswith("a")] == ["a1", "a2", "a3"]
    assert receiver.delivered_keys().index("b1") < receiver.delivered_keys().index("a1")
    assert all(len(receiver.tries_of(k)) == 1 for k in ("a2", "a3", "b1"))


async def test_restart_delivers_what_is_pending_and_nothing_twice(
    database_url: str, session: aiohttp.ClientSession, receiver: Receiver
) -> None:
    receiver.status_for = lambda body: 503 if body["data"]["key"] == "late" else 200
    await receiver.start()
    db = await open_database(database_url)
    outbox = CallbackOutbox(db, AuditLog(db))
    worker = start_worker(outbox, session, receiver.url)
    await enqueue(outbox, "P-1", "early", "document.uploaded")
    await enqueue(outbox, "P-2", "late", "document.uploaded")
    await wait_for(
        lambda: "early" in receiver.delivered_keys() and len(receiver.tries_of("late")) >= 2,
        what="one callback delivered, the other failing",
    )
    await worker.stop()
    await db.stop()

    receiver.status_for = lambda body: 200
    db = await open_database(database_url)
    try:
        outbox = CallbackOutbox(db, AuditLog(db))
        worker = start_worker(outbox, session, receiver.url)
        # Handlers that run again after the restart queue nothing new.
        await enqueue(outbox, "P-1", "early", "document.uploaded")
        await enqueue(outbox, "P-2", "late", "document.uploaded")
        await wait_for(lambda: _is_done(outbox, "late"), what="the pending callback delivered")
        await worker.stop()
    finally:
        await db.stop()

    assert sorted(receiver.delivered_keys()) == ["early", "late"]
    assert len(receiver.tries_of("early")) == 1
    assert len({r.webhook_id for r in receiver.tries_of("late")}) == 1


async def test_refused_callback_is_parked_and_the_next_one_goes(
    db: Database, session: aiohttp.ClientSession, receiver: Receiver
) -> None:
    refusals_before = counted("bridge_callback_failures_total", reason="4xx")
    failed_before = counted("bridge_failed_total", queue=QUEUE)
    receiver.status_for = lambda body: 422 if body["data"]["key"] == "bad" else 200
    await receiver.start()
    outbox = CallbackOutbox(db, AuditLog(db))
    worker = start_worker(outbox, session, receiver.url)
    try:
        bad = await enqueue(outbox, "26908", "bad", "approval.step_decided")
        await enqueue(outbox, "26908", "next", "approval.completed")
        await wait_for(lambda: _is_done(outbox, "next"), what="the next callback delivered")
        [dead] = await outbox.dead_letters()
        assert (dead.key, dead.name, dead.attempts) == (bad, "bad", 1)
        assert "HTTP 422" in (dead.last_error or "")
        assert len(receiver.tries_of("bad")) == 1
        assert await outbox.dead_count() == 1
        assert counted("bridge_callback_failures_total", reason="4xx") == refusals_before + 1
        assert counted("bridge_failed_total", queue=QUEUE) == failed_before + 1

        # The receiver is fixed; the operator retries the dead letter.
        receiver.status_for = lambda body: 200
        assert await outbox.retry_dead(bad)
        await wait_for(lambda: _is_done(outbox, "bad"), what="the retried dead letter delivered")
    finally:
        await worker.stop()

    assert receiver.delivered_keys() == ["next", "bad"]
    assert len({r.webhook_id for r in receiver.tries_of("bad")}) == 1


async def test_without_url_callbacks_are_recorded_not_sent(db: Database) -> None:
    outbox = CallbackOutbox(db, AuditLog(db), enabled=False)
    await enqueue(outbox, "26908", "quiet", "document.uploaded")

    assert await outbox.status_of("quiet") == "disabled"
    assert await outbox.due(now_ms()) == []
    assert await outbox.depth() == 0
    assert await outbox.next_due_at() is None
    body = json.loads(await db.fetchval("SELECT body FROM callback_outbox"))
    assert body["type"] == "document.uploaded"
