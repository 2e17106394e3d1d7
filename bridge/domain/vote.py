"""Commission votes: `vote.requested`/`vote.cancelled`, the counting rules, and what the
bridge reports about a vote (the `vote.completed` callback and the REST view)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from .document import DocumentInput, parse_document, read_id
from .errors import InvalidInput, Refused
from .ids import ProcurementId, UserId, VoteId
from .reader import Reader

MIN_OPTIONS = 2
MAX_OPTIONS = 20  # Element shows at most 20 answers (matrix-js-sdk PollStartEvent)
MAX_SELECTIONS = 1


class CloseReason(Enum):
    DEADLINE = "deadline"
    ALL_VOTED = "all_voted"
    CANCELLED = "cancelled"


class IgnoredReason(Enum):
    NOT_A_VOTER = "not_a_voter"
    AFTER_CLOSE = "after_close"
    UNKNOWN_OPTION = "unknown_option"  # also an answer that names no option at all
    SUPERSEDED = "superseded"  # the voter answered again later


@dataclass(frozen=True, slots=True)
class VoteOption:
    id: str
    label: str


@dataclass(frozen=True, slots=True)
class VoteSubject:
    """What the commission votes on, as the seed's card shows it; every field is optional."""

    kind: str | None = None  # "specification", …
    number: str | None = None
    supplier: str | None = None
    delivery_term_days: int | None = None
    delivery_date: date | None = None
    cost_without_vat: Decimal | None = None
    cost_with_vat: Decimal | None = None
    currency: str = "RUB"
    document: DocumentInput | None = None


@dataclass(frozen=True, slots=True)
class VoteRequest:
    procurement_id: ProcurementId
    vote_id: VoteId
    question: str
    options: tuple[VoteOption, ...]
    voters: tuple[UserId, ...] | None  # None: the commission's members at request time
    quorum: int
    closes_at: datetime
    disclosed: bool = False
    subject: VoteSubject | None = None

    def option(self, option_id: str) -> VoteOption | None:
        return next((o for o in self.options if o.id == option_id), None)


@dataclass(frozen=True, slots=True)
class VoteCancel:
    vote_id: VoteId
    procurement_id: ProcurementId | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Ballot:
    """One poll answer as it arrived, and whether it counts (`ignored` is None) or why not."""

    user: UserId
    answers: tuple[str, ...]
    ts: datetime
    ignored: IgnoredReason | None = None

    @property
    def counted(self) -> bool:
        return self.ignored is None

    @property
    def option(self) -> str | None:
        """The chosen option id of a counted ballot."""
        return self.answers[0] if self.counted else None


@dataclass(frozen=True, slots=True)
class VoteState:
    request: VoteRequest
    voters: tuple[UserId, ...]  # resolved: never None
    ballots: tuple[Ballot, ...] = ()  # in arrival order
    closed_at: datetime | None = None
    close_reason: CloseReason | None = None
    cancel_reason: str | None = None

    @property
    def is_open(self) -> bool:
        return self.close_reason is None

    def counted_ballots(self) -> tuple[Ballot, ...]:
        return tuple(b for b in self.ballots if b.counted)


@dataclass(frozen=True, slots=True)
class OptionCount:
    option: VoteOption
    count: int


@dataclass(frozen=True, slots=True)
class Tally:
    counts: tuple[OptionCount, ...]  # in the order of the options
    turnout: int  # voters whose answer counts
    voters: int
    quorum: int
    quorum_reached: bool
    outcome: str | None  # the winning option id; None without quorum or on a tie


# --- parsing ---------------------------------------------------------------------------


def parse_vote_request(data: object, path: str = "data") -> VoteRequest:
    reader = Reader(data, path)
    options = _parse_options(reader)
    voters = reader.users("voters") if reader.has("voters") else None
    if voters is not None and not voters:
        raise InvalidInput(
            reader.at("voters"), "list at least one voter, or null for the commission"
        )
    quorum = reader.integer("quorum", minimum=1)
    if voters is not None and quorum > len(voters):
        raise InvalidInput(
            reader.at("quorum"), f"quorum {quorum} can never be reached by {len(voters)} voters"
        )
    subject_reader = reader.opt_obj("subject")
    return VoteRequest(
        procurement_id=ProcurementId(read_id(reader, "procurement_id")),
        vote_id=VoteId(read_id(reader, "vote_id")),
        question=reader.text("question", max_len=1000),
        options=options,
        voters=voters,
        quorum=quorum,
        closes_at=reader.timestamp("closes_at"),
        disclosed=reader.flag("disclosed", default=False),
        subject=None if subject_reader is None else _parse_subject(subject_reader),
    )


