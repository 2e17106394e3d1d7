"""Approval routes decided in the room: sequential and parallel, with verified signatures."""

from __future__ import annotations

import base64
import hashlib
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from mautrix.errors import MatrixRequestError

from bridge.core import BridgeCore
from bridge.demo.pki import NOW, Party, authority, issue

from ..cast import Cast, make_cast
from ..conftest import StartBridge
from ..erp import ERP
from ..matrix_user import MatrixUser
from ..receiver import Receiver
from ..waiting import wait_for

BOT = "@procbot:localhost"
DOCUMENT = b"%PDF-1.7\n% TKA 234/01-02: trade-commercial analysis\n" + bytes(range(256))


@pytest.fixture(scope="module")
def pki() -> dict[str, Party]:
    root = authority("Тестовый УЦ")
    other_root = authority("Посторонний УЦ")
    return {
        "root": root,
        "approver": issue("Петренко Н.П.", root),
        "colleague": issue("Иванова М.А.", root),
        "expired": issue(
            "Петренко Н.П.",
            root,
            not_before=NOW - timedelta(days=400),
            not_after=NOW - timedelta(days=35),
        ),
        "untrusted": issue("Петренко Н.П.", other_root),
    }


@pytest.fixture
async def cast(user_factory: Any) -> Cast:
    # Approvers are the buyer's people: the commission's members here.
    return await make_cast(user_factory, suppliers=1, commission=3)


@pytest.fixture
async def approvals_bridge(
    bridge_with: StartBridge,
    tmp_path: Path,
    receiver: Receiver,
    pki: dict[str, Party],
    cast: Cast,
) -> BridgeCore:
    anchor = tmp_path / "root.pem"
    anchor.write_bytes(pki["root"].pem)
    signer = cast.commission[1].user_id
    return await bridge_with(
        callbacks__url=receiver.url,
        signatures__trust_anchors=[str(anchor)],
        signatures__identities={
            signer: [
                f"sha256:{pki['approver'].fingerprint}",
                f"sha256:{pki['expired'].fingerprint}",
                f"sha256:{pki['untrusted'].fingerprint}",
            ],
            cast.commission[0].user_id: [f"sha256:{pki['colleague'].fingerprint}"],
        },
    )


def approval_request(
    cast: Cast, approval_id: str, mode: str, approvers: list[MatrixUser], **extra: Any
) -> dict[str, Any]:
    return {
        "procurement_id": cast.procurement_id,
        "approval_id": approval_id,
        "initiator": cast.manager.user_id,
        "document": {
            "type": "Торгово-коммерческий анализ (ТКА)",
            "number": "234/01-02",
            "series": "01",
            "valid_until": "2022-12-31",
            "filename": "TKA_234-01-02.pdf",
            "content_base64": base64.b64encode(DOCUMENT).decode(),
            "sha256": hashlib.sha256(DOCUMENT).hexdigest(),
        },
        "mode": mode,
        "group": "Руководители верхнего уровня",
        "approvers": [a.user_id for a in approvers],
        "require_signature": False,
        "deadline": (NOW + timedelta(days=5)).isoformat(),
    } | extra


async def open_approval(erp: ERP, cast: Cast, request: dict[str, Any]) -> str:
    """The ERP asks; everyone of the route joins its room; returns the room id."""
    await erp.upsert(cast.snapshot("commission"))
    status, answer = await erp.send("approval.requested", request)
    assert status == 202, answer
    key = f"approval:{request['approval_id']}"
    room_id = ""
    for user in [cast.manager, *cast.commission]:
        if user.user_id in (request["approvers"] + [request["initiator"]]):
            room_id = await wait_for(lambda u=user: u.joined_key(key), what=f"{key} joined")
    return room_id


def bot_reply_to(event_id: str) -> Any:
    return lambda e: (
        e["sender"] == BOT
        and e["content"].get("m.relates_to", {}).get("m.in_reply_to", {}).get("event_id")
        == event_id
    )


async def say(user: MatrixUser, room_id: str, text: str) -> dict[str, Any]:
    """Writes in the room and returns the bot's reply."""
    asked = await user.send_text(room_id, text)
    return await user.wait_for_event(room_id, bot_reply_to(asked))


def card_now(user: MatrixUser, room_id: str) -> str:
    """The approval card as clients show it: its latest edit, else the original."""
    for event in user.timeline.get(room_id, []):
        content = event.get("content", {})
        if (
            event["sender"] == BOT
            and content.get("body", "").startswith("Согласование:")
            and "m.relates_to" not in content
        ):
            return user.shown(room_id, event["event_id"])
    return ""


async def card_shows(user: MatrixUser, room_id: str, text: str) -> bool:
    await user.sync()
    return text in card_now(user, room_id)


def callbacks_of(receiver: Receiver, kind: str) -> list[dict[str, Any]]:
    return [r.body["data"] for r in receiver.delivered() if r.body["type"] == kind]


