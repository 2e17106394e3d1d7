"""Tried the way an attacker or a bad day would: reused ids, refused invites, an outage of the
homeserver, document URLs pointing inside, a room shut down beside a healthy one."""

from __future__ import annotations

import asyncio
import base64
import sqlite3
import uuid
from collections.abc import AsyncIterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from mautrix.errors import MatrixRequestError
from mautrix.util.async_db import Database, UpgradeTable

from bridge.core import BridgeCore
from bridge.demo.seed import seed_vote
from bridge.localsynapse import LocalSynapse, free_port
from bridge.matrix import catchup

from ..cast import Cast, Supplier, make_cast
from ..conftest import Deployment, StartBridge
from ..erp import ERP
from ..matrix_user import MatrixUser
from ..receiver import Receiver
from ..talk import reply_to
from ..waiting import wait_for
from .test_transactions import put_transaction

BOT = "@procbot:localhost"


async def in_room(user: MatrixUser, key: str) -> str:
    return await wait_for(
        lambda: user.joined_key(key), timeout=30, what=f"{user.user_id} in {key}"
    )


async def history(user: MatrixUser, room_id: str) -> str:
    """Everything the user's client can load of the room, as text."""
    resp = await user.request(
        "GET", f"/_matrix/client/v3/rooms/{room_id}/messages", query={"dir": "b", "limit": "500"}
    )
    return str(resp["chunk"])


async def cannot_read(user: MatrixUser, room_id: str) -> bool:
    try:
        await history(user, room_id)
    except MatrixRequestError:
        return True
    return False


async def out_of(user: MatrixUser, room_id: str) -> bool:
    """Whether the user is no longer joined or invited (the bridge removed them)."""
    await user.sync()
    return room_id not in await user.joined_rooms() and room_id not in user.invites


async def rooms_of(erp: ERP, cast: Cast) -> dict[str, dict[str, Any]]:
    status, view = await erp.get(f"/api/v1/procurements/{cast.procurement_id}")
    assert status == 200, view
    return {room["key"]: room for room in view["rooms"]}


async def dead_letters(erp: ERP) -> dict[str, list[dict[str, Any]]]:
    status, letters = await erp.get("/api/v1/dead-letters")
    assert status == 200, letters
    return dict(letters)


# --- a room never passes to another party ----------------------------------------------


@pytest.mark.parametrize("kind", ["specification", "shipment"])
@pytest.mark.parametrize("path", ["dropped-then-reused", "moved"])
async def test_a_reused_id_never_opens_one_suppliers_history_to_another(
    bridge: BridgeCore, erp: ERP, user_factory: Any, kind: str, path: str
) -> None:
    cast = await make_cast(user_factory, suppliers=2, commission=0)
    first, second = cast.suppliers
    listed = f"{kind}s"
    key = f"{kind}:S-1"
    await erp.upsert(cast.snapshot("offers", **{listed: [{"id": "S-1", "supplier_id": first.id}]}))
    alice = first.members[0]
    old_room = await in_room(alice, key)
    secret = f"Наша цена {uuid.uuid4().hex}"
    await alice.send_text(old_room, secret)
    await alice.send_file(old_room, "offer-first.pdf", b"%PDF first supplier's offer")

    if path == "dropped-then-reused":
        await erp.upsert(cast.snapshot("offers"))
        await wait_for(lambda: out_of(alice, old_room), what="the first supplier out")
    moved = cast.snapshot("offers", **{listed: [{"id": "S-1", "supplier_id": second.id}]})
    await erp.upsert(moved)
    bob = second.members[0]
    new_room = await in_room(bob, key)

    assert new_room != old_room
    assert old_room not in bob.invites
    assert await cannot_read(bob, old_room)
    assert secret not in await history(bob, new_room)
    assert "offer-first.pdf" not in await history(bob, new_room)
    # The first supplier's room is kept for the record: an archive for the manager alone.
    await wait_for(lambda: out_of(alice, old_room), what="the first supplier out")
    rooms = await wait_for(
        lambda: _retired(erp, cast, f"{key}#1"), what="the old room listed as retired"
    )
    assert rooms[key]["room_id"] == new_room
    assert rooms[f"{key}#1"]["room_id"] == old_room
    manager = cast.manager
    await wait_for(lambda: manager.joined_key(f"{key}#1"), what="the manager keeps the archive")
    assert secret in await history(manager, old_room)


