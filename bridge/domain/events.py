"""Matrix event contents the bot sends and reads: polls as Element sends them (MSC3381 as in
matrix-js-sdk, DESIGN §4.5), formatted notices and their in-place edits."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .cards import Card, vote_result_card, voting_card
from .ids import EventId
from .locale import Locale
from .vote import VoteState

POLL_START = "org.matrix.msc3381.poll.start"
POLL_END = "org.matrix.msc3381.poll.end"
POLL_RESPONSE_TYPES = ("org.matrix.msc3381.poll.response", "m.poll.response")
POLL_DISCLOSED = "org.matrix.msc3381.poll.disclosed"
POLL_UNDISCLOSED = "org.matrix.msc3381.poll.undisclosed"
TEXT = "org.matrix.msc1767.text"
HTML_FORMAT = "org.matrix.custom.html"


def poll_start_content(
    question: str, answers: Sequence[tuple[str, str]], disclosed: bool, fallback_text: str
) -> dict[str, Any]:
    """Content of an `org.matrix.msc3381.poll.start` event; `answers` are (id, label)."""
    return {
        POLL_START: {
            "question": {TEXT: question},
            "kind": POLL_DISCLOSED if disclosed else POLL_UNDISCLOSED,
            "max_selections": 1,
            "answers": [{"id": answer_id, TEXT: label} for answer_id, label in answers],
        },
        TEXT: fallback_text,
    }


def vote_poll_content(state: VoteState, locale: Locale = Locale.RU) -> dict[str, Any]:
    """The vote's poll; clients that cannot show polls get the voting card as text."""
    request = state.request
    return poll_start_content(
        request.question,
        [(o.id, o.label) for o in request.options],
        request.disclosed,
        voting_card(state, locale).body,
    )


def vote_poll_end_content(
    poll_event_id: EventId, state: VoteState, locale: Locale = Locale.RU
) -> dict[str, Any]:
    """The end of the vote's poll, with the result card as its text."""
    return poll_end_content(poll_event_id, vote_result_card(state, locale).body)


def poll_end_content(poll_event_id: EventId, text: str) -> dict[str, Any]:
    """Content of an `org.matrix.msc3381.poll.end` event closing the poll."""
    return {
        "m.relates_to": {"rel_type": "m.reference", "event_id": poll_event_id},
        POLL_END: {},
        TEXT: text,
    }


def parse_poll_response(content: Mapping[str, Any]) -> tuple[EventId, tuple[str, ...]] | None:
    """(poll event id, answer ids) of a poll response, None if it is not one.

    Malformed answers (not a list of strings) come back as no answers: the vote then
    records the response as naming no option instead of losing it.
    """
    relation = content.get("m.relates_to")
    if not isinstance(relation, Mapping) or relation.get("rel_type") != "m.reference":
        return None
    poll_event_id = relation.get("event_id")
    if not isinstance(poll_event_id, str) or not poll_event_id:
        return None
    response = next(
        (content[key] for key in POLL_RESPONSE_TYPES if isinstance(content.get(key), Mapping)),
        None,
    )
    if response is None:
        return None
    answers = response.get("answers")
    if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
        return EventId(poll_event_id), ()
    return EventId(poll_event_id), tuple(answers)


def card_content(card: Card, msgtype: str = "m.notice") -> dict[str, Any]:
    """A formatted message. The empty `m.mentions` keeps names on a card from pinging."""
    return {
        "msgtype": msgtype,
        "body": card.body,
        "format": HTML_FORMAT,
        "formatted_body": card.html,
        "m.mentions": {},
    }


def edit_content(original_event_id: EventId, new_content: Mapping[str, Any]) -> dict[str, Any]:
    """An `m.replace` edit; clients without edits see the "* " fallback. Mentions stay
    empty so that an edited card pings nobody."""
    fallback = dict(new_content)
    for key in ("body", "formatted_body"):
        if isinstance(fallback.get(key), str):
            fallback[key] = f"* {fallback[key]}"
    return {
        **fallback,
        "m.new_content": dict(new_content),
        "m.relates_to": {"rel_type": "m.replace", "event_id": original_event_id},
        "m.mentions": {},
    }


def pinned_events_content(event_ids: Iterable[EventId]) -> dict[str, Any]:
    """Content of `m.room.pinned_events` state."""
    return {"pinned": list(dict.fromkeys(event_ids))}
