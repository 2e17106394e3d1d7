"""Votes: the `vote.requested` contract, the counting rules and the reports."""

from __future__ import annotations

import contextlib
import copy
import json
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.domain.errors import InvalidInput, Refused
from bridge.domain.ids import UserId
from bridge.domain.vote import (
    Ballot,
    CloseReason,
    IgnoredReason,
    VoteState,
    apply_answer,
    close,
    due_to_close,
    open_vote,
    parse_vote_cancel,
    parse_vote_request,
    tally,
    vote_completed_payload,
    vote_view,
)

MSK = timezone(timedelta(hours=3))
CLOSES_AT = datetime(2022, 4, 15, 18, 0, tzinfo=MSK)
BEFORE = CLOSES_AT - timedelta(days=1)
COMMISSION = tuple(UserId(f"@member{i}:corp.example") for i in range(10))
OUTSIDER = UserId("@kirillov:corp.example")

# DESIGN §4.1, verbatim.
DESIGN_EXAMPLE = json.loads(
    """{"type": "vote.requested", "data": {
  "procurement_id": "26908", "vote_id": "V-174",
  "question": "Утвердить спецификацию 174/741-12.21-002?",
  "subject": {"kind": "specification", "number": "174/741-12.21-002",
              "supplier": "ООО «ТоргПрофи»", "delivery_term_days": 2,
              "delivery_date": "2022-05-12", "cost_without_vat": "48801.24",
              "cost_with_vat": "58561.49", "currency": "RUB"},
  "options": [{"id": "for", "label": "За"}, {"id": "against", "label": "Против"},
              {"id": "abstain", "label": "Воздержался"}],
  "voters": null, "quorum": 6, "closes_at": "2022-04-15T18:00:00+03:00",
  "disclosed": false}}"""
)


def example() -> dict[str, Any]:
    data: dict[str, Any] = copy.deepcopy(DESIGN_EXAMPLE["data"])
    return data


def started(**changes: Any) -> VoteState:
    data = example()
    data.update(changes)
    return open_vote(parse_vote_request(data), COMMISSION)


def invalid(data: object) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        parse_vote_request(data)
    return caught.value


# --- parsing ---------------------------------------------------------------------------


def test_design_example_parses() -> None:
    request = parse_vote_request(DESIGN_EXAMPLE["data"])
    assert request.procurement_id == "26908"
    assert request.vote_id == "V-174"
    assert [o.id for o in request.options] == ["for", "against", "abstain"]
    assert request.voters is None
    assert request.quorum == 6
    assert request.closes_at == CLOSES_AT
    assert request.disclosed is False
    subject = request.subject
    assert subject is not None
    assert subject.kind == "specification"
    assert subject.supplier == "ООО «ТоргПрофи»"
    assert subject.delivery_term_days == 2
    assert subject.delivery_date == date(2022, 5, 12)
    assert subject.cost_without_vat == Decimal("48801.24")
    assert subject.cost_with_vat == Decimal("58561.49")
    assert subject.currency == "RUB"
    assert subject.document is None
    assert request.option("against") is not None
    assert request.option("nope") is None


def test_minimal_request() -> None:
    data = example()
    del data["subject"], data["disclosed"]
    data["voters"] = ["@a:corp.example", "@b:corp.example"]
    data["quorum"] = 2
    request = parse_vote_request(data)
    assert request.subject is None
    assert request.disclosed is False
    assert request.voters == ("@a:corp.example", "@b:corp.example")


def test_subject_fields_are_optional_and_document_is_a_mention() -> None:
    data = example()
    data["subject"] = {"document": {"filename": "Spec_K987-02.02-001.pdf"}}
    subject = parse_vote_request(data).subject
    assert subject is not None
    assert subject.kind is None
    assert subject.cost_with_vat is None
    assert subject.currency == "RUB"
    assert subject.document is not None
    assert subject.document.info.filename == "Spec_K987-02.02-001.pdf"
    assert subject.document.content is None


