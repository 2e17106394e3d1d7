"""Provisioning converges through bridge and homeserver restarts, never doubling a room, with
rooms made side by side and access taken away before any is given."""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from mautrix.api import HTTPAPI, Method
from mautrix.api import Path as ApiPath
from mautrix.client import ClientAPI

from bridge.config import Config
from bridge.core import BridgeCore
from bridge.localsynapse import LocalSynapse
from bridge.matrix.reconciler import CREATION_ID

from ..bridge_process import BridgeProcess
from ..cast import Cast, Supplier, make_cast
from ..conftest import Deployment, StartBridge
from ..erp import ERP
from ..matrix_user import MatrixUser
from ..waiting import wait_for

SUPPLIERS = 8


def planned_for_manager(cast: Cast) -> int:
    # space, category:suppliers, org, and per supplier its room
    return 3 + len(cast.suppliers)


async def invited_rooms(user: MatrixUser) -> int:
    await user.sync()
    return len(user.invites) + len(user.joined)


async def assert_converged_without_duplicates(cast: Cast) -> None:
    manager = cast.manager
    expected = planned_for_manager(cast)
    await manager.accept_invites(expected, timeout=90)
    rooms = await wait_for(
        lambda: _keys_when(manager, expected), timeout=60, what="every room in place"
    )
    # One room per key: a duplicate would be a second invite for the same key.
    assert len(rooms) == expected
    await manager.sync()
    assert len(manager.joined) == expected, "a room was created twice"
    for supplier in cast.suppliers:
        member = supplier.members[0]
        await member.accept_invites(2)
        assert set(await member.rooms_by_key()) == {
            f"supplier:{supplier.id}",
            f"supplier-space:{supplier.id}",
        }


async def _keys_when(user: MatrixUser, count: int) -> dict[str, str] | None:
    await user.accept_invites(0)
    keys = await user.rooms_by_key()
    return keys if len(keys) >= count else None


async def test_bridge_restart_during_provisioning(
    synapse: LocalSynapse, config: Config, erp: ERP, user_factory: Any
) -> None:
    cast = await make_cast(user_factory, suppliers=SUPPLIERS, commission=0)
    core = BridgeCore(config)
    await core.start()
    await erp.upsert(cast.snapshot("offers"))
    await wait_for(lambda: _at_least(cast.manager, 3), timeout=30, what="provisioning under way")
    await core.stop()
    core = BridgeCore(config)
    await core.start()
    try:
        await assert_converged_without_duplicates(cast)
    finally:
        await core.stop()


async def test_bridge_killed_during_provisioning(
    synapse: LocalSynapse, deployment: Deployment, config: Config, erp: ERP, user_factory: Any
) -> None:
    cast = await make_cast(user_factory, suppliers=SUPPLIERS, commission=0)
    bridge = BridgeProcess(Path(config.path), deployment.bridge_url)
    await bridge.start()
    try:
        await erp.upsert(cast.snapshot("offers"))
        await wait_for(lambda: _at_least(cast.manager, 2), timeout=30, what="provisioning")
        bridge.kill()
        await bridge.start()
        await assert_converged_without_duplicates(cast)
    finally:
        assert bridge.terminate() == 0, bridge.log()


async def test_homeserver_restart_during_provisioning(
    synapse: LocalSynapse, bridge: BridgeCore, erp: ERP, user_factory: Any
) -> None:
    cast = await make_cast(user_factory, suppliers=SUPPLIERS, commission=0)
    await erp.upsert(cast.snapshot("offers"))
    await wait_for(lambda: _at_least(cast.manager, 2), timeout=30, what="provisioning under way")
    await synapse.restart()
    await assert_converged_without_duplicates(cast)


async def _at_least(user: MatrixUser, count: int) -> bool:
    return await invited_rooms(user) >= count


# --- side by side --------------------------------------------------------------------------

BOUND = 3


class Watched:
    """The reconciler's homeserver API, counting its requests under way and logging when each
    starts and ends."""

    def __init__(self, api: HTTPAPI) -> None:
        self.api = api
        self.under_way: Counter[str] = Counter()
        self.most: Counter[str] = Counter()  # the most under way at once, by kind and "all"
        self.log: list[tuple[str, str]] = []  # ("start" | "end", kind)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.api, name)

    async def request(self, method: Any, path: Any, *args: Any, **kwargs: Any) -> Any:
        kind = _kind(str(path))
        for counted in (kind, "all"):
            self.under_way[counted] += 1
            self.most[counted] = max(self.most[counted], self.under_way[counted])
        self.log.append(("start", kind))
        try:
            return await self.api.request(method, path, *args, **kwargs)
        finally:
            for counted in (kind, "all"):
                self.under_way[counted] -= 1
            self.log.append(("end", kind))

    def reset(self) -> None:
        self.most.clear()
        self.log.clear()