async def _retired(erp: ERP, cast: Cast, key: str) -> dict[str, dict[str, Any]] | None:
    rooms = await rooms_of(erp, cast)
    return rooms if key in rooms and rooms[key]["archived"] else None


async def test_a_supplier_id_given_to_another_company_gets_a_new_room(
    bridge: BridgeCore, erp: ERP, user_factory: Any
) -> None:
    cast = await make_cast(user_factory, suppliers=1, commission=0)
    supplier = cast.suppliers[0]
    key = f"supplier:{supplier.id}"
    await erp.upsert(cast.snapshot("offers"))
    alice = supplier.members[0]
    old_room = await in_room(alice, key)
    secret = f"Скидка 7% {uuid.uuid4().hex}"
    await alice.send_text(old_room, secret)

    cast.suppliers = []
    await erp.upsert(cast.snapshot("offers"))
    await wait_for(lambda: out_of(alice, old_room), what="the supplier out")
    # The same id, another name, other people.
    bob = await user_factory("bob")
    cast.suppliers = [Supplier(supplier.id, "ООО «Другая компания»", [bob])]
    await erp.upsert(cast.snapshot("offers"))
    new_room = await in_room(bob, key)

    assert new_room != old_room
    assert await cannot_read(bob, old_room)
    assert secret not in await history(bob, new_room)


async def test_a_member_moved_to_another_supplier_leaves_the_first_ones_rooms(
    bridge: BridgeCore, erp: ERP, user_factory: Any
) -> None:
    cast = await make_cast(user_factory, suppliers=2, commission=0)
    first, second = cast.suppliers
    await erp.upsert(cast.snapshot("offers"))
    mover = first.members[0]
    first_room = await in_room(mover, f"supplier:{first.id}")
    second.members.append(first.members.pop())
    await erp.upsert(cast.snapshot("offers"))
    await in_room(mover, f"supplier:{second.id}")
    assert await out_of(mover, first_room)


# --- convergence never stops at a refusal ------------------------------------------------


async def test_a_refused_invite_does_not_stop_a_removal(
    bridge: BridgeCore, erp: ERP, user_factory: Any
) -> None:
    cast = await make_cast(user_factory, suppliers=1, members=2, commission=0)
    supplier = cast.suppliers[0]
    key = f"supplier:{supplier.id}"
    await erp.upsert(cast.snapshot("offers"))
    leaving = supplier.members[1]
    room_id = await in_room(leaving, key)
    await in_room(supplier.members[0], key)

    # One snapshot: a member removed, and a team member on a server nobody can reach.
    supplier.members.remove(leaving)
    ghost = "@ghost:unreachable.invalid"
    snapshot = cast.snapshot("offers")
    snapshot["team"].append(ghost)
    await erp.upsert(snapshot)

    await wait_for(lambda: out_of(leaving, room_id), timeout=30, what="the removed member out")
    later = f"После удаления {uuid.uuid4().hex}"
    await supplier.members[0].send_text(room_id, later)
    assert await cannot_read(leaving, room_id) or later not in await history(leaving, room_id)

    async def ghost_on_record() -> bool:
        refused = (await dead_letters(erp))["refused-changes"]
        if any(ghost in letter["name"] for letter in refused):
            return True
        waiting = await bridge.db.fetchval(
            "SELECT last_error FROM procurement WHERE id=$1", cast.procurement_id
        )
        return ghost in str(waiting)

    await wait_for(ghost_on_record, what="the refused invite on record")


# --- an outage is waited out, not parked -------------------------------------------------


