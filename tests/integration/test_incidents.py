"""What room policy cannot stop — a redaction, a room shutdown — is recorded and alerted."""

from __future__ import annotations

import uuid
from typing import Any

from bridge import metrics
from bridge.core import BridgeCore

from ..cast import make_cast
from ..conftest import Deployment
from ..erp import ERP
from ..waiting import wait_for
from .test_transactions import put_transaction

BOT = "@procbot:localhost"


def incidents(kind: str) -> float:
    return metrics.REGISTRY.get_sample_value("bridge_incidents_total", {"kind": kind}) or 0.0


async def test_a_redaction_that_happens_anyway_keeps_the_original(
    bridge: BridgeCore, deployment: Deployment, erp: ERP, user_factory: Any
) -> None:
    cast = await make_cast(user_factory, suppliers=1, commission=0)
    await erp.upsert(cast.snapshot("offers"))
    supplier = cast.suppliers[0].members[0]
    room_id = await wait_for(
        lambda: supplier.joined_key(f"supplier:{cast.suppliers[0].id}"), what="supplier room"
    )
    said = await supplier.send_text(room_id, "Цена: 48 801,24 ₽ без НДС")
    await wait_for(lambda: bridge.inbox.get_event(said), what="the message on record")
    before = incidents("redaction")

    # No member can redact (power levels), so what reaches the bridge is what a homeserver
    # would push after a redaction forced through by other means.
    redaction = {
        "event_id": f"${uuid.uuid4().hex}",
        "room_id": room_id,
        "sender": "@admin:localhost",
        "type": "m.room.redaction",
        "redacts": said,
        "content": {"redacts": said, "reason": "cleanup"},
        "origin_server_ts": 1,
    }
    assert await put_transaction(deployment, f"t-{uuid.uuid4().hex}", {"events": [redaction]}) == (
        200,
        {},
    )
    alert = await supplier.wait_for_event(
        room_id,
        lambda e: e["sender"] == BOT and "Удалено сообщение" in e["content"].get("body", ""),
    )
    assert "@admin:localhost" in alert["content"]["body"]
    assert "Оригинал сохранён" in alert["content"]["body"]
    recorded = await bridge.rooms.incidents(room_id)
    assert [(i["kind"], i["target_event_id"]) for i in recorded] == [("redaction", said)]
    original = await bridge.inbox.get_event(said)
    assert original is not None
    assert original["content"]["body"] == "Цена: 48 801,24 ₽ без НДС"
    assert incidents("redaction") == before + 1


async def test_a_room_shut_down_by_the_server_admin_is_recorded_and_reported(
    bridge: BridgeCore, erp: ERP, user_factory: Any
) -> None:
    cast = await make_cast(user_factory, suppliers=1, commission=0)
    admin = await user_factory("admin", admin=True)
    await erp.upsert(cast.snapshot("offers"))
    manager = cast.manager
    org = await wait_for(lambda: manager.joined_key("org"), what="the organisation chat")
    supplier_room = await wait_for(
        lambda: manager.joined_key(f"supplier:{cast.suppliers[0].id}"), what="supplier room"
    )
    before = incidents("shutdown")
    await admin.request(
        "DELETE", f"/_synapse/admin/v2/rooms/{supplier_room}", {"block": False, "purge": False}
    )
    alert = await manager.wait_for_event(
        org,
        lambda e: (
            e["sender"] == BOT and "закрыт администратором сервера" in e["content"].get("body", "")
        ),
        timeout=30,
    )
    assert "ООО «ТоргПрофи»" in alert["content"]["body"]
    kinds = [i["kind"] for i in await bridge.rooms.incidents(supplier_room)]
    assert kinds == ["shutdown"]
    assert incidents("shutdown") == before + 1