def _kind(path: str) -> str:
    for kind in ("createRoom", "invite", "kick"):
        if path.endswith(kind):
            return kind
    return "other"


def watch(core: BridgeCore) -> Watched:
    reconciler = core.reconciler
    watched = Watched(reconciler.client.api)
    reconciler.client = ClientAPI(mxid=reconciler.client.mxid, api=watched)  # type: ignore[arg-type]
    return watched


async def test_rooms_are_made_side_by_side_within_the_bound_and_access_goes_first(
    synapse: LocalSynapse, bridge_with: StartBridge, erp: ERP, user_factory: Any
) -> None:
    core = await bridge_with(bridge__provision_concurrency=BOUND)
    watched = watch(core)
    cast = await make_cast(user_factory, suppliers=SUPPLIERS, commission=0)
    await erp.upsert(cast.snapshot("offers"))

    # The space, its category, the organisation chat, and a room and a space per supplier: the
    # spaces with no parent all at once, each supplier room once its space is there.
    rooms = 3 + 2 * SUPPLIERS
    await wait_for(
        lambda: watched.log.count(("end", "createRoom")) >= rooms, timeout=90, what="every room"
    )
    await cast.manager.accept_invites(planned_for_manager(cast), timeout=60)
    assert watched.log.count(("start", "createRoom")) == rooms
    assert 1 < watched.most["createRoom"] <= BOUND
    assert watched.most["all"] <= BOUND

    # One snapshot: a member moves to another supplier, another supplier loses its member,
    # and two suppliers arrive.
    first, second, third = cast.suppliers[:3]
    mover = first.members[0]
    await mover.accept_invites(2)
    second.members.append(first.members.pop())
    third.members.clear()
    late = [
        Supplier(
            f"late{i}-{uuid.uuid4().hex[:6]}", "ООО «Арматура+»", [await user_factory("late")]
        )
        for i in range(2)
    ]
    cast.suppliers.extend(late)
    watched.reset()
    await erp.upsert(cast.snapshot("offers"))

    await wait_for(lambda: mover.joined_key(f"supplier:{second.id}"), what="the mover moved")
    for supplier in late:
        member = supplier.members[0]
        await wait_for(lambda m=member, s=supplier: m.joined_key(f"supplier:{s.id}"), what="new")
    # Out of the first supplier's room and space, and the third's member out of theirs: all
    # of it through before the first invite or room of the pass is sent, however they overlap.
    kicks = [i for i, entry in enumerate(watched.log) if entry == ("end", "kick")]
    grants = [
        i
        for i, (edge, kind) in enumerate(watched.log)
        if edge == "start" and kind in ("invite", "createRoom")
    ]
    assert len(kicks) == 4
    assert grants
    assert max(kicks) < min(grants)
    assert watched.most["kick"] > 1
    assert watched.most["all"] <= BOUND
    assert not await mover.joined_key(f"supplier:{first.id}")


# --- a creation whose answer was lost ------------------------------------------------------


async def test_a_creation_whose_answer_was_lost_is_bound_once_the_bot_is_in_it(
    bridge: BridgeCore,
) -> None:
    # The process that asked for the room was killed before the answer came: the room is
    # found by the creation id in its m.room.create, and bound once the bot has joined it
    # (before that, whatever is sent to it is refused). A room someone else makes with the
    # same id is not taken for it.
    creation_id = uuid.uuid4().hex
    await bridge.db.execute(
        "INSERT INTO managed_room (procurement_id, room_key, is_space, creation_id, "
        "create_tried) VALUES ('P-lost', 'org', false, $1, true)",
        creation_id,
    )
    assert bridge.client is not None
    made = await bridge.client.api.request(
        Method.POST,
        ApiPath.v3.createRoom,
        {"creation_content": {CREATION_ID: creation_id}, "preset": "private_chat"},
    )

    async def bound() -> str | None:
        room_id: str | None = await bridge.db.fetchval(
            "SELECT room_id FROM managed_room WHERE creation_id=$1", creation_id
        )
        return room_id

    assert await wait_for(bound, what="the room bound to its creation") == made["room_id"]
    state = (await bridge.store.rooms.state_of([made["room_id"]]))[made["room_id"]]
    assert ("m.room.create", "") in state
