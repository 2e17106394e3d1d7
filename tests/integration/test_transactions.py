"""Homeserver transactions: stored before acknowledged, applied once, refused when wrong."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from bridge.config import Config
from bridge.core import BridgeCore

from ..bridge_process import BridgeProcess
from ..conftest import POSTGRES_ADMIN_URL, Deployment
from ..waiting import wait_for
from .test_direct_chat import is_bot_notice, open_dm


def help_request(room_id: str, sender: str) -> dict[str, Any]:
    """An event as the homeserver would push it: someone asks for help."""
    return {
        "event_id": f"${uuid.uuid4().hex}",
        "room_id": room_id,
        "sender": sender,
        "type": "m.room.message",
        "origin_server_ts": 1,
        "content": {"msgtype": "m.text", "body": "help"},
    }


async def put_transaction(
    deployment: Deployment, txn_id: str, body: Any, token: str | None = None, raw: bytes = b""
) -> tuple[int, dict[str, Any]]:
    url = f"{deployment.bridge_url}/_matrix/app/v1/transactions/{txn_id}"
    headers = {} if token == "" else {"Authorization": f"Bearer {token or deployment.hs_token}"}
    async with aiohttp.ClientSession() as session:
        kwargs: dict[str, Any] = {"data": raw} if raw else {"json": body}
        async with session.put(url, headers=headers, **kwargs) as resp:
            return resp.status, await resp.json(content_type=None)


def replies_to(user: Any, room_id: str, event_id: str) -> list[dict[str, Any]]:
    return [
        e
        for e in user.timeline.get(room_id, [])
        if is_bot_notice(e)
        and e["content"].get("m.relates_to", {}).get("m.in_reply_to", {}).get("event_id")
        == event_id
    ]


async def drained(core: BridgeCore) -> bool:
    return await core.inbox.depth() == 0 and await core.outbox.depth() == 0


async def test_repeated_transaction_has_one_effect_across_restart(
    synapse: Any, deployment: Deployment, config: Config, user_factory: Any
) -> None:
    core = BridgeCore(config)
    await core.start()
    alice = await user_factory("alice")
    room_id = await open_dm(alice)
    event = help_request(room_id, alice.user_id)
    body = {"events": [event]}

    assert await put_transaction(deployment, "txn-1", body) == (200, {})
    assert await put_transaction(deployment, "txn-1", body) == (200, {})
    await wait_for(lambda: drained(core), what="the inbox and outbox to drain")
    await core.stop()

    core = BridgeCore(config)
    await core.start()
    try:
        # The same transaction after a restart, and the same event in a new transaction.
        assert await put_transaction(deployment, "txn-1", body) == (200, {})
        assert await put_transaction(deployment, "txn-2", body) == (200, {})
        await wait_for(lambda: drained(core), what="the inbox and outbox to drain")
        await alice.wait_for_event(
            room_id, lambda e: bool(replies_to(alice, room_id, event["event_id"]))
        )
        marker = await alice.send_text(room_id, "help")  # later than any duplicate would be
        await alice.wait_for_event(room_id, lambda e: bool(replies_to(alice, room_id, marker)))
        assert len(replies_to(alice, room_id, event["event_id"])) == 1
        assert await core.db.fetchval("SELECT COUNT(*) FROM hs_transaction") >= 2
    finally:
        await core.stop()


async def test_a_transaction_id_used_again_for_other_events_loses_none(
    synapse: Any, deployment: Deployment, bridge: BridgeCore, user_factory: Any
) -> None:
    # Synapse on SQLite numbers its transactions from its unfinished ones after a restart, so
    # an id the bridge took before comes again, with other events.
    alice = await user_factory("alice")
    room_id = await open_dm(alice)
    first, second = help_request(room_id, alice.user_id), help_request(room_id, alice.user_id)
    assert await put_transaction(deployment, "reused-1", {"events": [first]}) == (200, {})
    assert await put_transaction(deployment, "reused-1", {"events": [second]}) == (200, {})
    # And the first again, as a homeserver retrying: still one answer each.
    assert await put_transaction(deployment, "reused-1", {"events": [first]}) == (200, {})
    for event in (first, second):
        await alice.wait_for_event(
            room_id, lambda e, asked=event: bool(replies_to(alice, room_id, asked["event_id"]))
        )
    marker = await alice.send_text(room_id, "help")  # later than any duplicate would be
    await alice.wait_for_event(room_id, lambda e: bool(replies_to(alice, room_id, marker)))
    assert len(replies_to(alice, room_id, first["event_id"])) == 1
    assert len(replies_to(alice, room_id, second["event_id"])) == 1


async def test_refusals_store_nothing(
    synapse: Any, deployment: Deployment, bridge: BridgeCore
) -> None:
    event = help_request("!nowhere", "@someone:localhost")
    body = {"events": [event]}
    status, error = await put_transaction(deployment, "t-bad-token", body, token="wrong")
    assert (status, error["errcode"]) == (403, "M_FORBIDDEN")
    status, error = await put_transaction(deployment, "t-no-token", body, token="")
    assert (status, error["errcode"]) == (401, "M_MISSING_TOKEN")
    status, error = await put_transaction(deployment, "t-not-json", None, raw=b"{not json")
    assert (status, error["errcode"]) == (400, "M_NOT_JSON")
    for i, malformed in enumerate(
        [
            [],
            {"events": "x"},
            {"events": [1]},
            {"events": [{"type": "m.room.message"}]},
            {"events": [], "ephemeral": [{"no": "type"}]},
        ]
    ):
        status, error = await put_transaction(deployment, f"t-malformed-{i}", malformed)
        assert (status, error["errcode"]) == (400, "M_BAD_JSON"), malformed
    # (The shared homeserver may deliver transactions of its own meanwhile: only ours count.)
    assert (
        await bridge.db.fetchval("SELECT COUNT(*) FROM hs_transaction WHERE txn_id LIKE 't-%'")
        == 0
    )
    assert (
        await bridge.db.fetchval("SELECT COUNT(*) FROM matrix_event WHERE room_id='!nowhere'") == 0
    )
    # The refused transaction ids are still free: the homeserver's retry is taken.
    assert await put_transaction(deployment, "t-bad-token", body) == (200, {})
    assert await bridge.inbox.get_event(event["event_id"]) is not None


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_database_down_means_not_acknowledged(
    synapse: Any, deployment: Deployment, bridge: BridgeCore, database_url: str
) -> None:
    name = database_url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
    event = help_request("!nowhere", "@someone:localhost")
    try:
        # The database goes away for this bridge: connections cut, no new ones allowed.
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
        )
        status, error = await put_transaction(deployment, "t-db-down", {"events": [event]})
        assert status == 503
        assert error["errcode"] == "M_UNKNOWN"
        health = f"{deployment.bridge_url}/health"
        async with aiohttp.ClientSession() as session, session.get(health) as resp:
            assert resp.status == 503
            assert (await resp.json())["database"] != "ok"
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.close()
    # Back up: the homeserver's retry of the same transaction is stored and processed.
    assert await put_transaction(deployment, "t-db-down", {"events": [event]}) == (200, {})
    assert await bridge.inbox.get_event(event["event_id"]) is not None


async def test_sigkill_while_transactions_stream_in(
    synapse: Any, deployment: Deployment, config: Config, user_factory: Any, tmp_path: Path
) -> None:
    bridge = BridgeProcess(Path(config.path), deployment.bridge_url)
    await bridge.start()
    alice = await user_factory("alice")
    room_id = await open_dm(alice)
    asked: list[str] = []

    async def ask(count: int) -> None:
        for i in range(count):
            asked.append(await alice.send_text(room_id, f"help {i}"))

    try:
        sending = asyncio.create_task(ask(40))
        await wait_for(lambda: len(asked) >= 12, what="messages to flow")
        bridge.kill()
        await sending
        await bridge.start()

        async def all_answered() -> bool:
            await alice.sync()
            return all(replies_to(alice, room_id, e) for e in asked)

        await wait_for(all_answered, timeout=60, interval=0, what="a reply to every message")
        marker = await alice.send_text(room_id, "help")
        await alice.wait_for_event(room_id, lambda e: bool(replies_to(alice, room_id, marker)))
        duplicates = {e: n for e in asked if (n := len(replies_to(alice, room_id, e))) != 1}
        assert duplicates == {}
    finally:
        assert bridge.terminate() == 0, bridge.log()


async def test_failing_event_is_parked_counted_and_retried_on_request(
    synapse: Any, deployment: Deployment, database_url: str, tmp_path: Path
) -> None:
    config = deployment.write_config(tmp_path / "c.yaml", database_url, bridge__max_attempts=2)
    core = BridgeCore(config)
    await core.start()
    # An invite into a room that does not exist: the homeserver refuses the join for good, so
    # the event is parked at its first attempt, with the reason.
    poison = {
        "event_id": f"${uuid.uuid4().hex}",
        "room_id": "!does-not-exist:localhost",
        "sender": "@someone:localhost",
        "type": "m.room.member",
        "state_key": "@procbot:localhost",
        "content": {"membership": "invite", "is_direct": True},
    }
    api = {"Authorization": f"Bearer {deployment.api_token}"}
    try:
        assert await put_transaction(deployment, "t-poison", {"events": [poison]}) == (200, {})
        await wait_for(lambda: _is_dead(core, poison["event_id"]), timeout=30, what="parked")
        async with aiohttp.ClientSession(headers=api) as session:
            async with session.get(f"{deployment.bridge_url}/metrics") as resp:
                text = await resp.text()
            assert 'bridge_queue_dead{queue="events"} 1.0' in text
            assert 'bridge_failed_total{queue="events"}' in text
            async with session.get(f"{deployment.bridge_url}/api/v1/dead-letters") as resp:
                letters = (await resp.json())["events"]
            assert [d["name"] for d in letters] == [poison["event_id"]]
            assert letters[0]["attempts"] == 1
            assert letters[0]["last_error"]
            key = letters[0]["key"]
            async with session.post(
                f"{deployment.bridge_url}/api/v1/dead-letters/events/{key}/retry"
            ) as resp:
                assert resp.status == 200
            async with session.post(
                f"{deployment.bridge_url}/api/v1/dead-letters/events/{key}/retry",
                headers={"Authorization": "Bearer wrong-token"},
            ) as resp:
                assert resp.status == 401
        # Retried, fails again, parked again: never silently dropped.
        await wait_for(lambda: _is_dead(core, poison["event_id"]), timeout=30, what="parked")
        assert await core.inbox.dead_count() == 1
    finally:
        await core.stop()


async def _is_dead(core: BridgeCore, event_id: str) -> bool:
    return await core.inbox.status_of(event_id) == "dead"
