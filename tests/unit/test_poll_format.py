"""The bridge's poll events, read back by matrix-js-sdk (the SDK inside Element, §4.5).

Needs Node and `npm install` in tests/js (scripts/test.sh does it).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from bridge.domain.events import (
    POLL_DISCLOSED,
    POLL_END,
    POLL_START,
    POLL_UNDISCLOSED,
    TEXT,
    parse_poll_response,
    poll_end_content,
    poll_start_content,
    vote_poll_content,
    vote_poll_end_content,
)
from bridge.domain.ids import EventId, UserId
from bridge.domain.vote import MAX_OPTIONS, VoteState, apply_answer, open_vote, parse_vote_request

from ..js_sdk import assert_element_reads_polls, parse_with_matrix_js_sdk

QUESTION = "Утвердить спецификацию 174/741-12.21-002?"
ANSWERS = (("for", "За"), ("against", "Против"), ("abstain", "Воздержался"))
POLL_ID = EventId("$poll-174:corp.example")
BOT = "@procbot:corp.example"
MEMBER = "@petrov:corp.example"
MSK = timezone(timedelta(hours=3))
COMMISSION = tuple(UserId(f"@member{i}:corp.example") for i in range(10))


def start_event(content: dict[str, Any], event_id: str = POLL_ID) -> dict[str, Any]:
    return {"type": POLL_START, "event_id": event_id, "sender": BOT, "content": content}


def response_event(event_type: str, answers: Any, poll_id: str = POLL_ID) -> dict[str, Any]:
    return {
        "type": event_type,
        "sender": MEMBER,
        "content": {
            "m.relates_to": {"rel_type": "m.reference", "event_id": poll_id},
            event_type: {"answers": answers},
        },
    }


def seed_vote(disclosed: bool) -> VoteState:
    request = parse_vote_request(
        {
            "procurement_id": "26908",
            "vote_id": "V-174",
            "question": QUESTION,
            "subject": {
                "kind": "specification",
                "number": "174/741-12.21-002",
                "supplier": "ООО «ТоргПрофи»",
                "delivery_term_days": 2,
                "delivery_date": "2022-05-12",
                "cost_without_vat": "48801.24",
                "cost_with_vat": "58561.49",
                "currency": "RUB",
            },
            "options": [{"id": i, "label": label} for i, label in ANSWERS],
            "voters": None,
            "quorum": 6,
            "closes_at": "2022-04-15T18:00:00+03:00",
            "disclosed": disclosed,
        }
    )
    return open_vote(request, COMMISSION)


def expected_start(disclosed: bool, answers: tuple[tuple[str, str], ...] = ANSWERS) -> dict:
    return {
        "kind": "start",
        "question": QUESTION,
        "pollKind": POLL_DISCLOSED if disclosed else POLL_UNDISCLOSED,
        "rawKind": POLL_DISCLOSED if disclosed else POLL_UNDISCLOSED,
        "maxSelections": 1,
        "answers": [{"id": i, "text": text} for i, text in answers],
    }


@pytest.mark.parametrize("disclosed", [False, True])
def test_poll_start_reads_back(disclosed: bool) -> None:
    content = poll_start_content(QUESTION, ANSWERS, disclosed, "fallback")
    [result] = assert_element_reads_polls([start_event(content)])
    assert result["viaMatrixEvent"] == expected_start(disclosed)
    assert {k: v for k, v in result.items() if k != "viaMatrixEvent"} == expected_start(disclosed)


@pytest.mark.parametrize("disclosed", [False, True])
def test_vote_poll_reads_back(disclosed: bool) -> None:
    """The content the bridge posts for the seed's vote, card fallback included."""
    state = seed_vote(disclosed)
    content = vote_poll_content(state)
    assert content[TEXT].startswith("Голосование")
    [result] = assert_element_reads_polls([start_event(content)])
    assert result["viaMatrixEvent"] == expected_start(disclosed)


def test_every_allowed_option_is_shown_and_no_more() -> None:
    """The vote contract's MAX_OPTIONS is what Element shows; the SDK drops the rest."""
    many = tuple((f"o{i}", f"Вариант {i}") for i in range(MAX_OPTIONS + 1))
    results = parse_with_matrix_js_sdk(
        [
            start_event(poll_start_content(QUESTION, many[:MAX_OPTIONS], False, "f"), "$a"),
            start_event(poll_start_content(QUESTION, many, False, "f"), "$b"),
        ]
    )
    assert results[0]["viaMatrixEvent"] == expected_start(False, many[:MAX_OPTIONS])
    assert results[1]["viaMatrixEvent"] == expected_start(False, many[:MAX_OPTIONS])


def test_poll_end_reads_back() -> None:
    start = start_event(vote_poll_content(seed_vote(False)))
    state = seed_vote(False)
    for i, member in enumerate(COMMISSION[:6]):
        state = apply_answer(state, member, ["for"], datetime(2022, 4, 14, 12, i, tzinfo=MSK))
    end_content = vote_poll_end_content(POLL_ID, state)
    end = {"type": POLL_END, "sender": BOT, "content": end_content}
    _, result = assert_element_reads_polls([start, end])
    assert result["kind"] == "end"
    assert result["pollEventId"] == POLL_ID
    assert result["text"] == end_content[TEXT]
    assert result["startFound"] is True
    assert result["senderMatchesStart"] is True