def parse_vote_cancel(data: object, path: str = "data") -> VoteCancel:
    reader = Reader(data, path)
    return VoteCancel(
        vote_id=VoteId(read_id(reader, "vote_id")),
        procurement_id=(
            ProcurementId(read_id(reader, "procurement_id"))
            if reader.has("procurement_id")
            else None
        ),
        reason=reader.opt_text("reason", max_len=1000),
    )


def _parse_options(reader: Reader) -> tuple[VoteOption, ...]:
    items = reader.items("options", optional=False, max_items=MAX_OPTIONS)
    if len(items) < MIN_OPTIONS:
        raise InvalidInput(reader.at("options"), f"a vote needs at least {MIN_OPTIONS} options")
    options: list[VoteOption] = []
    for item in items:
        option_reader = item.reader()
        option = VoteOption(
            id=read_id(option_reader, "id"), label=option_reader.text("label", max_len=200)
        )
        if any(o.id == option.id for o in options):
            raise InvalidInput(option_reader.at("id"), f"option id {option.id!r} is used twice")
        if any(o.label == option.label for o in options):
            raise InvalidInput(
                option_reader.at("label"), f"option label {option.label!r} is used twice"
            )
        options.append(option)
    return tuple(options)


def _parse_subject(reader: Reader) -> VoteSubject:
    document = reader.opt_obj("document")
    return VoteSubject(
        kind=reader.opt_text("kind", max_len=100),
        number=reader.opt_text("number", max_len=100),
        supplier=reader.opt_text("supplier", max_len=300),
        delivery_term_days=reader.opt_integer("delivery_term_days", minimum=0, maximum=100_000),
        delivery_date=reader.opt_calendar_date("delivery_date"),
        cost_without_vat=(
            reader.money("cost_without_vat") if reader.has("cost_without_vat") else None
        ),
        cost_with_vat=reader.money("cost_with_vat") if reader.has("cost_with_vat") else None,
        currency=reader.currency("currency", default="RUB"),
        document=None if document is None else parse_document(document, content_required=False),
    )


# --- counting --------------------------------------------------------------------------


def open_vote(request: VoteRequest, commission_members: Sequence[UserId] = ()) -> VoteState:
    """The vote as it starts; `commission_members` stand in for `voters: null`.

    Refused when nobody can vote or the quorum is out of reach, so that a vote nobody can
    win is reported to the procurement system instead of being posted.
    """
    voters = (
        request.voters if request.voters is not None else tuple(dict.fromkeys(commission_members))
    )
    if not voters:
        raise Refused(
            f"vote {request.vote_id} has no voters: the procurement has no commission members",
            "ORG_PROCUREMENT_VOTE_NO_VOTERS",
        )
    if request.quorum > len(voters):
        raise Refused(
            f"vote {request.vote_id}: quorum {request.quorum} exceeds the {len(voters)} voters",
            "ORG_PROCUREMENT_VOTE_QUORUM_UNREACHABLE",
        )
    return VoteState(request=request, voters=voters)


def apply_answer(
    state: VoteState, user: UserId, answers: Iterable[str], ts: datetime
) -> VoteState:
    """Record a poll answer; it counts, or stays visible with the reason it does not.

    Once the vote is closed its result is final and published, so every later answer is
    `after_close`, even one stamped earlier that the homeserver delivered late.
    """
    _require_offset(ts)
    given = tuple(answers)
    reason = _ignored_reason(state, user, given, ts)
    if reason is not None:
        return replace(state, ballots=(*state.ballots, Ballot(user, given, ts, reason)))
    # Like Element, only the first `max_selections` answers are taken.
    ballot = Ballot(user, given[:MAX_SELECTIONS], ts)
    previous = _counted_ballot(state, user)
    if previous is not None and previous.ts > ts:
        # Delivered out of order: the voter's answer already counted is the later one.
        ballot = replace(ballot, ignored=IgnoredReason.SUPERSEDED)
        return replace(state, ballots=(*state.ballots, ballot))
    ballots = tuple(
        replace(b, ignored=IgnoredReason.SUPERSEDED) if b is previous else b for b in state.ballots
    )
    return replace(state, ballots=(*ballots, ballot))