async def test_a_homeserver_outage_longer_than_the_give_up_time_loses_nothing(
    synapse: LocalSynapse,
    deployment: Deployment,
    database_url: str,
    tmp_path: Path,
    receiver: Receiver,
    erp: ERP,
    user_factory: Any,
) -> None:
    # Unexpected failures are parked after 3 attempts: a queue that gave up on transient
    # failures would park everything within seconds of the outage. The backoff's cap is a
    # minute, so the work is seen to go as soon as the homeserver is back, not a minute later.
    config = deployment.write_config(
        tmp_path / "config.yaml",
        database_url,
        callbacks__url=receiver.url,
        bridge__max_attempts=3,
        bridge__max_backoff_seconds=60,
    )
    core = BridgeCore(config)
    await core.start()
    try:
        await _outage(core, synapse, deployment, receiver, erp, user_factory)
    finally:
        await core.stop()


async def _outage(
    core: BridgeCore,
    synapse: LocalSynapse,
    deployment: Deployment,
    receiver: Receiver,
    erp: ERP,
    user_factory: Any,
) -> None:
    cast = await make_cast(user_factory, suppliers=1, commission=2)
    newcomer = await user_factory("newcomer")
    await erp.upsert(cast.snapshot("commission"))
    manager = cast.manager
    org = await in_room(manager, "org")
    commission = await in_room(manager, "commission")

    synapse.stop()
    try:
        status, health = await wait_for(
            lambda: _health(deployment, 503), what="/health to say the homeserver is down"
        )
        assert health["homeserver"] != "ok"
        assert health["database"] == "ok"
        # Alive all the same: a liveness probe must not restart the bridge over an outage.
        assert await _live(deployment) == (200, {"process": "ok"})
        notice = f"Срок подачи предложений продлён {uuid.uuid4().hex}"
        status, _ = await erp.send(
            "notice.posted",
            {"procurement_id": cast.procurement_id, "room": "org", "markdown": notice},
        )
        assert status == 202
        cast.team.append(newcomer)
        await erp.upsert(cast.snapshot("commission"))
        closes = datetime.now(UTC) + timedelta(seconds=25)
        vote = seed_vote(cast.procurement_id, "V-outage", closes) | {"quorum": 2}
        status, answer = await erp.send("vote.requested", vote)
        assert status == 202, answer

        # Longer than the old give-up time, as the bridge itself counts it: work waiting
        # through more attempts than bridge.max_attempts allows for unexpected failures.
        async def waited_out() -> bool:
            attempts = await core.db.fetchval(
                "SELECT MAX(attempts) FROM matrix_outbox WHERE status='pending'"
            )
            return (attempts or 0) > 5

        await wait_for(waited_out, timeout=60, what="the outage to outlast the old give-up time")
        # The operator sees work waiting, and for how long.
        waiting = await _metric(deployment, "bridge_queue_oldest_waiting_seconds", "outbox")
        assert waiting > 0
    finally:
        await synapse.start()

    # Within seconds of its return, although the items' own backoff is much longer by now.
    await manager.wait_for_event(
        org, lambda e: e["sender"] == BOT and notice in e["content"].get("body", ""), timeout=20
    )
    await wait_for(lambda: newcomer.joined_key("org"), timeout=60, what="the newcomer invited")
    await manager.wait_for_event(
        commission,
        lambda e: e["sender"] == BOT and e["type"] == "org.matrix.msc3381.poll.start",
        timeout=60,
    )
    await wait_for(
        lambda: [r for r in receiver.delivered() if r.body["type"] == "vote.completed"],
        timeout=60,
        what="the vote closed at its deadline and reported",
    )
    letters = await dead_letters(erp)
    assert {queue: items for queue, items in letters.items() if items} == {}
    assert (await _health(deployment, 200))[1] == {"database": "ok", "homeserver": "ok"}


