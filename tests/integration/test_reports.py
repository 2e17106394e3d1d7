"""The manager response report from what people wrote in real supplier chats: a wait answered
and one left open, as JSON, CSV and an HTML page; staff figures need their own scope."""

from __future__ import annotations

from typing import Any

import aiohttp

from bridge.core import BridgeCore

from ..cast import make_cast
from ..conftest import Deployment
from ..erp import ERP
from ..waiting import wait_for
from .test_documents import join

REPORT = "/api/v1/reports/response-times"


async def fetch(deployment: Deployment, query: str, token: str) -> tuple[int, str, str]:
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        aiohttp.ClientSession(headers=headers) as session,
        session.get(f"{deployment.bridge_url}{REPORT}{query}") as resp,
    ):
        return resp.status, resp.headers.get("Content-Type", ""), await resp.text()


async def test_waits_answered_and_open_per_supplier_chat(
    bridge: BridgeCore, erp: ERP, deployment: Deployment, user_factory: Any
) -> None:
    cast = await make_cast(user_factory, suppliers=2, commission=0)
    await erp.upsert(cast.snapshot("offers"))
    answered, waiting = cast.suppliers
    answered_room = await join(answered.members[0], f"supplier:{answered.id}")
    waiting_room = await join(waiting.members[0], f"supplier:{waiting.id}")
    await join(cast.manager, f"supplier:{answered.id}")
    await answered.members[0].send_text(answered_room, "Когда ждать решения?")
    await answered.members[0].send_text(answered_room, "И по срокам тоже")
    await cast.manager.send_text(answered_room, "Завтра до обеда")
    await waiting.members[0].send_text(waiting_room, "Получили ли вы наше КП?")

    async def reported() -> dict[str, Any] | None:
        status, found = await erp.get(f"{REPORT}?unanswered_after=1")
        assert status == 200, found
        rooms = {r["supplier_id"]: r for r in found["rooms"]}
        ready = answered.id in rooms and waiting.id in rooms and rooms[answered.id]["answered"]
        return found if ready and rooms[waiting.id]["unanswered"] else None

    found = await wait_for(reported, what="both chats in the report")
    rooms = {r["supplier_id"]: r for r in found["rooms"]}
    assert rooms[answered.id]["answered"] == 1  # two messages in a row are one wait
    assert rooms[answered.id]["manager"] == cast.manager.user_id
    assert rooms[answered.id]["median_s"] is not None
    assert rooms[waiting.id]["answered"] == 0
    assert [u["supplier_id"] for u in found["unanswered"]] == [waiting.id]

    status, kind, csv = await fetch(deployment, "?format=csv", deployment.api_token)
    assert status == 200
    assert kind.startswith("text/csv")
    assert csv.splitlines()[0].startswith("procurement,")
    status, kind, page = await fetch(deployment, "?format=html&lang=ru", deployment.api_token)
    assert status == 200
    assert kind.startswith("text/html")
    assert "<svg" in page
    assert answered.name in page

    status, _, refused = await fetch(deployment, "?from=tomorrow", deployment.api_token)
    assert status == 400
    assert "M_INVALID_PARAM" in refused