async def test_sequential_route_of_three(
    approvals_bridge: BridgeCore, erp: ERP, receiver: Receiver, cast: Cast
) -> None:
    first, second, third = cast.commission
    request = approval_request(cast, "A-seq", "sequential", [first, second, third])
    room_id = await open_approval(erp, cast, request)
    document = await first.wait_for_event(
        room_id, lambda e: e["sender"] == BOT and e["content"].get("msgtype") == "m.file"
    )
    assert document["content"]["body"] == "TKA_234-01-02.pdf"
    await wait_for(lambda: card_shows(first, room_id, "Последовательное"), what="the card")
    assert "Руководители верхнего уровня" in card_now(first, room_id)

    # Out of turn: refused, nothing changes.
    reply = await say(third, room_id, "согласовать")
    assert "Не получилось" in reply["content"]["body"]
    await say_and_wait(first, room_id, "согласовать Замечаний нет", cast)
    await wait_for(lambda: len(callbacks_of(receiver, "approval.step_decided")) >= 1, what="step")
    await say_and_wait(second, room_id, "approve", cast)
    await say_and_wait(third, room_id, "согласовать", cast)
    await wait_for(lambda: callbacks_of(receiver, "approval.completed"), what="approval.completed")
    (completed,) = callbacks_of(receiver, "approval.completed")
    assert completed["outcome"] == "approved"
    steps = callbacks_of(receiver, "approval.step_decided")
    assert [s["approver"] for s in steps] == [first.user_id, second.user_id, third.user_id]
    assert steps[0]["comment"] == "Замечаний нет"
    assert all(s["decision"] == "approved" for s in steps)
    await wait_for(lambda: card_shows(first, room_id, "согласовано ✅"), what="the final card")

    # The route is over: its room becomes an archive, and a late decision is refused.
    async def archived() -> bool:
        levels = await first.state_event(room_id, "m.room.power_levels")
        return levels["events_default"] == 150

    await wait_for(archived, what="the approval room archived")
    _, view = await erp.get(f"/api/v1/procurements/{cast.procurement_id}/approvals/A-seq")
    assert view["state"] == "approved"
    assert [s["status"] for s in view["steps"]] == ["approved"] * 3


CONFIRM = "✅ Да"


async def say_and_wait(user: MatrixUser, room_id: str, text: str, cast: Cast) -> None:
    """A decision by command: the bot asks to confirm, nothing changes until the click; then
    the card changes."""
    await user.sync()
    before = card_now(user, room_id)
    asked = await say(user, room_id, text)
    assert "Подтвердите" in asked["content"]["body"], asked["content"]["body"]
    await user.sync()
    assert card_now(user, room_id) == before
    await user.react(room_id, asked["event_id"], CONFIRM)
    await wait_for(
        lambda: _changed(user, room_id, before), what=f"the card to change after {text!r}"
    )


async def _changed(user: MatrixUser, room_id: str, before: str) -> bool:
    await user.sync()
    return card_now(user, room_id) != before


async def test_parallel_route_rejected_and_late_decisions_refused(
    approvals_bridge: BridgeCore, erp: ERP, receiver: Receiver, cast: Cast
) -> None:
    first, second, third = cast.commission
    request = approval_request(cast, "A-par", "parallel", [first, second, third])
    room_id = await open_approval(erp, cast, request)
    await wait_for(lambda: card_shows(first, room_id, "Параллельное"), what="the card")
    await say_and_wait(third, room_id, "согласовать", cast)
    reply = await say(second, room_id, "отклонить")
    assert "причин" in reply["content"]["body"]  # a rejection needs a reason
    await say_and_wait(second, room_id, "отклонить Цена выше рыночной на 12%", cast)
    await wait_for(lambda: callbacks_of(receiver, "approval.completed"), what="completed")
    (completed,) = callbacks_of(receiver, "approval.completed")
    assert completed["outcome"] == "rejected"
    assert completed["reason"] == "Цена выше рыночной на 12%"
    assert await late_decision_refused(first, room_id)
    assert len(callbacks_of(receiver, "approval.step_decided")) == 2


async def late_decision_refused(user: MatrixUser, room_id: str) -> bool:
    """A decision after the route ended: refused by the bot, or by the room once archived."""
    try:
        reply = await say(user, room_id, "согласовать")
    except MatrixRequestError:
        return True
    return "Не получилось" in reply["content"]["body"]


async def test_decision_after_cancel_is_refused(
    approvals_bridge: BridgeCore, erp: ERP, receiver: Receiver, cast: Cast
) -> None:
    first, second, _ = cast.commission
    room_id = await open_approval(
        erp, cast, approval_request(cast, "A-cancel", "parallel", [first, second])
    )
    await wait_for(lambda: card_shows(first, room_id, "Параллельное"), what="the card")
    status, _ = await erp.send(
        "approval.cancelled",
        {"procurement_id": cast.procurement_id, "approval_id": "A-cancel", "reason": "Отозвано"},
    )
    assert status == 202
    await wait_for(lambda: callbacks_of(receiver, "approval.completed"), what="completed")
    assert callbacks_of(receiver, "approval.completed")[0]["outcome"] == "cancelled"
    await wait_for(lambda: card_shows(first, room_id, "отменено"), what="the cancelled card")
    assert await late_decision_refused(first, room_id)
    assert callbacks_of(receiver, "approval.step_decided") == []