async def test_work_left_backing_off_by_a_killed_process_goes_once_the_homeserver_is_back(
    synapse: LocalSynapse,
    deployment: Deployment,
    database_url: str,
    tmp_path: Path,
    erp: ERP,
    user_factory: Any,
) -> None:
    # The process that saw the outage is gone; the one started after the homeserver came back
    # saw nothing fail. What waited must not sit out the backoff the outage had built up.
    config = deployment.write_config(tmp_path / "config.yaml", database_url)
    first = BridgeCore(config)
    await first.start()
    try:
        cast, org = await _offers_with_org_chat(erp, user_factory)
        synapse.stop()
        try:
            notice = f"Вскрытие конвертов перенесено {uuid.uuid4().hex}"
            status, _ = await erp.send(
                "notice.posted",
                {"procurement_id": cast.procurement_id, "room": "org", "markdown": notice},
            )
            assert status == 202

            async def failed_once() -> bool:
                return bool(
                    await first.db.fetchval(
                        "SELECT COUNT(*) FROM matrix_outbox WHERE status='pending' AND attempts>0"
                    )
                )

            await wait_for(failed_once, what="the notice to fail while the homeserver is away")
        finally:
            await first.stop()
    finally:
        await synapse.start()
    # As a long outage leaves it: the next attempt many minutes away.
    later = int((datetime.now(UTC) + timedelta(minutes=10)).timestamp() * 1000)
    db = Database.create(database_url, upgrade_table=UpgradeTable())
    await db.start()
    try:
        await db.execute(
            "UPDATE matrix_outbox SET attempts=9, next_attempt_at=$1 WHERE status='pending'",
            later,
        )
    finally:
        await db.stop()
    second = BridgeCore(config)
    await second.start()
    try:
        await cast.manager.wait_for_event(
            org,
            lambda e: e["sender"] == BOT and notice in e["content"].get("body", ""),
            timeout=30,
        )
    finally:
        await second.stop()


async def _offers_with_org_chat(erp: ERP, user_factory: Any) -> tuple[Cast, str]:
    """A procurement at the offers stage with one supplier; its organisation chat, joined by
    the category manager."""
    cast = await make_cast(user_factory, suppliers=1, commission=0)
    await erp.upsert(cast.snapshot("offers"))
    return cast, await in_room(cast.manager, "org")


async def _metric(deployment: Deployment, name: str, queue: str) -> float:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{deployment.bridge_url}/metrics") as resp,
    ):
        text = await resp.text()
    prefix = f'{name}{{queue="{queue}"}} '
    return float(
        next(line for line in text.splitlines() if line.startswith(prefix))[len(prefix) :]
    )


async def _health(deployment: Deployment, wanted: int) -> tuple[int, dict[str, str]] | None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{deployment.bridge_url}/health") as resp,
    ):
        answer = (resp.status, await resp.json())
    return answer if answer[0] == wanted else None


async def _live(deployment: Deployment) -> tuple[int, dict[str, str]]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{deployment.bridge_url}/health/live") as resp,
    ):
        return resp.status, await resp.json()


# --- document URLs cannot reach inside ---------------------------------------------------


class Host:
    """A web server on this machine's loopback that records every request it gets."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.requests: list[str] = []
        self.routes: dict[str, Any] = {}
        self.runner: web.AppRunner | None = None

    async def start(self) -> None:
        async def serve(request: web.Request) -> web.StreamResponse:
            self.requests.append(request.path)
            answer = self.routes.get(request.path)
            if answer is None:
                return web.Response(status=404)
            return await answer(request)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", serve)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner:
            await self.runner.cleanup()


@pytest.fixture
async def hosts() -> AsyncIterator[tuple[Host, Host]]:
    """The procurement system's file store, and an internal service it must never reach."""
    erp_files, internal = Host(), Host()
    await erp_files.start()
    await internal.start()
    yield erp_files, internal
    await erp_files.stop()
    await internal.stop()


@pytest.fixture
async def fetching_bridge(bridge_with: StartBridge, hosts: Any) -> BridgeCore:
    erp_files, _ = hosts
    return await bridge_with(
        # Only the file store's prefix, and loopback only because the tests run there.
        documents__fetch={
            "allow": [f"{erp_files.url}/files/"],
            "allow_networks": ["127.0.0.1/32"],
            "timeout_seconds": 60,
        },
        bridge__max_backoff_seconds=1,
    )