def test_cancel() -> None:
    cancel = parse_vote_cancel({"procurement_id": "26908", "vote_id": "V-174", "reason": "Ошибка"})
    assert (cancel.vote_id, cancel.procurement_id, cancel.reason) == ("V-174", "26908", "Ошибка")
    bare = parse_vote_cancel({"vote_id": "V-174"})
    assert bare.procurement_id is None
    assert bare.reason is None
    with pytest.raises(InvalidInput) as caught:
        parse_vote_cancel({"reason": "x"})
    assert caught.value.path == "data.vote_id"


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"options": [{"id": "for", "label": "За"}]}, "data.options"),
        ({"options": []}, "data.options"),
        ({"options": None}, "data.options"),
        ({"options": "for"}, "data.options"),
        ({"options": [{"id": f"o{i}", "label": str(i)} for i in range(21)]}, "data.options"),
        (
            {"options": [{"id": "for", "label": "За"}, {"id": "for", "label": "Против"}]},
            "data.options[1].id",
        ),
        (
            {"options": [{"id": "for", "label": "За"}, {"id": "x", "label": "За"}]},
            "data.options[1].label",
        ),
        (
            {"options": [{"id": "for", "label": "За"}, {"id": "a b", "label": "Против"}]},
            "data.options[1].id",
        ),
        ({"options": [{"id": "for", "label": "За"}, {"id": "x"}]}, "data.options[1].label"),
        ({"options": [{"id": "for", "label": "За"}, "x"]}, "data.options[1]"),
        ({"quorum": 0}, "data.quorum"),
        ({"quorum": 2.5}, "data.quorum"),
        ({"quorum": True}, "data.quorum"),
        ({"quorum": None}, "data.quorum"),
        ({"voters": []}, "data.voters"),
        ({"voters": ["@a:corp.example", "@a:corp.example"]}, "data.voters[1]"),
        ({"voters": ["petrov"]}, "data.voters[0]"),
        ({"voters": ["@a:corp.example"], "quorum": 2}, "data.quorum"),
        ({"closes_at": "2022-04-15T18:00:00"}, "data.closes_at"),
        ({"closes_at": "2022-04-15"}, "data.closes_at"),
        ({"closes_at": "завтра"}, "data.closes_at"),
        ({"disclosed": "yes"}, "data.disclosed"),
        ({"question": ""}, "data.question"),
        ({"vote_id": "V/174"}, "data.vote_id"),
        ({"procurement_id": 26908}, "data.procurement_id"),
        ({"subject": []}, "data.subject"),
        ({"subject": {"cost_with_vat": 58561.49}}, "data.subject.cost_with_vat"),
        ({"subject": {"cost_without_vat": "48 801,24"}}, "data.subject.cost_without_vat"),
        ({"subject": {"currency": "rub"}}, "data.subject.currency"),
        ({"subject": {"delivery_term_days": -1}}, "data.subject.delivery_term_days"),
        ({"subject": {"delivery_date": "12.05.2022"}}, "data.subject.delivery_date"),
        (
            {"subject": {"document": {"url": "https://x.example/f"}}},
            "data.subject.document.filename",
        ),
    ],
)
def test_bad_request(change: dict[str, Any], path: str) -> None:
    data = example()
    data.update(change)
    assert invalid(data).path == path


def test_not_an_object() -> None:
    assert invalid([]).path == "data"
    with pytest.raises(InvalidInput) as caught:
        parse_vote_request("x", path="body.data")
    assert caught.value.path == "body.data"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


@given(json_values)
def test_parse_of_anything_raises_only_invalid_input(data: object) -> None:
    for parse in (parse_vote_request, parse_vote_cancel):
        with contextlib.suppress(InvalidInput):
            parse(data)


@given(
    st.sampled_from(sorted(example())),
    st.sampled_from(
        [
            "kind",
            "number",
            "supplier",
            "delivery_term_days",
            "delivery_date",
            "cost_with_vat",
            "cost_without_vat",
            "currency",
            "document",
        ]
    ),
    json_values,
)
def test_one_bad_field_raises_only_invalid_input(top: str, inner: str, value: object) -> None:
    data = example()
    data[top] = value
    with contextlib.suppress(InvalidInput):
        parse_vote_request(data)
    data = example()
    data["subject"][inner] = value
    with contextlib.suppress(InvalidInput):
        parse_vote_request(data)


# --- opening ---------------------------------------------------------------------------


def test_null_voters_are_the_commission() -> None:
    state = started()
    assert state.voters == COMMISSION
    assert state.is_open


def test_listed_voters_win_over_the_commission() -> None:
    state = started(voters=["@a:corp.example", "@b:corp.example"], quorum=1)
    assert state.voters == ("@a:corp.example", "@b:corp.example")


def test_commission_duplicates_count_once() -> None:
    request = parse_vote_request(example() | {"quorum": 1})
    state = open_vote(request, [COMMISSION[0], COMMISSION[0], COMMISSION[1]])
    assert state.voters == COMMISSION[:2]


def test_no_commission_is_refused() -> None:
    with pytest.raises(Refused) as caught:
        open_vote(parse_vote_request(example()), [])
    assert caught.value.errcode == "ORG_PROCUREMENT_VOTE_NO_VOTERS"