async def test_signatures_are_verified_and_refused_with_their_reason(
    approvals_bridge: BridgeCore,
    erp: ERP,
    receiver: Receiver,
    cast: Cast,
    pki: dict[str, Party],
) -> None:
    signer = cast.commission[1]
    request = approval_request(cast, "A-sign", "sequential", [signer], require_signature=True)
    room_id = await open_approval(erp, cast, request)
    await wait_for(lambda: card_shows(signer, room_id, "электронная подпись"), what="the card")

    # Approving without a signature is refused.
    reply = await say(signer, room_id, "согласовать")
    assert "подпис" in reply["content"]["body"].lower()

    corrupted = bytearray(pki["approver"].sign(DOCUMENT))
    corrupted[len(corrupted) // 2] ^= 0xFF
    cases = {
        "подпись сделана для другого файла": pki["approver"].sign(b"another file"),
        "срок действия сертификата": pki["expired"].sign(DOCUMENT),
        "цепочка доверия": pki["untrusted"].sign(DOCUMENT),
        "сертификат не принадлежит согласующему": pki["colleague"].sign(DOCUMENT),
        "формат файла подписи": b"not a signature at all",
        "не сходится": bytes(corrupted),
    }
    for expected, signature in cases.items():
        posted = await signer.send_file(room_id, "TKA_234-01-02.pdf.p7s", signature)
        reply = await signer.wait_for_event(room_id, bot_reply_to(posted), timeout=30)
        body = reply["content"]["body"]
        assert "Подпись не принята" in body, (expected, body)
        if expected != "не сходится":  # a flipped byte may break the file's structure instead
            assert expected in body, (expected, body)
        assert callbacks_of(receiver, "approval.step_decided") == []

    posted = await signer.send_file(
        room_id, "TKA_234-01-02.pdf.p7s", pki["approver"].sign(DOCUMENT)
    )
    reply = await signer.wait_for_event(room_id, bot_reply_to(posted), timeout=30)
    assert "Подпись проверена" in reply["content"]["body"]
    assert "Петренко Н.П." in reply["content"]["body"]
    await say_and_wait(signer, room_id, "согласовать", cast)
    await wait_for(lambda: callbacks_of(receiver, "approval.completed"), what="completed")
    (step,) = callbacks_of(receiver, "approval.step_decided")
    assert step["signature"]["provided"] is True
    assert step["signature"]["verified"] is True
    assert (
        step["signature"]["verification"]["signer_fingerprint_sha256"]
        == pki["approver"].fingerprint
    )
    assert callbacks_of(receiver, "approval.completed")[0]["outcome"] == "approved"


async def test_a_crash_between_a_decision_and_its_callback_leaves_one_outcome(
    approvals_bridge: BridgeCore,
    erp: ERP,
    receiver: Receiver,
    cast: Cast,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The process dies after the decision is taken and before its callback is queued: the
    decision is replayed from the inbox, and there is one outcome, one callback of each kind,
    and no «already decided» for the approver."""
    approver = cast.commission[0]
    request = approval_request(cast, "A-crash", "parallel", [approver])
    room_id = await open_approval(erp, cast, request)
    await wait_for(lambda: card_shows(approver, room_id, "Параллельное"), what="the card")
    enqueue = approvals_bridge.callbacks.enqueue
    crashed: list[str] = []

    async def crash_once(dedup_key: str, *args: Any, **kwargs: Any) -> int:
        if dedup_key.startswith("approval.completed") and not crashed:
            crashed.append(dedup_key)
            raise RuntimeError("the process dies here")
        return await enqueue(dedup_key, *args, **kwargs)

    monkeypatch.setattr(approvals_bridge.callbacks, "enqueue", crash_once)
    asked = await say(approver, room_id, "согласовать")
    await approver.react(room_id, asked["event_id"], CONFIRM)
    await wait_for(
        lambda: callbacks_of(receiver, "approval.completed"), timeout=60, what="the outcome"
    )
    await wait_for(lambda: card_shows(approver, room_id, "согласовано ✅"), what="the card")
    assert crashed
    assert [c["outcome"] for c in callbacks_of(receiver, "approval.completed")] == ["approved"]
    assert len(callbacks_of(receiver, "approval.step_decided")) == 1
    refusals = [
        e
        for e in approver.timeline.get(room_id, [])
        if e["sender"] == BOT and "Не получилось" in e["content"].get("body", "")
    ]
    assert refusals == []
    _, view = await erp.get(f"/api/v1/procurements/{cast.procurement_id}/approvals/A-crash")
    assert view["state"] == "approved"
    assert [s["status"] for s in view["steps"]] == ["approved"]
