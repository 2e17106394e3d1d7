"""Reminders before a deadline: once per offset, to those who have not answered only, with
buttons that answer; and a notice when a vote ends by its deadline without quorum."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bridge.core import BridgeCore
from bridge.demo.seed import seed_vote
from bridge.domain.answers import say
from bridge.domain.locale import Locale

from ..cast import make_cast
from ..conftest import StartBridge
from ..erp import ERP
from ..matrix_user import Event, MatrixUser
from ..receiver import Receiver
from ..talk import BOT, body, click, open_dm, rooms_of
from ..waiting import wait_for
from .test_approvals import approval_request, open_approval

QUESTION = "Утвердить спецификацию 174/741-12.21-002?"
LATE = "Утвердить график поставки?"
TITLE = "Торгово-коммерческий анализ (ТКА) № 234/01-02"


def reminders_in(user: MatrixUser, room_id: str, question: str) -> list[Event]:
    return [
        e
        for e in user.timeline.get(room_id, [])
        if e["sender"] == BOT
        and e["type"] == "m.room.message"
        and "Напоминание" in e["content"].get("body", "")
        and question in e["content"].get("body", "")
    ]


async def reminded(user: MatrixUser, room_id: str, question: str, count: int) -> list[Event]:
    async def enough() -> list[Event] | None:
        await user.sync()
        found = reminders_in(user, room_id, question)
        return found if len(found) >= count else None

    return await wait_for(enough, timeout=60, interval=0.2, what=f"{count} reminders")


async def test_reminders_once_per_offset_and_never_after_an_answer(
    bridge_with: StartBridge, erp: ERP, receiver: Receiver, user_factory: Any
) -> None:
    # Two reminder windows a quarter of a minute apart, opening soon after the vote starts.
    core: BridgeCore = await bridge_with(
        callbacks__url=receiver.url, reminders__before=["60s", "45s"]
    )
    cast = await make_cast(user_factory, suppliers=1, commission=2)
    quick, slow = cast.commission
    await erp.upsert(cast.snapshot("commission"))
    org = (await rooms_of(cast.manager, {"org", "commission"}))["org"]
    for member in cast.commission:
        await rooms_of(member, {"commission"})
    quick_dm, slow_dm = await open_dm(quick), await open_dm(slow)
    closes = datetime.now(UTC) + timedelta(seconds=75)
    vote = seed_vote(cast.procurement_id, "V-1", closes) | {"quorum": 2}
    assert (await erp.send("vote.requested", vote))[0] == 202

    # The first window: both are reminded; one answers with the reminder's button.
    (first,) = await reminded(quick, quick_dm, QUESTION, 1)
    assert "https://matrix.to/#/" in first["content"]["formatted_body"]
    taken = await click(quick, quick_dm, first, "За")
    assert body(taken) == say(Locale.RU, "ballot_taken", option="За")
    await reminded(slow, slow_dm, QUESTION, 1)

    # The second window reminds only the one who has not answered, once.
    await reminded(slow, slow_dm, QUESTION, 2)
    item = f"vote:{cast.procurement_id}:V-1"
    sent = await core.store.reminders.sent(item)
    assert sent == {(quick.user_id, 60), (slow.user_id, 60), (slow.user_id, 45)}
    await quick.sync()
    assert len(reminders_in(quick, quick_dm, QUESTION)) == 1

    # The last answer closes the vote; both ballots count, the button's as a poll answer.
    (_, second) = reminders_in(slow, slow_dm, QUESTION)
    await click(slow, slow_dm, second, "Против")
    await wait_for(lambda: _completed(receiver), what="vote.completed")
    (completed,) = _completed(receiver)
    ballots = {b["user"]: b["option"] for b in completed["ballots"] if b["counted"]}
    assert ballots == {quick.user_id: "for", slow.user_id: "against"}

    # A vote nobody answers ends by its deadline: the organisation chat hears of it.
    soon = datetime.now(UTC) + timedelta(seconds=3)
    late = seed_vote(cast.procurement_id, "V-2", soon) | {"quorum": 2, "question": LATE}
    assert (await erp.send("vote.requested", late))[0] == 202
    notice = say(Locale.RU, "overdue_vote", question=LATE)
    await cast.manager.wait_for_event(
        org, lambda e: e["sender"] == BOT and notice in e["content"].get("body", ""), timeout=30
    )
    await slow.sync()
    assert len(reminders_in(slow, slow_dm, LATE)) <= 1  # its one window, at most once


async def test_the_next_approver_is_reminded_in_the_same_window_and_a_miss_is_told_once(
    bridge_with: StartBridge, erp: ERP, receiver: Receiver, user_factory: Any
) -> None:
    # One window, opening soon after the route starts; nobody but the first decides.
    core: BridgeCore = await bridge_with(callbacks__url=receiver.url, reminders__before=["50s"])
    cast = await make_cast(user_factory, suppliers=1, commission=2)
    first, second = cast.commission
    first_dm, second_dm = await open_dm(first), await open_dm(second)
    deadline = datetime.now(UTC) + timedelta(seconds=60)
    request = approval_request(cast, "A-1", "sequential", [first, second])
    await open_approval(erp, cast, request | {"deadline": deadline.isoformat()})
    org = (await rooms_of(cast.manager, {"org"}))["org"]

    # The first approver is reminded and approves with the reminder's button; the route now
    # waits for the second, who is reminded in the same window (it was looked at again).
    (reminder,) = await reminded(first, first_dm, TITLE, 1)
    await click(first, first_dm, reminder, "✅ Да")
    await reminded(second, second_dm, TITLE, 1)
    sent = await core.store.reminders.sent(f"approval:{cast.procurement_id}:A-1")
    assert sent == {(first.user_id, 50), (second.user_id, 50)}

    # The deadline passes without the second decision: the organisation chat hears it once.
    notice = say(Locale.RU, "overdue_approval", title=TITLE)
    told = await cast.manager.wait_for_event(
        org, lambda e: e["sender"] == BOT and notice in e["content"].get("body", ""), timeout=90
    )
    approval = await core.store.approvals.get(cast.procurement_id, "A-1")
    assert approval is not None
    assert approval.overdue_noticed
    await cast.manager.sync()
    again = [e for e in cast.manager.timeline[org] if notice in e["content"].get("body", "")]
    assert [e["event_id"] for e in again] == [told["event_id"]]


def _completed(receiver: Receiver) -> list[dict[str, Any]]:
    return [r.body["data"] for r in receiver.delivered() if r.body["type"] == "vote.completed"]