def test_unreachable_quorum_is_refused() -> None:
    with pytest.raises(Refused) as caught:
        open_vote(parse_vote_request(example()), COMMISSION[:5])
    assert caught.value.errcode == "ORG_PROCUREMENT_VOTE_QUORUM_UNREACHABLE"


# --- counting --------------------------------------------------------------------------


def at(minutes: int) -> datetime:
    return BEFORE + timedelta(minutes=minutes)


def test_seed_example_six_of_ten() -> None:
    state = started()
    for i in range(6):
        state = apply_answer(state, COMMISSION[i], ["for" if i < 5 else "against"], at(i))
    result = tally(state)
    assert [(c.option.id, c.count) for c in result.counts] == [
        ("for", 5),
        ("against", 1),
        ("abstain", 0),
    ]
    assert (result.turnout, result.voters, result.quorum) == (6, 10, 6)
    assert result.quorum_reached
    assert result.outcome == "for"
    assert due_to_close(state, at(10)) is None


def test_latest_answer_counts() -> None:
    state = started()
    state = apply_answer(state, COMMISSION[0], ["for"], at(1))
    state = apply_answer(state, COMMISSION[0], ["against"], at(2))
    assert [b.ignored for b in state.ballots] == [IgnoredReason.SUPERSEDED, None]
    assert tally(state).turnout == 1
    assert tally(state).counts[1].count == 1


def test_late_delivery_of_an_earlier_answer_does_not_override() -> None:
    state = started()
    state = apply_answer(state, COMMISSION[0], ["against"], at(2))
    state = apply_answer(state, COMMISSION[0], ["for"], at(1))
    assert [b.ignored for b in state.ballots] == [None, IgnoredReason.SUPERSEDED]
    assert state.ballots[0].option == "against"


def test_same_timestamp_later_arrival_wins() -> None:
    state = started()
    state = apply_answer(state, COMMISSION[0], ["for"], at(1))
    state = apply_answer(state, COMMISSION[0], ["against"], at(1))
    assert state.counted_ballots()[0].option == "against"


@pytest.mark.parametrize(
    ("user", "answers", "ts", "reason"),
    [
        (OUTSIDER, ["for"], at(1), IgnoredReason.NOT_A_VOTER),
        (COMMISSION[0], ["maybe"], at(1), IgnoredReason.UNKNOWN_OPTION),
        (COMMISSION[0], ["for", "maybe"], at(1), IgnoredReason.UNKNOWN_OPTION),
        (COMMISSION[0], [], at(1), IgnoredReason.UNKNOWN_OPTION),
        (COMMISSION[0], ["for"], CLOSES_AT, IgnoredReason.AFTER_CLOSE),
        (OUTSIDER, ["maybe"], CLOSES_AT, IgnoredReason.AFTER_CLOSE),
    ],
)
def test_ignored_answers_stay_visible(
    user: UserId, answers: list[str], ts: datetime, reason: IgnoredReason
) -> None:
    state = apply_answer(started(), COMMISSION[0], ["against"], at(0))
    after = apply_answer(state, user, answers, ts)
    assert after.ballots[-1] == Ballot(user, tuple(answers), ts, reason)
    assert not after.ballots[-1].counted
    assert after.ballots[-1].option is None
    assert tally(after) == tally(state)
    assert after.ballots[0].counted  # the earlier valid answer stands


def test_extra_answers_are_cut_to_max_selections() -> None:
    state = apply_answer(started(), COMMISSION[0], ["for", "against"], at(0))
    assert state.ballots[0].answers == ("for",)
    assert tally(state).counts[0].count == 1


def test_answers_after_close_are_ignored_even_if_stamped_earlier() -> None:
    state = close(started(), CloseReason.CANCELLED, at(5), cancel_reason="Ошибка в спецификации")
    state = apply_answer(state, COMMISSION[0], ["for"], at(1))
    assert state.ballots[0].ignored is IgnoredReason.AFTER_CLOSE
    assert tally(state).turnout == 0


def test_close_once() -> None:
    state = started()
    closed = close(state, CloseReason.ALL_VOTED, at(5))
    assert not closed.is_open
    assert (closed.closed_at, closed.close_reason, closed.cancel_reason) == (
        at(5),
        CloseReason.ALL_VOTED,
        None,
    )
    assert close(closed, CloseReason.DEADLINE, at(9)) is closed
    cancelled = close(state, CloseReason.CANCELLED, at(5), cancel_reason="Отозвано")
    assert cancelled.cancel_reason == "Отозвано"
    # A reason is kept only for a cancellation.
    assert close(state, CloseReason.DEADLINE, at(5), cancel_reason="x").cancel_reason is None


