"""Guided requests (заявки): asked field by field, checked, resumed after the bridge is killed,
sent to the procurement system exactly once, and its answer posted back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bridge.core import BridgeCore
from bridge.domain.answers import say
from bridge.domain.locale import Locale

from ..bridge_process import BridgeProcess
from ..cast import make_cast
from ..conftest import Deployment
from ..erp import ERP
from ..receiver import Receiver
from ..talk import ask, body, buttons_on, click, open_dm, press, rooms_of
from ..waiting import wait_for


def submitted(receiver: Receiver) -> list[dict[str, Any]]:
    return [r.body for r in receiver.delivered() if r.body["type"] == "request.submitted"]


async def test_a_request_survives_a_kill_and_is_sent_once(
    deployment: Deployment,
    database_url: str,
    tmp_path: Path,
    receiver: Receiver,
    erp: ERP,
    user_factory: Any,
) -> None:
    config = deployment.write_config(
        tmp_path / "config.yaml", database_url, callbacks__url=receiver.url
    )
    bridge = BridgeProcess(Path(config.path), deployment.bridge_url)
    await bridge.start()
    try:
        await _request(bridge, receiver, erp, user_factory)
    finally:
        assert bridge.terminate() == 0, bridge.log()


async def _request(bridge: BridgeProcess, receiver: Receiver, erp: ERP, user_factory: Any) -> None:
    cast = await make_cast(user_factory, suppliers=1, commission=0)
    await erp.upsert(cast.snapshot("offers"))
    (team,) = cast.team
    org = (await rooms_of(team, {"org"}))["org"]
    supplier = cast.suppliers[0].members[0]
    key = f"supplier:{cast.suppliers[0].id}"
    supplier_room = (await rooms_of(supplier, {key}))[key]

    # Not a supplier's to make.
    refused = await ask(supplier, supplier_room, "заявка")
    assert "недоступна" in body(refused)

    first = await ask(team, org, "заявка")
    assert "Что нужно закупить?" in body(first)
    assert "Вопрос 1 из 5" in body(first)
    second = await ask(team, org, "Арматура А500С, 12 мм")
    assert "Сколько?" in body(second)
    again = await ask(team, org, "двенадцать")
    assert say(Locale.RU, "invalid_number") in body(again)
    assert "Сколько?" in body(again)
    unit = await ask(team, org, "12,5")
    assert "В каких единицах?" in body(unit)
    assert (await buttons_on(team, org, unit["event_id"], 7))[:2] == ["1. шт", "2. т"]
    date = await click(team, org, unit, "2. т")
    assert "К какой дате нужно?" in body(date)
    # A click on another option of the question already answered changes nothing.
    await press(team, org, unit, "3. м")
    past = await ask(team, org, "01.01.2020")
    assert say(Locale.RU, "invalid_date") in body(past)

    # Killed mid-conversation: it goes on where it was.
    bridge.kill()
    await bridge.start()
    site = await ask(team, org, "15.03.2099")
    assert "Для какого объекта?" in body(site)
    summary = await ask(team, org, "Лахта Центр, корпус 2")
    assert "Проверьте заявку" in body(summary)
    for shown in ("Арматура А500С, 12 мм", "12,5", ": т", "15.03.2099", "Лахта Центр"):
        assert shown in body(summary), shown
    await buttons_on(team, org, summary["event_id"], 2)

    # Sent, and the bridge killed right after the click: one request, one id.
    await press(team, org, summary, "📤 Отправить")
    bridge.kill()
    await bridge.start()
    await wait_for(lambda: submitted(receiver), timeout=30, what="the request.submitted callback")
    sent = await team.wait_for_event(
        org, lambda e: say(Locale.RU, "request_sent") in e["content"].get("body", "")
    )
    assert sent["sender"] == "@procbot:localhost"
    # «Отменить» on the summary once it was sent: spent, nothing changes.
    await press(team, org, summary, "✖️ Отмена")
    await ask(team, org, "статус")
    requests = {r["data"]["request_id"] for r in submitted(receiver)}
    assert len(requests) == 1
    (request,) = {r["data"]["request_id"]: r["data"] for r in submitted(receiver)}.values()
    assert request["procurement_id"] == cast.procurement_id
    assert request["user"] == team.user_id
    assert request["fields"] == {
        "item": "Арматура А500С, 12 мм",
        "quantity": "12.5",
        "unit": "т",
        "needed_by": "2099-03-15",
        "object": "Лахта Центр, корпус 2",
    }

    # The procurement system answers; its number is posted where the request was made.
    request_id = request["request_id"]
    status, _ = await erp.send("request.accepted", {"request_id": request_id, "number": "З-1042"})
    assert status == 202
    posted = await team.wait_for_event(org, lambda e: "З-1042" in e["content"].get("body", ""))
    assert say(Locale.RU, "request_accepted", number="З-1042") in body(posted)
    status, error = await erp.send(
        "request.rejected", {"request_id": request_id, "reason": "Передумали"}
    )
    assert (status, error["errcode"]) == (409, "ORG_PROCUREMENT_REQUEST_ANSWERED")
    status, error = await erp.send("request.accepted", {"request_id": "req_x", "number": "1"})
    assert (status, error["errcode"]) == (409, "ORG_PROCUREMENT_REQUEST_UNKNOWN")


async def test_cancel_at_any_point_and_requests_from_a_direct_chat(
    bridge: BridgeCore, erp: ERP, user_factory: Any
) -> None:
    cast = await make_cast(user_factory, suppliers=1, commission=0)
    await erp.upsert(cast.snapshot("offers"))
    manager = cast.manager
    await rooms_of(manager, {"org"})
    dm = await open_dm(manager)
    await ask(manager, dm, "заявка")
    await ask(manager, dm, "Бетон В25")
    cancelled = await ask(manager, dm, "отмена")
    assert body(cancelled) == say(Locale.RU, "cancelled")
    # Over: the next message is ordinary chat again, and «отмена» has nothing to end.
    nothing = await ask(manager, dm, "отмена")
    assert body(nothing) == say(Locale.RU, "nothing_to_cancel")
    first = await ask(manager, dm, "заявка")
    cancelled = await click(manager, dm, first, "✖️ Отмена")
    assert body(cancelled) == say(Locale.RU, "cancelled")
