"""Provisioning converges through bridge and homeserver restarts, never doubling a room."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bridge.config import Config
from bridge.core import BridgeCore
from bridge.localsynapse import LocalSynapse

from ..bridge_process import BridgeProcess
from ..cast import Cast, make_cast
from ..conftest import Deployment
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
