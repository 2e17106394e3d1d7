"""The webhook envelope `{"type", "data"}` (DESIGN §4.1): which parser reads which type."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .approval import parse_approval_cancel, parse_approval_request
from .document import parse_document_published, parse_notice_posted
from .errors import InvalidInput
from .reader import Reader
from .request_form import parse_request_accepted, parse_request_rejected
from .snapshot import Snapshot, parse_snapshot
from .vote import parse_vote_cancel, parse_vote_request

# Each type's parser takes the `data` object and the path to name in its errors.
PARSERS: Mapping[str, Callable[[object, str], object]] = {
    "procurement.upserted": parse_snapshot,
    "vote.requested": parse_vote_request,
    "vote.cancelled": parse_vote_cancel,
    "approval.requested": parse_approval_request,
    "approval.cancelled": parse_approval_cancel,
    "document.published": parse_document_published,
    "notice.posted": parse_notice_posted,
    "request.accepted": parse_request_accepted,
    "request.rejected": parse_request_rejected,
}
WEBHOOK_TYPES: tuple[str, ...] = tuple(PARSERS)


@dataclass(frozen=True, slots=True)
class ParsedWebhook:
    type: str
    # None only for a cancellation that does not name its procurement.
    procurement_id: str | None
    value: object  # Snapshot, VoteRequest, VoteCancel, ApprovalRequest, …


def parse_webhook(body: object) -> ParsedWebhook:
    """Check a decoded webhook body; any fault raises InvalidInput with the field's path.

    Fields the contract does not name are ignored, so a sender may add some before we do.
    """
    envelope = Reader(body, "")  # refuses anything but an object
    assert isinstance(body, Mapping)
    type_ = envelope.text("type", max_len=100)
    parse = PARSERS.get(type_)
    if parse is None:
        raise InvalidInput(
            "type",
            f"unknown webhook type {type_!r}; expected one of {', '.join(WEBHOOK_TYPES)}",
            "M_INVALID_PARAM",
        )
    if not envelope.has("data"):
        raise InvalidInput("data", "required field is missing", "M_MISSING_PARAM")
    value = parse(body["data"], "data")
    return ParsedWebhook(type=type_, procurement_id=_procurement_id(value), value=value)


def _procurement_id(value: object) -> str | None:
    if isinstance(value, Snapshot):
        return value.id
    procurement_id = getattr(value, "procurement_id", None)
    return procurement_id if isinstance(procurement_id, str) else None
