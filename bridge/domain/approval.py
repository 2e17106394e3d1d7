"""Document approvals: `approval.requested`/`approval.cancelled`, the route (sequential or
parallel) as a state machine, and what the bridge reports about it (callbacks, REST view)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import Enum
from typing import Any

from .document import DocumentInput, parse_document, read_id
from .errors import InvalidInput, Refused
from .ids import ApprovalId, ProcurementId, UserId
from .reader import Reader

MAX_APPROVERS = 100


class ApprovalMode(Enum):
    SEQUENTIAL = "sequential"  # «Последовательное»: one after another, in the listed order
    PARALLEL = "parallel"  # «Параллельное»: everyone at once, in any order


class Decision(Enum):
    APPROVED = "approved"
    REJECTED = "rejected"


class StepStatus(Enum):
    WAITING = "waiting"  # not decided (yet, or ever if the route ended first)
    APPROVED = "approved"
    REJECTED = "rejected"


class Outcome(Enum):
    APPROVED = "approved"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


class RefusalCode(Enum):
    """Why a decision is refused; the value is the errcode, `cards` has the words."""

    ENDED = "ORG_PROCUREMENT_APPROVAL_ENDED"
    NOT_AN_APPROVER = "ORG_PROCUREMENT_NOT_AN_APPROVER"
    NOT_YOUR_TURN = "ORG_PROCUREMENT_NOT_YOUR_TURN"
    ALREADY_DECIDED = "ORG_PROCUREMENT_ALREADY_DECIDED"
    REASON_REQUIRED = "ORG_PROCUREMENT_REASON_REQUIRED"
    SIGNATURE_REQUIRED = "ORG_PROCUREMENT_SIGNATURE_REQUIRED"
    SIGNATURE_INVALID = "ORG_PROCUREMENT_SIGNATURE_INVALID"


class ApprovalRefused(Refused):
    """A decision the route does not allow; `current` names who may decide now."""

    def __init__(self, code: RefusalCode, error: str, current: tuple[UserId, ...] = ()) -> None:
        super().__init__(error, code.value)
        self.code = code
        self.current = current


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    procurement_id: ProcurementId
    approval_id: ApprovalId
    initiator: UserId
    document: DocumentInput
    mode: ApprovalMode
    approvers: tuple[UserId, ...]  # distinct; the order is the route's order when sequential
    group: str | None = None  # «Руководители верхнего уровня»
    require_signature: bool = False
    deadline: datetime | None = None


@dataclass(frozen=True, slots=True)
class ApprovalCancel:
    approval_id: ApprovalId
    procurement_id: ProcurementId | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Step:
    approver: UserId
    status: StepStatus = StepStatus.WAITING
    comment: str | None = None
    decided_at: datetime | None = None
    signature_ok: bool | None = None  # None: decided without a signature


@dataclass(frozen=True, slots=True)
class ApprovalState:
    request: ApprovalRequest
    steps: tuple[Step, ...]
    outcome: Outcome | None = None  # None while the route is running
    ended_at: datetime | None = None
    cancel_reason: str | None = None

    @property
    def is_open(self) -> bool:
        return self.outcome is None

    def current_approvers(self) -> tuple[UserId, ...]:
        """Who may decide now: the first undecided approver, or every undecided one."""
        if not self.is_open:
            return ()
        waiting = tuple(s.approver for s in self.steps if s.status is StepStatus.WAITING)
        if self.request.mode is ApprovalMode.SEQUENTIAL:
            return waiting[:1]
        return waiting

    def step_of(self, approver: UserId) -> Step | None:
        return next((s for s in self.steps if s.approver == approver), None)


@dataclass(frozen=True, slots=True)
class StepDecided:
    """Effect: an approver decided (→ `approval.step_decided`, card edit)."""

    approval_id: ApprovalId
    step: int  # index in the route, from 0
    approver: UserId
    decision: Decision
    comment: str | None
    signature_ok: bool | None
    ts: datetime


@dataclass(frozen=True, slots=True)
class Completed:
    """Effect: the route ended (→ `approval.completed`, card edit, archive the room)."""

    approval_id: ApprovalId
    outcome: Outcome
    ts: datetime
    reason: str | None  # the rejection's or the cancellation's reason


Effect = StepDecided | Completed


# --- parsing ---------------------------------------------------------------------------


def parse_approval_request(
    data: object, path: str = "data", *, content_required: bool = True
) -> ApprovalRequest:
    """An `approval.requested` payload; `content_required=False` reads one stored without its
    document's bytes (they are kept apart)."""
    reader = Reader(data, path)
    approvers = reader.users("approvers", optional=False)
    if not approvers:
        raise InvalidInput(reader.at("approvers"), "an approval needs at least one approver")
    if len(approvers) > MAX_APPROVERS:
        raise InvalidInput(reader.at("approvers"), f"at most {MAX_APPROVERS} approvers")
    return ApprovalRequest(
        procurement_id=ProcurementId(read_id(reader, "procurement_id")),
        approval_id=ApprovalId(read_id(reader, "approval_id")),
        initiator=reader.user("initiator"),
        document=parse_document(reader.obj("document"), content_required=content_required),
        mode=reader.enum("mode", ApprovalMode),
        approvers=approvers,
        group=reader.opt_text("group", max_len=300),
        require_signature=reader.flag("require_signature", default=False),
        deadline=reader.opt_timestamp("deadline"),
    )


