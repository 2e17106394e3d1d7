"""Approvals: the `approval.requested` contract, the route, and the reports."""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
import json
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.domain.approval import (
    ApprovalMode,
    ApprovalRefused,
    ApprovalState,
    Completed,
    Decision,
    Outcome,
    RefusalCode,
    StepDecided,
    StepStatus,
    approval_completed_payload,
    approval_view,
    cancel,
    decide,
    is_overdue,
    parse_approval_cancel,
    parse_approval_request,
    start_approval,
    step_decided_payload,
)
from bridge.domain.errors import InvalidInput, Refused
from bridge.domain.ids import ApprovalId, UserId

A17 = ApprovalId("A-17")
MSK = timezone(timedelta(hours=3))
T0 = datetime(2022, 4, 15, 12, 0, tzinfo=MSK)
KONOVALOV = UserId("@konovalov:corp.example")
PETRENKO = UserId("@petrenko:corp.example")
PETROV = UserId("@petrov:corp.example")
OUTSIDER = UserId("@kirillov:corp.example")
TKA = b"%PDF-1.4 TKA 234/01-02"

# DESIGN §4.1, verbatim but for the placeholders ("...", "hex") that stand for real values.
DESIGN_EXAMPLE = json.loads(
    """{"type": "approval.requested", "data": {
  "procurement_id": "26908", "approval_id": "A-17",
  "initiator": "@konovalov:corp.example",
  "document": {"type": "Торгово-коммерческий анализ (ТКА)", "number": "234/01-02",
               "series": "01", "valid_until": "2022-12-31",
               "filename": "TKA_234-01-02.pdf", "content_base64": "...",
               "sha256": "hex"},
  "mode": "sequential", "group": "Руководители верхнего уровня",
  "approvers": ["@konovalov:corp.example", "@petrenko:corp.example"],
  "require_signature": true, "deadline": "2022-04-20T18:00:00+03:00"}}"""
)