def test_due_to_close() -> None:
    state = started(voters=[str(u) for u in COMMISSION[:2]], quorum=1)
    assert due_to_close(state, at(0)) is None
    assert due_to_close(state, CLOSES_AT) is CloseReason.DEADLINE
    state = apply_answer(state, COMMISSION[0], ["for"], at(1))
    state = apply_answer(state, OUTSIDER, ["for"], at(1))
    assert due_to_close(state, at(2)) is None
    state = apply_answer(state, COMMISSION[1], ["abstain"], at(2))
    assert due_to_close(state, at(2)) is CloseReason.ALL_VOTED
    # Everyone answered in time: that is how it ended, even when noticed after the deadline.
    assert due_to_close(state, CLOSES_AT + timedelta(hours=1)) is CloseReason.ALL_VOTED
    assert due_to_close(close(state, CloseReason.ALL_VOTED, at(2)), at(3)) is None


def test_unknown_answer_does_not_make_everyone_voted() -> None:
    state = started(voters=["@a:corp.example"], quorum=1)
    state = apply_answer(state, UserId("@a:corp.example"), ["maybe"], at(1))
    assert due_to_close(state, at(2)) is None


def test_tie_and_no_quorum_have_no_outcome() -> None:
    state = started(quorum=2)
    state = apply_answer(state, COMMISSION[0], ["for"], at(0))
    assert not tally(state).quorum_reached
    assert tally(state).outcome is None
    state = apply_answer(state, COMMISSION[1], ["against"], at(1))
    assert tally(state).quorum_reached
    assert tally(state).outcome is None  # 1:1
    state = apply_answer(state, COMMISSION[2], ["against"], at(2))
    assert tally(state).outcome == "against"


# --- properties ------------------------------------------------------------------------

VOTERS = COMMISSION[:4]
USERS = (*VOTERS, OUTSIDER)
OPTION_IDS = ("for", "against", "abstain")


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[VoteState, list[tuple[str, Any]]]:
    quorum = draw(st.integers(1, len(VOTERS)))
    state = started(voters=[str(u) for u in VOTERS], quorum=quorum)
    step = st.one_of(
        st.tuples(
            st.just("answer"),
            st.tuples(
                st.sampled_from(USERS),
                st.lists(st.sampled_from((*OPTION_IDS, "maybe")), max_size=2),
                # Minutes around the deadline, with repeats to exercise equal timestamps.
                st.integers(-6, 2).map(lambda m: CLOSES_AT + timedelta(minutes=m)),
            ),
        ),
        st.tuples(
            st.just("close"),
            st.tuples(
                st.sampled_from(list(CloseReason)),
                st.integers(-6, 2).map(lambda m: CLOSES_AT + timedelta(minutes=m)),
            ),
        ),
    )
    return state, draw(st.lists(step, max_size=25))


def run(state: VoteState, steps: list[tuple[str, Any]]) -> list[VoteState]:
    states = [state]
    for kind, args in steps:
        state = apply_answer(state, *args) if kind == "answer" else close(state, *args)
        states.append(state)
    return states


def hand_count(steps: list[tuple[str, Any]]) -> dict[str, int]:
    """For each voter, their latest valid answer sent before the close, counted by hand."""
    latest: dict[str, tuple[datetime, int, str]] = {}
    for position, (kind, args) in enumerate(steps):
        if kind == "close":
            break
        user, answers, ts = args
        if ts >= CLOSES_AT or user not in VOTERS:
            continue
        if not answers or any(a not in OPTION_IDS for a in answers):
            continue
        if user not in latest or latest[user][:2] <= (ts, position):
            latest[user] = (ts, position, answers[0])
    counts = dict.fromkeys(OPTION_IDS, 0)
    for _, _, option in latest.values():
        counts[option] += 1
    return counts


@given(scenarios())
def test_tally_equals_a_hand_count(scenario: tuple[VoteState, list[tuple[str, Any]]]) -> None:
    state, steps = scenario
    final = run(state, steps)[-1]
    result = tally(final)
    expected = hand_count(steps)
    assert {c.option.id: c.count for c in result.counts} == expected
    assert result.turnout == sum(expected.values())
    assert result.quorum_reached == (result.turnout >= final.request.quorum)
    # At most one counted ballot per voter, and every answer is kept.
    counted = [b.user for b in final.ballots if b.counted]
    assert len(counted) == len(set(counted))
    assert len(final.ballots) == sum(1 for kind, _ in steps if kind == "answer")