def parse_approval_cancel(data: object, path: str = "data") -> ApprovalCancel:
    reader = Reader(data, path)
    return ApprovalCancel(
        approval_id=ApprovalId(read_id(reader, "approval_id")),
        procurement_id=(
            ProcurementId(read_id(reader, "procurement_id"))
            if reader.has("procurement_id")
            else None
        ),
        reason=reader.opt_text("reason", max_len=1000),
    )


# --- the route -------------------------------------------------------------------------


def start_approval(request: ApprovalRequest) -> ApprovalState:
    return ApprovalState(request=request, steps=tuple(Step(a) for a in request.approvers))


def decide(
    state: ApprovalState,
    approver: UserId,
    decision: Decision,
    comment: str | None,
    signature_ok: bool | None,
    ts: datetime,
) -> tuple[ApprovalState, tuple[Effect, ...]]:
    """Apply one approver's decision, or raise ApprovalRefused and change nothing.

    `signature_ok` is the verification of a detached signature sent with the decision
    (None: none sent). A signature is demanded only to approve: a rejection stops the
    route and must not be blocked by a missing token.
    """
    comment = (comment or "").strip() or None
    _check_decision(state, approver, decision, comment, signature_ok)
    index = next(i for i, s in enumerate(state.steps) if s.approver == approver)
    status = StepStatus.APPROVED if decision is Decision.APPROVED else StepStatus.REJECTED
    step = replace(
        state.steps[index],
        status=status,
        comment=comment,
        decided_at=ts,
        signature_ok=signature_ok,
    )
    steps = (*state.steps[:index], step, *state.steps[index + 1 :])
    effects: list[Effect] = [
        StepDecided(
            approval_id=state.request.approval_id,
            step=index,
            approver=approver,
            decision=decision,
            comment=comment,
            signature_ok=signature_ok,
            ts=ts,
        )
    ]
    new_state = replace(state, steps=steps)
    if decision is Decision.REJECTED:
        # Any rejection ends the route, sequential or parallel.
        new_state = replace(new_state, outcome=Outcome.REJECTED, ended_at=ts)
        effects.append(Completed(state.request.approval_id, Outcome.REJECTED, ts, comment))
    elif all(s.status is StepStatus.APPROVED for s in steps):
        new_state = replace(new_state, outcome=Outcome.APPROVED, ended_at=ts)
        effects.append(Completed(state.request.approval_id, Outcome.APPROVED, ts, None))
    return new_state, tuple(effects)


def _check_decision(
    state: ApprovalState,
    approver: UserId,
    decision: Decision,
    comment: str | None,
    signature_ok: bool | None,
) -> None:
    approval_id = state.request.approval_id
    if not state.is_open:
        assert state.outcome is not None
        raise ApprovalRefused(
            RefusalCode.ENDED, f"approval {approval_id} has ended: {state.outcome.value}"
        )
    step = state.step_of(approver)
    if step is None:
        raise ApprovalRefused(
            RefusalCode.NOT_AN_APPROVER,
            f"{approver} is not an approver of {approval_id}",
            state.current_approvers(),
        )
    if step.status is not StepStatus.WAITING:
        raise ApprovalRefused(
            RefusalCode.ALREADY_DECIDED, f"{approver} has already decided on {approval_id}"
        )
    current = state.current_approvers()
    if approver not in current:
        raise ApprovalRefused(
            RefusalCode.NOT_YOUR_TURN,
            f"it is not {approver}'s turn on {approval_id}: waiting for {', '.join(current)}",
            current,
        )
    if decision is Decision.REJECTED and comment is None:
        raise ApprovalRefused(RefusalCode.REASON_REQUIRED, "a rejection needs a reason")
    if signature_ok is False:
        raise ApprovalRefused(RefusalCode.SIGNATURE_INVALID, "the signature does not verify")
    if decision is Decision.APPROVED and state.request.require_signature and not signature_ok:
        raise ApprovalRefused(
            RefusalCode.SIGNATURE_REQUIRED,
            f"approval {approval_id} needs an electronic signature of the document",
        )