def example(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = copy.deepcopy(DESIGN_EXAMPLE["data"])
    data["document"]["content_base64"] = base64.b64encode(TKA).decode()
    data["document"]["sha256"] = hashlib.sha256(TKA).hexdigest()
    data.update(changes)
    return data


def started(**changes: Any) -> ApprovalState:
    return start_approval(parse_approval_request(example(**changes)))


def refused(state: ApprovalState, user: UserId, decision: Decision, **kw: Any) -> ApprovalRefused:
    with pytest.raises(ApprovalRefused) as caught:
        decide(
            state,
            user,
            decision,
            kw.get("comment"),
            kw.get("signature_ok", True),
            kw.get("ts", T0),
        )
    return caught.value


# --- parsing ---------------------------------------------------------------------------


def test_design_example_parses() -> None:
    request = parse_approval_request(example())
    assert request.procurement_id == "26908"
    assert request.approval_id == "A-17"
    assert request.initiator == KONOVALOV
    assert request.mode is ApprovalMode.SEQUENTIAL
    assert request.group == "Руководители верхнего уровня"
    assert request.approvers == (KONOVALOV, PETRENKO)
    assert request.require_signature is True
    assert request.deadline == datetime(2022, 4, 20, 18, 0, tzinfo=MSK)
    info = request.document.info
    assert info.type == "Торгово-коммерческий анализ (ТКА)"
    assert (info.number, info.series, info.valid_until) == ("234/01-02", "01", date(2022, 12, 31))
    assert info.filename == "TKA_234-01-02.pdf"
    assert request.document.content == TKA


def test_placeholder_hash_of_the_design_example_is_refused_at_its_path() -> None:
    data = example()
    data["document"]["sha256"] = "hex"
    with pytest.raises(InvalidInput) as caught:
        parse_approval_request(data)
    assert caught.value.path == "data.document.sha256"


def test_minimal_request_with_url() -> None:
    data = example(mode="parallel")
    for key in ("group", "require_signature", "deadline"):
        del data[key]
    data["document"] = {"filename": "DS.pdf", "url": "https://erp.example/f/1"}
    request = parse_approval_request(data)
    assert request.mode is ApprovalMode.PARALLEL
    assert request.group is None
    assert request.require_signature is False
    assert request.deadline is None
    assert request.document.url == "https://erp.example/f/1"


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"approvers": []}, "data.approvers"),
        ({"approvers": None}, "data.approvers"),
        ({"approvers": [str(KONOVALOV), str(KONOVALOV)]}, "data.approvers[1]"),
        ({"approvers": ["Петров А.С."]}, "data.approvers[0]"),
        ({"approvers": [f"@u{i}:corp.example" for i in range(101)]}, "data.approvers"),
        ({"mode": "random"}, "data.mode"),
        ({"mode": None}, "data.mode"),
        ({"initiator": "konovalov"}, "data.initiator"),
        ({"document": None}, "data.document"),
        ({"document": {"filename": "x.pdf"}}, "data.document.content_base64"),
        ({"require_signature": "да"}, "data.require_signature"),
        ({"deadline": "20.04.2022"}, "data.deadline"),
        ({"approval_id": "A 17"}, "data.approval_id"),
        ({"group": 7}, "data.group"),
    ],
)
def test_bad_request(change: dict[str, Any], path: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_approval_request(example(**change))
    assert caught.value.path == path


def test_cancel_parses() -> None:
    parsed = parse_approval_cancel({"approval_id": "A-17", "reason": "Документ заменён"})
    assert (parsed.approval_id, parsed.reason, parsed.procurement_id) == (
        "A-17",
        "Документ заменён",
        None,
    )
    assert parse_approval_cancel({"approval_id": "A-17", "procurement_id": "26908"}).reason is None
    with pytest.raises(InvalidInput) as caught:
        parse_approval_cancel({"reason": "x"})
    assert caught.value.path == "data.approval_id"


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
    for parse in (parse_approval_request, parse_approval_cancel):
        with contextlib.suppress(InvalidInput):
            parse(data)


@given(st.sampled_from(sorted(example())), json_values)
def test_one_bad_field_raises_only_invalid_input(key: str, value: object) -> None:
    with contextlib.suppress(InvalidInput):
        parse_approval_request(example(**{key: value}))


# --- the route -------------------------------------------------------------------------


def test_sequential_route_approved() -> None:
    state = started(approvers=[KONOVALOV, PETRENKO, PETROV])
    assert state.current_approvers() == (KONOVALOV,)
    state, effects = decide(state, KONOVALOV, Decision.APPROVED, "  ", True, T0)
    assert effects == (StepDecided(A17, 0, KONOVALOV, Decision.APPROVED, None, True, T0),)
    assert state.current_approvers() == (PETRENKO,)
    state, _ = decide(state, PETRENKO, Decision.APPROVED, "Согласен", True, T0)
    state, effects = decide(state, PETROV, Decision.APPROVED, None, True, T0)
    assert effects[-1] == Completed(A17, Outcome.APPROVED, T0, None)
    assert state.outcome is Outcome.APPROVED
    assert state.ended_at == T0
    assert state.current_approvers() == ()
    assert state.steps[1].comment == "Согласен"


def test_sequential_rejection_ends_the_route() -> None:
    state = started(approvers=[KONOVALOV, PETRENKO, PETROV])
    state, _ = decide(state, KONOVALOV, Decision.APPROVED, None, True, T0)
    state, effects = decide(state, PETRENKO, Decision.REJECTED, "Цена завышена", None, T0)
    assert effects == (
        StepDecided(A17, 1, PETRENKO, Decision.REJECTED, "Цена завышена", None, T0),
        Completed(A17, Outcome.REJECTED, T0, "Цена завышена"),
    )
    assert state.outcome is Outcome.REJECTED
    assert state.steps[2].status is StepStatus.WAITING
    assert refused(state, PETROV, Decision.APPROVED).code is RefusalCode.ENDED


def test_out_of_turn_is_refused_and_names_who_decides() -> None:
    state = started(approvers=[KONOVALOV, PETRENKO])
    error = refused(state, PETRENKO, Decision.APPROVED)
    assert error.code is RefusalCode.NOT_YOUR_TURN
    assert error.errcode == "ORG_PROCUREMENT_NOT_YOUR_TURN"
    assert error.current == (KONOVALOV,)
    assert isinstance(error, Refused)
    # Out of turn is out of turn for a rejection too.
    assert (
        refused(state, PETRENKO, Decision.REJECTED, comment="нет").code
        is RefusalCode.NOT_YOUR_TURN
    )


def test_refusals() -> None:
    state = started(approvers=[KONOVALOV, PETRENKO])
    assert refused(state, OUTSIDER, Decision.APPROVED).code is RefusalCode.NOT_AN_APPROVER
    assert refused(state, KONOVALOV, Decision.REJECTED).code is RefusalCode.REASON_REQUIRED
    assert (
        refused(state, KONOVALOV, Decision.REJECTED, comment="   ").code
        is RefusalCode.REASON_REQUIRED
    )
    assert (
        refused(state, KONOVALOV, Decision.APPROVED, signature_ok=None).code
        is RefusalCode.SIGNATURE_REQUIRED
    )
    assert (
        refused(state, KONOVALOV, Decision.APPROVED, signature_ok=False).code
        is RefusalCode.SIGNATURE_INVALID
    )
    decided, _ = decide(state, KONOVALOV, Decision.APPROVED, None, True, T0)
    assert refused(decided, KONOVALOV, Decision.APPROVED).code is RefusalCode.ALREADY_DECIDED


def test_signature_rules_without_requirement() -> None:
    state = started(require_signature=False)
    approved, _ = decide(state, KONOVALOV, Decision.APPROVED, None, None, T0)
    assert approved.steps[0].signature_ok is None
    # A signature that fails to verify is refused even where none is required.
    assert (
        refused(state, KONOVALOV, Decision.APPROVED, signature_ok=False).code
        is RefusalCode.SIGNATURE_INVALID
    )


def test_a_rejection_needs_no_signature() -> None:
    state, effects = decide(started(), KONOVALOV, Decision.REJECTED, "Нет подписи", None, T0)
    assert state.outcome is Outcome.REJECTED
    assert isinstance(effects[-1], Completed)


def test_parallel_route() -> None:
    state = started(mode="parallel", approvers=[KONOVALOV, PETRENKO, PETROV])
    assert state.current_approvers() == (KONOVALOV, PETRENKO, PETROV)
    state, _ = decide(state, PETROV, Decision.APPROVED, None, True, T0)
    assert state.current_approvers() == (KONOVALOV, PETRENKO)
    state, _ = decide(state, KONOVALOV, Decision.APPROVED, None, True, T0)
    state, effects = decide(state, PETRENKO, Decision.APPROVED, None, True, T0)
    assert effects[-1] == Completed(A17, Outcome.APPROVED, T0, None)


def test_cancel() -> None:
    state = started()
    ended, effects = cancel(state, " Документ заменён ", T0)
    assert effects == (Completed(A17, Outcome.CANCELLED, T0, "Документ заменён"),)
    assert ended.outcome is Outcome.CANCELLED
    assert ended.cancel_reason == "Документ заменён"
    assert cancel(ended, "again", T0) == (ended, ())
    assert refused(ended, KONOVALOV, Decision.APPROVED).code is RefusalCode.ENDED
    rejected, _ = decide(state, KONOVALOV, Decision.REJECTED, "нет", None, T0)
    assert cancel(rejected, None, T0) == (rejected, ())


def test_overdue() -> None:
    state = started()
    deadline = datetime(2022, 4, 20, 18, 0, tzinfo=MSK)
    assert not is_overdue(state, deadline - timedelta(seconds=1))
    assert is_overdue(state, deadline)
    assert not is_overdue(cancel(state, None, T0)[0], deadline)
    assert not is_overdue(started(deadline=None), deadline)


# --- properties ------------------------------------------------------------------------

APPROVERS = (KONOVALOV, PETRENKO, PETROV)
EVERYONE = (*APPROVERS, OUTSIDER)

attempts = st.lists(
    st.tuples(
        st.sampled_from(EVERYONE),
        st.sampled_from(list(Decision)),
        st.sampled_from([None, "", "Причина"]),
        st.sampled_from([None, True, False]),
    ),
    max_size=12,
)


@given(attempts, st.booleans())
def test_sequential_never_lets_a_non_current_approver_decide(
    tries: list[tuple[UserId, Decision, str | None, bool | None]], require_signature: bool
) -> None:
    state = started(approvers=list(APPROVERS), require_signature=require_signature)
    for user, decision, comment, signature_ok in tries:
        current = state.current_approvers()
        assert len(current) <= 1
        try:
            new_state, effects = decide(state, user, decision, comment, signature_ok, T0)
        except ApprovalRefused:
            continue
        assert current == (user,)
        decided = [e for e in effects if isinstance(e, StepDecided)]
        assert [d.approver for d in decided] == [user]
        # Steps are decided strictly in the listed order.
        statuses = [s.status for s in new_state.steps]
        first_waiting = statuses.index(StepStatus.WAITING) if StepStatus.WAITING in statuses else 3
        assert all(s is not StepStatus.WAITING for s in statuses[:first_waiting])
        assert all(s is StepStatus.WAITING for s in statuses[first_waiting:])
        state = new_state


@given(
    st.permutations(APPROVERS),
    st.lists(st.sampled_from(list(Decision)), min_size=3, max_size=3),
    st.sampled_from(list(ApprovalMode)),
)
def test_approved_iff_all_approve_and_any_rejection_rejects(
    order: list[UserId], decisions: list[Decision], mode: ApprovalMode
) -> None:
    state = started(mode=mode.value, approvers=list(APPROVERS), require_signature=False)
    choice = dict(zip(APPROVERS, decisions, strict=True))
    sequence = order if mode is ApprovalMode.PARALLEL else list(APPROVERS)
    completions: list[Completed] = []
    for user in sequence:
        if state.outcome is not None:
            # Once a rejection has ended the route, nobody decides any more.
            assert refused(state, user, choice[user], comment="Причина").code is RefusalCode.ENDED
            continue
        state, effects = decide(state, user, choice[user], "Причина", None, T0)
        completions += [e for e in effects if isinstance(e, Completed)]
    assert len(completions) == 1
    if all(d is Decision.APPROVED for d in decisions):
        assert state.outcome is Outcome.APPROVED
    else:
        assert state.outcome is Outcome.REJECTED
        first_rejecter = next(u for u in sequence if choice[u] is Decision.REJECTED)
        assert state.step_of(first_rejecter) is not None
        assert state.step_of(first_rejecter).status is StepStatus.REJECTED  # type: ignore[union-attr]
    assert completions[0].outcome is state.outcome


@given(attempts, st.sampled_from(list(ApprovalMode)))
def test_refused_decisions_change_nothing(
    tries: list[tuple[UserId, Decision, str | None, bool | None]], mode: ApprovalMode
) -> None:
    state = started(mode=mode.value, approvers=list(APPROVERS))
    for user, decision, comment, signature_ok in tries:
        before = state
        try:
            state, _ = decide(state, user, decision, comment, signature_ok, T0)
        except ApprovalRefused:
            assert state == before


# --- reports ---------------------------------------------------------------------------


def test_step_decided_payload() -> None:
    state, effects = decide(started(), KONOVALOV, Decision.APPROVED, "Ок", True, T0)
    assert isinstance(effects[0], StepDecided)
    assert step_decided_payload(state, effects[0]) == {
        "procurement_id": "26908",
        "approval_id": "A-17",
        "mode": "sequential",
        "step": 0,
        "approver": "@konovalov:corp.example",
        "decision": "approved",
        "comment": "Ок",
        "signature": {"provided": True, "verified": True},
        "decided_at": "2022-04-15T12:00:00+03:00",
    }


def test_completed_payload() -> None:
    state = started()
    with pytest.raises(ValueError, match="ended"):
        approval_completed_payload(state)
    state, _ = decide(state, KONOVALOV, Decision.REJECTED, "Цена завышена", None, T0)
    payload = approval_completed_payload(state)
    assert payload["outcome"] == "rejected"
    assert payload["reason"] == "Цена завышена"
    assert payload["completed_at"] == "2022-04-15T12:00:00+03:00"
    assert payload["steps"][0] == {
        "approver": "@konovalov:corp.example",
        "status": "rejected",
        "comment": "Цена завышена",
        "decided_at": "2022-04-15T12:00:00+03:00",
        "signature": {"provided": False, "verified": None},
    }
    assert payload["steps"][1]["status"] == "waiting"
    cancelled = approval_completed_payload(cancel(started(), "Отозвано", T0)[0])
    assert (cancelled["outcome"], cancelled["reason"]) == ("cancelled", "Отозвано")
    approved = started(approvers=[KONOVALOV])
    approved, _ = decide(approved, KONOVALOV, Decision.APPROVED, None, True, T0)
    assert approval_completed_payload(approved)["reason"] is None
    json.dumps(payload)


def test_view() -> None:
    view = approval_view(started())
    assert view["state"] == "in_progress"
    assert view["current_approvers"] == ["@konovalov:corp.example"]
    assert view["document"] == {
        "type": "Торгово-коммерческий анализ (ТКА)",
        "number": "234/01-02",
        "series": "01",
        "valid_until": "2022-12-31",
        "filename": "TKA_234-01-02.pdf",
        "sha256": hashlib.sha256(TKA).hexdigest(),
    }
    assert view["deadline"] == "2022-04-20T18:00:00+03:00"
    assert view["mode"] == "sequential"
    assert view["require_signature"] is True
    assert view["ended_at"] is None
    assert "content_base64" not in json.dumps(view)
    ended = approval_view(cancel(started(deadline=None), "Отозвано", T0)[0])
    assert (ended["state"], ended["reason"], ended["deadline"]) == ("cancelled", "Отозвано", None)