@pytest.mark.parametrize("event_type", ["org.matrix.msc3381.poll.response", "m.poll.response"])
def test_poll_response_names_an_answer(event_type: str) -> None:
    start = start_event(poll_start_content(QUESTION, ANSWERS, False, "fallback"))
    response = response_event(event_type, ["against"])
    _, result = assert_element_reads_polls([start, response])
    assert result == {
        "kind": "response",
        "pollEventId": POLL_ID,
        "answers": ["against"],
        "spoiled": False,
        "validatedAgainstStart": True,
        "viaMatrixEvent": {
            "kind": "response",
            "pollEventId": POLL_ID,
            "answers": ["against"],
            "spoiled": False,
        },
    }
    # The bridge reads the same answer the SDK does.
    assert parse_poll_response(response["content"]) == (POLL_ID, ("against",))


@pytest.mark.parametrize("answers", [["maybe"], [], "for", [1]])
def test_response_without_a_valid_answer_is_spoiled(answers: Any) -> None:
    """Element counts such a response as spoiled; the bridge records it as naming nothing."""
    start = start_event(poll_start_content(QUESTION, ANSWERS, False, "fallback"))
    response = response_event("m.poll.response", answers)
    _, result = parse_with_matrix_js_sdk([start, response])
    assert result["spoiled"] is True
    assert result["answers"] == []
    assert result["viaMatrixEvent"]["spoiled"] is True
    with pytest.raises(pytest.fail.Exception, match="names no answer"):
        assert_element_reads_polls([start, response])
    parsed = parse_poll_response(response["content"])
    assert parsed is not None
    assert parsed[0] == POLL_ID
    assert not set(parsed[1]) & {i for i, _ in ANSWERS}


def test_poll_without_answers_is_rejected() -> None:
    broken = poll_start_content(QUESTION, ANSWERS, False, "fallback")
    broken[POLL_START]["answers"] = []
    [result] = parse_with_matrix_js_sdk([start_event(broken)])
    assert result["kind"] == "error"
    assert result["errorName"] == "InvalidEventError"
    assert result["message"] == "No answers available"
    assert result["viaMatrixEvent"] is None
    with pytest.raises(pytest.fail.Exception, match="rejects"):
        assert_element_reads_polls([start_event(broken)])


@pytest.mark.parametrize(
    "content",
    [
        {},  # no poll block: the SDK inside Element throws a TypeError here
        {POLL_START: {"answers": [{"id": "for", TEXT: "За"}]}},  # no question
        {POLL_START: {"question": {TEXT: QUESTION}, "answers": [{TEXT: "За"}]}},  # no id
        {POLL_START: {"question": {}, "answers": [{"id": "for", TEXT: "За"}]}},  # no text
    ],
)
def test_malformed_poll_start_is_rejected(content: dict[str, Any]) -> None:
    [result] = parse_with_matrix_js_sdk([start_event(content)])
    assert result["kind"] == "error"
    assert result["viaMatrixEvent"] is None


def test_poll_end_needs_its_text() -> None:
    """A poll end without a textual fallback is no poll end to the SDK."""
    content = poll_end_content(POLL_ID, "Итоги")
    del content[TEXT]
    [result] = parse_with_matrix_js_sdk([{"type": POLL_END, "content": content}])
    assert result["kind"] == "error"
    assert result["message"] == "Missing textual representation for event"


def test_events_as_synapse_returns_them() -> None:
    """Integration tests pass `/rooms/{roomId}/event/{eventId}` JSON straight through."""
    room = "!procurement:localhost"
    common = {"room_id": room, "origin_server_ts": 1_650_000_000_000, "unsigned": {"age": 5}}
    events = [
        {
            **common,
            "type": POLL_START,
            "event_id": POLL_ID,
            "sender": BOT,
            "content": vote_poll_content(seed_vote(True)),
        },
        {**response_event("org.matrix.msc3381.poll.response", ["for"]), **common},
        {**common, "type": "m.room.message", "sender": MEMBER, "content": {"body": "ок"}},
        {
            **common,
            "type": POLL_END,
            "event_id": "$end",
            "sender": BOT,
            "content": poll_end_content(POLL_ID, "Голосование завершено"),
        },
    ]
    kinds = [r["kind"] for r in assert_element_reads_polls(events)]
    assert kinds == ["start", "response", "ignored", "end"]


def test_poll_end_from_someone_else_is_flagged() -> None:
    start = start_event(poll_start_content(QUESTION, ANSWERS, False, "fallback"))
    end = {"type": POLL_END, "sender": MEMBER, "content": poll_end_content(POLL_ID, "Итоги")}
    with pytest.raises(pytest.fail.Exception, match="poll's sender"):
        assert_element_reads_polls([start, end])