def published(cast: Cast, room: str, url: str) -> dict[str, Any]:
    return {
        "procurement_id": cast.procurement_id,
        "room": room,
        "document": {"filename": "spec.pdf", "url": url},
    }


async def test_a_document_url_cannot_reach_inside(
    fetching_bridge: BridgeCore, erp: ERP, user_factory: Any, hosts: tuple[Host, Host]
) -> None:
    erp_files, internal = hosts
    internal.routes["/admin/secret"] = _body(b"internal secret")
    cast, org = await _offers_with_org_chat(erp, user_factory)
    manager = cast.manager

    # A URL outside the allowed prefixes, on loopback, or at the cloud metadata address:
    # refused at once, nothing fetched.
    for url in (
        f"{internal.url}/admin/secret",
        "http://169.254.169.254/latest/meta-data/",
        f"{erp_files.url}/other/secret",
    ):
        status, answer = await erp.send("document.published", published(cast, "org", url))
        assert (status, answer["errcode"]) == (409, "ORG_PROCUREMENT_URL_NOT_ALLOWED"), url
    assert internal.requests == []

    # An allowed URL that redirects inside: the redirect is refused and the refusal parked.
    async def redirect(_: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(f"{internal.url}/admin/secret")

    erp_files.routes["/files/spec.pdf"] = redirect
    webhook_id = f"msg_{uuid.uuid4().hex}"
    url = f"{erp_files.url}/files/spec.pdf"
    status, _ = await erp.send("document.published", published(cast, "org", url), webhook_id)
    assert status == 202

    async def parked() -> str | None:
        letters = (await dead_letters(erp))["fetches"]
        found = [letter for letter in letters if letter["name"] == webhook_id]
        return str(found[0]["last_error"]) if found else None

    reason = await wait_for(parked, what="the redirect refused and parked")
    assert internal.url in reason
    assert erp_files.requests == ["/files/spec.pdf"]
    assert internal.requests == []
    await manager.sync()
    assert not [
        e for e in manager.timeline.get(org, []) if e["content"].get("msgtype") == "m.file"
    ]
    status, registry = await erp.get(f"/api/v1/procurements/{cast.procurement_id}/documents")
    assert registry["documents"] == []


async def test_a_slow_document_host_delays_only_its_own_document(
    fetching_bridge: BridgeCore, erp: ERP, user_factory: Any, hosts: tuple[Host, Host]
) -> None:
    erp_files, _ = hosts
    released = asyncio.Event()

    async def slow(_: web.Request) -> web.StreamResponse:
        await released.wait()
        return web.Response(body=b"%PDF slow")

    erp_files.routes["/files/slow.pdf"] = slow
    cast, org = await _offers_with_org_chat(erp, user_factory)
    manager = cast.manager

    slow_url = f"{erp_files.url}/files/slow.pdf"
    assert (await erp.send("document.published", published(cast, "org", slow_url)))[0] == 202
    notice = f"Следом за документом {uuid.uuid4().hex}"
    status, _ = await erp.send(
        "notice.posted", {"procurement_id": cast.procurement_id, "room": "org", "markdown": notice}
    )
    assert status == 202
    # The notice does not wait for the slow document (its host answers only when released).
    await manager.wait_for_event(
        org, lambda e: e["sender"] == BOT and notice in e["content"].get("body", "")
    )
    assert "/files/slow.pdf" in erp_files.requests
    released.set()
    await manager.wait_for_event(
        org, lambda e: e["sender"] == BOT and e["content"].get("msgtype") == "m.file", timeout=30
    )


def _body(data: bytes) -> Any:
    async def answer(_: web.Request) -> web.StreamResponse:
        return web.Response(body=data)

    return answer


# --- one failing vote holds up no other --------------------------------------------------


@pytest.fixture
async def callback_bridge(bridge_with: StartBridge, receiver: Receiver) -> BridgeCore:
    return await bridge_with(callbacks__url=receiver.url)


async def test_a_shut_down_room_holds_up_no_other_vote(
    callback_bridge: BridgeCore, erp: ERP, receiver: Receiver, user_factory: Any
) -> None:
    poisoned, healthy = (
        await make_cast(user_factory, suppliers=1, commission=2),
        await make_cast(user_factory, suppliers=1, commission=2),
    )
    admin = await user_factory("admin", admin=True)
    rooms = {}
    for cast in (poisoned, healthy):
        await erp.upsert(cast.snapshot("commission"))
        rooms[cast.procurement_id] = await in_room(cast.manager, "commission")
    closes = datetime.now(UTC) + timedelta(seconds=15)
    for cast, vote_id in ((poisoned, "V-A"), (healthy, "V-B")):
        status, answer = await erp.send(
            "vote.requested", seed_vote(cast.procurement_id, vote_id, closes) | {"quorum": 2}
        )
        assert status == 202, answer
        await cast.manager.wait_for_event(
            rooms[cast.procurement_id],
            lambda e: e["sender"] == BOT and e["type"] == "org.matrix.msc3381.poll.start",
        )
    await admin.request(
        "DELETE",
        f"/_synapse/admin/v2/rooms/{rooms[poisoned.procurement_id]}",
        {"block": False, "purge": False},
    )

    def completed(cast: Cast) -> list[dict[str, Any]]:
        return [
            r.body["data"]
            for r in receiver.delivered()
            if r.body["type"] == "vote.completed"
            and r.body["data"]["procurement_id"] == cast.procurement_id
        ]

    await wait_for(lambda: completed(healthy), timeout=60, what="the healthy vote reported")
    await wait_for(lambda: completed(poisoned), timeout=60, what="the shut-down vote reported")
    assert completed(healthy)[0]["closed_by"] == "deadline"
    room = rooms[healthy.procurement_id]
    await healthy.manager.wait_for_event(
        room, lambda e: e["sender"] == BOT and e["type"] == "org.matrix.msc3381.poll.end"
    )


# --- smaller edges ----------------------------------------------------------------------


async def test_a_nul_in_a_file_name_is_kept_out_of_nothing(
    bridge: BridgeCore, erp: ERP, user_factory: Any
) -> None:
    cast = await make_cast(user_factory, suppliers=1, commission=0)
    await erp.upsert(cast.snapshot("offers"))
    member = cast.suppliers[0].members[0]
    room_id = await in_room(member, f"supplier:{cast.suppliers[0].id}")
    await member.send_file(room_id, "offer\x00final.pdf", b"%PDF with a NUL in its name")

    async def registered() -> list[dict[str, Any]] | None:
        _, view = await erp.get(f"/api/v1/procurements/{cast.procurement_id}/documents")
        return view["documents"] or None

    (entry,) = await wait_for(registered, what="the file in the registry")
    assert entry["filename"] == "offer\ufffdfinal.pdf"


async def test_a_huge_notice_is_posted_cut_not_parked(
    bridge: BridgeCore, erp: ERP, user_factory: Any
) -> None:
    cast, org = await _offers_with_org_chat(erp, user_factory)
    manager = cast.manager
    # 16,000 characters whose HTML is many times larger: over a Matrix event's 64 KiB.
    markdown = ("**«Цена» & <условия>** " * 700)[:16_000]
    status, answer = await erp.send(
        "notice.posted",
        {"procurement_id": cast.procurement_id, "room": "org", "markdown": markdown},
    )
    assert status == 202, answer
    shown = await manager.wait_for_event(
        org, lambda e: e["sender"] == BOT and "«Цена»" in e["content"].get("body", "")
    )
    assert len(shown["content"]["body"]) > 1000
    assert (await dead_letters(erp))["outbox"] == []


async def test_a_click_counts_only_in_the_card_s_own_room(
    callback_bridge: BridgeCore, deployment: Deployment, erp: ERP, user_factory: Any
) -> None:
    cast = await make_cast(user_factory, suppliers=1, commission=2)
    await erp.upsert(cast.snapshot("commission"))
    approver = cast.commission[0]
    document = base64.b64encode(b"%PDF approval").decode()
    status, _ = await erp.send(
        "approval.requested",
        {
            "procurement_id": cast.procurement_id,
            "approval_id": "A-room",
            "initiator": cast.manager.user_id,
            "document": {"filename": "TKA.pdf", "content_base64": document},
            "mode": "parallel",
            "approvers": [approver.user_id],
        },
    )
    assert status == 202
    approval_room = await in_room(approver, "approval:A-room")
    card = await approver.wait_for_event(
        approval_room,
        lambda e: e["sender"] == BOT and e["content"].get("body", "").startswith("Согласование:"),
    )
    # A click on the card's «Согласовать», but sent in the commission chat. Synapse refuses
    # such a relation from its own clients; a homeserver that does not (or a federated one)
    # would push it like this.
    commission = await in_room(approver, "commission")
    answer = {
        "event_id": f"${uuid.uuid4().hex}",
        "room_id": commission,
        "sender": approver.user_id,
        "type": "m.reaction",
        "origin_server_ts": int(datetime.now(UTC).timestamp() * 1000),
        "content": {
            "m.relates_to": {
                "rel_type": "m.annotation",
                "event_id": card["event_id"],
                "key": "✅ Да",
            },
        },
    }
    txn = f"t-{uuid.uuid4().hex}"
    assert await put_transaction(deployment, txn, {"events": [answer]}) == (200, {})
    await wait_for(
        lambda: _processed(callback_bridge, answer["event_id"]), what="the answer processed"
    )
    _, view = await erp.get(f"/api/v1/procurements/{cast.procurement_id}/approvals/A-room")
    assert view["state"] == "in_progress"
    assert [s["status"] for s in view["steps"]] == ["waiting"]
    # The same click in the card's own room decides.
    await approver.react(approval_room, card["event_id"], "✅ Да")

    async def approved() -> bool:
        _, view = await erp.get(f"/api/v1/procurements/{cast.procurement_id}/approvals/A-room")
        return bool(view["state"] == "approved")

    await wait_for(approved, what="the approval decided by the click in its room")


async def _processed(core: BridgeCore, event_id: str) -> bool:
    return await core.inbox.status_of(event_id) == "done"


# --- what the homeserver lost in a restart is found -----------------------------------


async def test_an_event_the_homeserver_lost_in_a_restart_is_found_and_answered(
    synapse: LocalSynapse,
    deployment: Deployment,
    database_url: str,
    tmp_path: Path,
    erp: ERP,
    user_factory: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Synapse keeps what it is about to push in memory and loses it in a restart
    # (synapse#11637). Here its stored transaction for the bridge is gone after a restart, so
    # the person's request is on the homeserver and is never pushed.
    monkeypatch.setattr(catchup, "SETTLE_MS", 0)
    config = deployment.write_config(tmp_path / "config.yaml", database_url)
    first = BridgeCore(config)
    await first.start()
    try:
        cast, org = await _offers_with_org_chat(erp, user_factory)
    finally:
        await first.stop()
    asked = await cast.manager.send_text(org, "помощь")
    homeserver_db = synapse.directory / "homeserver.db"
    await wait_for(
        lambda: asyncio.to_thread(_pushes_waiting, homeserver_db, asked),
        what="Synapse to hold the request for the bridge",
    )
    synapse.stop()
    try:
        await asyncio.to_thread(_lose_pushes, homeserver_db)
    finally:
        await synapse.start()
    second = BridgeCore(config)
    await second.start()
    try:
        await cast.manager.wait_for_event(org, reply_to(asked), timeout=30)
        assert (
            await second.db.fetchval("SELECT COUNT(*) FROM matrix_event WHERE event_id=$1", asked)
            == 1
        )
    finally:
        await second.stop()


def _pushes_waiting(homeserver_db: Path, event_id: str) -> bool:
    with closing(sqlite3.connect(homeserver_db)) as db:
        rows = db.execute("SELECT event_ids FROM application_services_txns").fetchall()
    return any(event_id in row[0] for row in rows)


def _lose_pushes(homeserver_db: Path) -> None:
    with closing(sqlite3.connect(homeserver_db)) as db, db:
        db.execute("DELETE FROM application_services_txns")
        db.execute("UPDATE application_services_state SET state='up'")