def cancel(
    state: ApprovalState, reason: str | None, ts: datetime
) -> tuple[ApprovalState, tuple[Effect, ...]]:
    """End the route as cancelled («Отменить согласование»); an ended route stays as it is."""
    if not state.is_open:
        return state, ()
    reason = (reason or "").strip() or None
    ended = replace(state, outcome=Outcome.CANCELLED, ended_at=ts, cancel_reason=reason)
    return ended, (Completed(state.request.approval_id, Outcome.CANCELLED, ts, reason),)


def is_overdue(state: ApprovalState, now: datetime) -> bool:
    """Past the deadline and still running. The deadline is informative: the bridge does
    not end a route by itself, the procurement system cancels it if it wants to."""
    deadline = state.request.deadline
    return state.is_open and deadline is not None and now >= deadline


# --- reports ---------------------------------------------------------------------------


def step_decided_payload(state: ApprovalState, effect: StepDecided) -> dict[str, Any]:
    """The `approval.step_decided` callback's `data` (DESIGN §4.2)."""
    return {
        "procurement_id": state.request.procurement_id,
        "approval_id": effect.approval_id,
        "mode": state.request.mode.value,
        "step": effect.step,
        "approver": effect.approver,
        "decision": effect.decision.value,
        "comment": effect.comment,
        "signature": signature_json(effect.signature_ok),
        "decided_at": effect.ts.isoformat(),
    }


def approval_completed_payload(state: ApprovalState) -> dict[str, Any]:
    """The `approval.completed` callback's `data` (DESIGN §4.2), for an ended route."""
    if state.outcome is None or state.ended_at is None:
        raise ValueError("approval.completed is sent only for an ended route")
    return {
        "procurement_id": state.request.procurement_id,
        "approval_id": state.request.approval_id,
        "outcome": state.outcome.value,
        "completed_at": state.ended_at.isoformat(),
        "reason": _end_reason(state),
        "steps": [step_json(s) for s in state.steps],
    }


def approval_view(state: ApprovalState) -> dict[str, Any]:
    """`GET /api/v1/procurements/{id}/approvals/{approval_id}`."""
    request = state.request
    info = request.document.info
    return {
        "procurement_id": request.procurement_id,
        "approval_id": request.approval_id,
        "initiator": request.initiator,
        "document": {
            "type": info.type,
            "number": info.number,
            "series": info.series,
            "valid_until": None if info.valid_until is None else info.valid_until.isoformat(),
            "filename": info.filename,
            "sha256": info.sha256,
        },
        "mode": request.mode.value,
        "group": request.group,
        "require_signature": request.require_signature,
        "deadline": None if request.deadline is None else request.deadline.isoformat(),
        "state": "in_progress" if state.outcome is None else state.outcome.value,
        "current_approvers": list(state.current_approvers()),
        "steps": [step_json(s) for s in state.steps],
        "ended_at": None if state.ended_at is None else state.ended_at.isoformat(),
        "reason": _end_reason(state),
    }


def step_json(step: Step) -> dict[str, Any]:
    return {
        "approver": step.approver,
        "status": step.status.value,
        "comment": step.comment,
        "decided_at": None if step.decided_at is None else step.decided_at.isoformat(),
        "signature": signature_json(step.signature_ok),
    }


def signature_json(signature_ok: bool | None) -> dict[str, Any]:
    """Room for the verifier's details (signer, certificate) next to the verdict."""
    if signature_ok is None:
        return {"provided": False, "verified": None}
    return {"provided": True, "verified": signature_ok}


def _end_reason(state: ApprovalState) -> str | None:
    if state.outcome is Outcome.CANCELLED:
        return state.cancel_reason
    if state.outcome is Outcome.REJECTED:
        return next((s.comment for s in state.steps if s.status is StepStatus.REJECTED), None)
    return None
