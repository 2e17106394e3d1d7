"""Commission votes: the card and the native poll, answers from real clients, the result out."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bridge.core import BridgeCore
from bridge.demo.seed import seed_vote

from ..bridge_process import BridgeProcess
from ..cast import Cast, make_cast
from ..conftest import Deployment, StartBridge
from ..erp import ERP
from ..js_sdk import assert_element_reads_polls
from ..matrix_user import Event, MatrixUser
from ..receiver import Receiver
from ..waiting import wait_for
from .test_transactions import put_transaction

BOT = "@procbot:localhost"
POLL_START = "org.matrix.msc3381.poll.start"
POLL_END = "org.matrix.msc3381.poll.end"
RESPONSE = "org.matrix.msc3381.poll.response"


def vote_request(cast: Cast, vote_id: str, **overrides: Any) -> dict[str, Any]:
    closes = datetime.now(UTC) + timedelta(hours=1)
    return seed_vote(cast.procurement_id, vote_id, closes) | overrides


def from_bot(kind: str) -> Any:
    return lambda e: e["type"] == kind and e["sender"] == BOT


def answer(poll_id: str, option: str) -> dict[str, Any]:
    return {
        "org.matrix.msc3381.poll.response": {"answers": [option]},
        "m.relates_to": {"rel_type": "m.reference", "event_id": poll_id},
    }


async def commission_room(cast: Cast) -> str:
    """Everyone of the commission (and the manager) joins the commission chat."""
    room_id = ""
    for person in [cast.manager, *cast.commission]:
        room_id = await wait_for(
            lambda p=person: p.joined_key("commission"), what="commission chat"
        )
    return room_id


@pytest.fixture
async def voting_bridge(bridge_with: StartBridge, receiver: Receiver) -> BridgeCore:
    return await bridge_with(callbacks__url=receiver.url)


async def test_ten_members_vote_and_the_result_goes_back(
    voting_bridge: BridgeCore, erp: ERP, receiver: Receiver, user_factory: Any
) -> None:
    cast = await make_cast(user_factory, suppliers=1, commission=10)
    await erp.upsert(cast.snapshot("commission"))
    room_id = await commission_room(cast)
    manager = cast.manager
    status, answer_ = await erp.send("vote.requested", vote_request(cast, "V-174"))
    assert status == 202, answer_

    card = await manager.wait_for_event(room_id, is_card)
    assert "Поставщик: ООО «ТоргПрофи»" in card["content"]["body"]
    assert "48\u00a0801,24\u00a0₽" in card["content"]["body"]
    assert "58\u00a0561,49\u00a0₽" in card["content"]["body"]
    assert "Срок поставки: 2\u00a0дня" in card["content"]["body"]
    assert "Проголосовало 0 из 10" in card["content"]["body"]
    poll = await manager.wait_for_event(room_id, from_bot(POLL_START))
    assert_element_reads_polls([poll])

    async def pinned() -> bool:
        state = await manager.state_content(room_id, "m.room.pinned_events")
        return poll["event_id"] in state.get("pinned", [])

    await wait_for(pinned, what="the poll pinned")

    # A non-member of the vote answers: ignored. One voter changes their mind.
    await manager.send_event(room_id, RESPONSE, answer(poll["event_id"], "for"))
    choices = ["for"] * 6 + ["against"] * 3 + ["abstain"]
    await cast.commission[0].send_event(room_id, RESPONSE, answer(poll["event_id"], "against"))
    for done, (member, choice) in enumerate(zip(cast.commission, choices, strict=True), 1):
        await member.send_event(room_id, RESPONSE, answer(poll["event_id"], choice))
        if done < 10:
            await wait_for(
                lambda d=done: _shows(
                    manager, room_id, card["event_id"], f"Проголосовало {d} из 10"
                ),
                what=f"the card to show {done} of 10",
            )

    end = await manager.wait_for_event(room_id, from_bot(POLL_END))
    assert end["content"]["m.relates_to"]["event_id"] == poll["event_id"]
    assert_element_reads_polls([poll, end])
    await wait_for(lambda: len(receiver.delivered()) >= 1, what="the vote.completed callback")
    (callback,) = receiver.delivered()
    assert callback.body["type"] == "vote.completed"
    data = callback.body["data"]
    assert counts(data) == {"for": 6, "against": 3, "abstain": 1}  # the hand count
    assert data["tally"]["quorum_reached"] is True
    assert data["tally"]["outcome"] == "for"
    assert data["closed_by"] == "all_voted"
    await wait_for(
        lambda: _shows(manager, room_id, card["event_id"], "Итог"), what="the result on the card"
    )
    state = await manager.state_content(room_id, "m.room.pinned_events")
    assert poll["event_id"] not in state.get("pinned", [])

    status, view = await erp.get(f"/api/v1/procurements/{cast.procurement_id}/votes/V-174")
    assert status == 200
    ignored = [b for b in view["ballots"] if not b["counted"]]
    reasons = {(b["user"], b["ignored"]) for b in ignored}
    assert (manager.user_id, "not_a_voter") in reasons
    assert (cast.commission[0].user_id, "superseded") in reasons
    # A late answer is kept but never counted; the callback is not sent again.
    await cast.commission[1].send_event(room_id, RESPONSE, answer(poll["event_id"], "abstain"))

    async def late_recorded() -> bool:
        _, later = await erp.get(f"/api/v1/procurements/{cast.procurement_id}/votes/V-174")
        return any(b.get("ignored") == "after_close" for b in later["ballots"])

    await wait_for(late_recorded, what="the late answer recorded as after_close")
    assert len(receiver.delivered()) == 1


async def _shows(user: MatrixUser, room_id: str, card_id: str, text: str) -> bool:
    await user.sync()
    return text in user.shown(room_id, card_id)


async def test_vote_closes_at_its_deadline_and_the_command_lists_who_is_missing(
    voting_bridge: BridgeCore, erp: ERP, receiver: Receiver, user_factory: Any
) -> None:
    cast = await make_cast(user_factory, suppliers=1, commission=3)
    await erp.upsert(cast.snapshot("commission"))
    room_id = await commission_room(cast)
    closes = datetime.now(UTC) + timedelta(seconds=6)
    request = vote_request(cast, "V-2", quorum=2, closes_at=closes.isoformat())
    assert (await erp.send("vote.requested", request))[0] == 202
    poll = await cast.manager.wait_for_event(room_id, from_bot(POLL_START))
    await cast.commission[0].send_event(room_id, RESPONSE, answer(poll["event_id"], "for"))
    asked = await cast.commission[1].send_text(room_id, "голосование")
    reply = await cast.manager.wait_for_event(
        room_id,
        lambda e: (
            e["sender"] == BOT
            and e["content"].get("m.relates_to", {}).get("m.in_reply_to", {}).get("event_id")
            == asked
        ),
    )
    assert "Проголосовало 1 из 3" in reply["content"]["body"]
    assert "Ещё не ответили" in reply["content"]["body"]
    await cast.manager.wait_for_event(room_id, from_bot(POLL_END), timeout=30)
    await wait_for(lambda: receiver.delivered(), what="the callback")
    data = receiver.delivered()[0].body["data"]
    assert data["tally"]["quorum_reached"] is False
    assert data["closed_by"] == "deadline"
    assert counts(data) == {"for": 1, "against": 0, "abstain": 0}


async def test_vote_in_an_archived_room_is_refused(
    voting_bridge: BridgeCore, erp: ERP, user_factory: Any
) -> None:
    cast = await make_cast(user_factory, suppliers=1, commission=2)
    await erp.upsert(cast.snapshot("commission"))
    await commission_room(cast)
    await erp.upsert(cast.snapshot("contract"))
    status, error = await erp.send("vote.requested", vote_request(cast, "V-late"))
    assert status == 409
    assert error["errcode"] == "ORG_PROCUREMENT_ROOM_ARCHIVED"
    assert "archived" in error["error"]
    assert await voting_bridge.votes.get(cast.procurement_id, "V-late") is None


async def test_bridge_killed_mid_vote_loses_no_answer_and_doubles_nothing(
    synapse: Any,
    deployment: Deployment,
    database_url: str,
    tmp_path: Path,
    erp: ERP,
    user_factory: Any,
) -> None:
    receiver = Receiver(deployment.callback_secret)  # down until the end
    config = deployment.write_config(
        tmp_path / "config.yaml", database_url, callbacks__url=receiver.url
    )
    bridge = BridgeProcess(Path(config.path), deployment.bridge_url)
    await bridge.start()
    try:
        cast = await make_cast(user_factory, suppliers=1, commission=6)
        await erp.upsert(cast.snapshot("commission"))
        room_id = await commission_room(cast)
        assert (await erp.send("vote.requested", vote_request(cast, "V-3", quorum=4)))[0] == 202
        poll = await cast.manager.wait_for_event(room_id, from_bot(POLL_START))
        for member in cast.commission[:3]:
            await member.send_event(room_id, RESPONSE, answer(poll["event_id"], "for"))
        bridge.kill()
        for member in cast.commission[3:]:
            await member.send_event(room_id, RESPONSE, answer(poll["event_id"], "against"))
        await bridge.start()
        await cast.manager.wait_for_event(room_id, from_bot(POLL_END), timeout=60)
        await receiver.start()  # the procurement system comes back
        await wait_for(lambda: receiver.delivered(), timeout=60, what="the callback")
        data = receiver.delivered()[0].body["data"]
        assert counts(data) == {"for": 3, "against": 3, "abstain": 0}
        await cast.manager.sync()
        events = cast.manager.timeline[room_id]
        assert len([e for e in events if from_bot(POLL_START)(e)]) == 1
        assert len([e for e in events if from_bot(POLL_END)(e)]) == 1
        assert len([e for e in events if is_card(e)]) == 1
        _, view = await erp.get(f"/api/v1/procurements/{cast.procurement_id}/votes/V-3")
        assert len([b for b in view["ballots"] if b["counted"]]) == 6
        assert len({r.webhook_id for r in receiver.requests}) == 1
    finally:
        await receiver.stop()
        assert bridge.terminate() == 0, bridge.log()


def is_card(event: Event) -> bool:
    """The voting card itself (not an edit of it, not a reply)."""
    content = event.get("content", {})
    return (
        event["sender"] == BOT
        and event["type"] == "m.room.message"
        and "Утвердить спецификацию" in content.get("body", "")
        and "m.relates_to" not in content
    )


def counts(data: dict[str, Any]) -> dict[str, int]:
    return {option["id"]: option["count"] for option in data["tally"]["options"]}


async def test_answers_to_a_poll_sent_just_before_a_crash_count(
    voting_bridge: BridgeCore, deployment: Deployment, erp: ERP, user_factory: Any
) -> None:
    """The bridge sent the poll and was killed before recording its event id; the commission
    answered meanwhile. The homeserver pushes the poll's echo and the answers together after
    the restart: the echo tells which poll it is, and every answer counts."""
    cast = await make_cast(user_factory, suppliers=1, commission=3)
    await erp.upsert(cast.snapshot("commission"))
    room_id = await commission_room(cast)
    status, answer_ = await erp.send("vote.requested", vote_request(cast, "V-echo", quorum=2))
    assert status == 202, answer_
    poll = await cast.manager.wait_for_event(room_id, from_bot(POLL_START))
    await voting_bridge.db.execute(
        "UPDATE matrix_outbox SET event_id=NULL WHERE event_id=$1", poll["event_id"]
    )
    now = int(time.time() * 1000)
    answers = [
        {
            "event_id": f"${uuid.uuid4().hex}",
            "room_id": room_id,
            "sender": member.user_id,
            "type": RESPONSE,
            "origin_server_ts": now,
            "content": answer(poll["event_id"], "for"),
        }
        for member in cast.commission
    ]
    echo = {**poll, "room_id": room_id}
    transaction = {"events": [echo, *answers]}
    assert await put_transaction(deployment, f"t-{uuid.uuid4().hex}", transaction) == (200, {})

    async def counted() -> int | None:
        _, view = await erp.get(f"/api/v1/procurements/{cast.procurement_id}/votes/V-echo")
        done = sum(1 for ballot in view["ballots"] if ballot["counted"])
        return done if done == len(answers) else None

    await wait_for(counted, what="every answer counted")