@given(scenarios())
def test_ignored_answers_never_change_the_tally(
    scenario: tuple[VoteState, list[tuple[str, Any]]],
) -> None:
    state, steps = scenario
    states = run(state, steps)
    for (kind, _), before, after in zip(steps, states[:-1], states[1:], strict=True):
        if kind == "answer" and not after.ballots[-1].counted:
            assert tally(after) == tally(before)


@given(scenarios(), st.sampled_from(list(CloseReason)), st.sampled_from(list(CloseReason)))
def test_closing_is_idempotent(
    scenario: tuple[VoteState, list[tuple[str, Any]]], first: CloseReason, second: CloseReason
) -> None:
    state, steps = scenario
    final = run(state, steps)[-1]
    once = close(final, first, CLOSES_AT)
    assert close(once, second, CLOSES_AT + timedelta(hours=1)) == once
    assert not once.is_open
    assert tally(close(final, first, CLOSES_AT)) == tally(final)
    if not final.is_open:
        assert once == final


@given(scenarios())
def test_outcome_is_the_unique_leader_with_quorum(
    scenario: tuple[VoteState, list[tuple[str, Any]]],
) -> None:
    state, steps = scenario
    result = tally(run(state, steps)[-1])
    counts = [c.count for c in result.counts]
    if result.outcome is None:
        assert not result.quorum_reached or counts.count(max(counts)) > 1
    else:
        assert result.quorum_reached
        winner = next(c for c in result.counts if c.option.id == result.outcome)
        assert all(c.count < winner.count for c in result.counts if c is not winner)


# --- reports ---------------------------------------------------------------------------


def test_completed_payload() -> None:
    state = started()
    state = apply_answer(state, COMMISSION[0], ["for"], at(0))
    state = apply_answer(state, OUTSIDER, ["against"], at(1))
    with pytest.raises(ValueError, match="closed"):
        vote_completed_payload(state)
    state = close(state, CloseReason.DEADLINE, CLOSES_AT)
    payload = vote_completed_payload(state)
    assert payload == {
        "procurement_id": "26908",
        "vote_id": "V-174",
        "closed_at": "2022-04-15T18:00:00+03:00",
        "closed_by": "deadline",
        "cancel_reason": None,
        "tally": {
            "options": [
                {"id": "for", "label": "За", "count": 1},
                {"id": "against", "label": "Против", "count": 0},
                {"id": "abstain", "label": "Воздержался", "count": 0},
            ],
            "turnout": 1,
            "voters": 10,
            "quorum": 6,
            "quorum_reached": False,
            "outcome": None,
        },
        "ballots": [
            {
                "user": "@member0:corp.example",
                "ts": "2022-04-14T18:00:00+03:00",
                "answers": ["for"],
                "option": "for",
                "counted": True,
                "ignored": None,
            },
            {
                "user": "@kirillov:corp.example",
                "ts": "2022-04-14T18:01:00+03:00",
                "answers": ["against"],
                "option": None,
                "counted": False,
                "ignored": "not_a_voter",
            },
        ],
    }
    json.dumps(payload)


def test_view() -> None:
    state = apply_answer(started(disclosed=True), COMMISSION[3], ["abstain"], at(0))
    view = vote_view(state)
    assert view["state"] == "open"
    assert view["closed_at"] is None
    assert view["closed_by"] is None
    assert view["disclosed"] is True
    assert view["voters"] == list(COMMISSION)
    assert view["closes_at"] == "2022-04-15T18:00:00+03:00"
    assert view["options"][2] == {"id": "abstain", "label": "Воздержался"}
    assert view["tally"]["turnout"] == 1
    assert view["ballots"][0]["counted"] is True
    closed = vote_view(close(state, CloseReason.CANCELLED, at(3), cancel_reason="Отозвано"))
    assert (closed["state"], closed["closed_by"], closed["cancel_reason"]) == (
        "closed",
        "cancelled",
        "Отозвано",
    )
    json.dumps(closed)


def test_times_without_offset_are_a_programming_error() -> None:
    naive = datetime(2022, 4, 14, 12, 0)
    with pytest.raises(ValueError, match="offset"):
        apply_answer(started(), COMMISSION[0], ["for"], naive)
    with pytest.raises(ValueError, match="offset"):
        close(started(), CloseReason.DEADLINE, naive)
    with pytest.raises(ValueError, match="offset"):
        due_to_close(started(), naive)