def _ignored_reason(
    state: VoteState, user: UserId, answers: tuple[str, ...], ts: datetime
) -> IgnoredReason | None:
    if not state.is_open or ts >= state.request.closes_at:
        return IgnoredReason.AFTER_CLOSE
    if user not in state.voters:
        return IgnoredReason.NOT_A_VOTER
    # Element spoils a response that names an unknown option; here it simply does not
    # count, and the voter's earlier answer stands.
    known = {o.id for o in state.request.options}
    if not answers or any(a not in known for a in answers):
        return IgnoredReason.UNKNOWN_OPTION
    return None


def _counted_ballot(state: VoteState, user: UserId) -> Ballot | None:
    return next((b for b in state.ballots if b.user == user and b.counted), None)


def close(
    state: VoteState, reason: CloseReason, ts: datetime, *, cancel_reason: str | None = None
) -> VoteState:
    """Close the vote; a vote closes exactly once, so closing a closed vote changes nothing."""
    _require_offset(ts)
    if not state.is_open:
        return state
    return replace(
        state,
        closed_at=ts,
        close_reason=reason,
        cancel_reason=cancel_reason if reason is CloseReason.CANCELLED else None,
    )


def due_to_close(state: VoteState, now: datetime) -> CloseReason | None:
    """Why the vote should close now, if it should."""
    _require_offset(now)
    if not state.is_open:
        return None
    # Checked first: when everyone answered in time, that is how it ended, even if the
    # bridge only looks after the deadline.
    if {b.user for b in state.counted_ballots()} >= set(state.voters):
        return CloseReason.ALL_VOTED
    if now >= state.request.closes_at:
        return CloseReason.DEADLINE
    return None


def tally(state: VoteState) -> Tally:
    counted = state.counted_ballots()
    counts = tuple(
        OptionCount(option, sum(1 for b in counted if b.option == option.id))
        for option in state.request.options
    )
    turnout = len(counted)
    quorum_reached = turnout >= state.request.quorum
    outcome = None
    if quorum_reached:
        best = max(c.count for c in counts)
        leaders = [c for c in counts if c.count == best]
        if len(leaders) == 1:
            outcome = leaders[0].option.id
    return Tally(
        counts=counts,
        turnout=turnout,
        voters=len(state.voters),
        quorum=state.request.quorum,
        quorum_reached=quorum_reached,
        outcome=outcome,
    )


# --- reports ---------------------------------------------------------------------------


def vote_completed_payload(state: VoteState) -> dict[str, Any]:
    """The `vote.completed` callback's `data` (DESIGN §4.2)."""
    if state.is_open:
        raise ValueError("vote.completed is sent only for a closed vote")
    return {
        "procurement_id": state.request.procurement_id,
        "vote_id": state.request.vote_id,
        "closed_at": _ts(state.closed_at),
        "closed_by": None if state.close_reason is None else state.close_reason.value,
        "cancel_reason": state.cancel_reason,
        "tally": tally_json(tally(state)),
        "ballots": [ballot_json(b) for b in state.ballots],
    }


def vote_view(state: VoteState) -> dict[str, Any]:
    """`GET /api/v1/procurements/{id}/votes/{vote_id}`."""
    request = state.request
    return {
        "procurement_id": request.procurement_id,
        "vote_id": request.vote_id,
        "question": request.question,
        "options": [{"id": o.id, "label": o.label} for o in request.options],
        "voters": list(state.voters),
        "quorum": request.quorum,
        "closes_at": _ts(request.closes_at),
        "disclosed": request.disclosed,
        "state": "open" if state.is_open else "closed",
        "closed_at": _ts(state.closed_at),
        "closed_by": None if state.close_reason is None else state.close_reason.value,
        "cancel_reason": state.cancel_reason,
        "tally": tally_json(tally(state)),
        "ballots": [ballot_json(b) for b in state.ballots],
    }


def tally_json(result: Tally) -> dict[str, Any]:
    return {
        "options": [
            {"id": c.option.id, "label": c.option.label, "count": c.count} for c in result.counts
        ],
        "turnout": result.turnout,
        "voters": result.voters,
        "quorum": result.quorum,
        "quorum_reached": result.quorum_reached,
        "outcome": result.outcome,
    }


def ballot_json(ballot: Ballot) -> dict[str, Any]:
    return {
        "user": ballot.user,
        "ts": _ts(ballot.ts),
        "answers": list(ballot.answers),
        "option": ballot.option,
        "counted": ballot.counted,
        "ignored": None if ballot.ignored is None else ballot.ignored.value,
    }


def _require_offset(ts: datetime) -> None:
    # closes_at always has an offset; comparing it with a naive time would raise TypeError
    # somewhere less obvious.
    if ts.utcoffset() is None:
        raise ValueError(f"a vote's times need an offset, got {ts.isoformat()}")


def _ts(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
