"""Matrix event contents the bot sends and reads: polls as Element sends them (MSC3381 as in
matrix-js-sdk, DESIGN §4.5), formatted notices and their in-place edits."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .card import Card
from .cards import vote_result_card, voting_card
from .ids import EventId
from .locale import Locale
from .vote import VoteState

# Every event the bridge sends carries its outbox row id: a retry after a crash finds an
# earlier success by it, and the event's echo tells which row it was.
OUTBOX_MARKER = "org.procurement.outbox_id"
POLL_START = "org.matrix.msc3381.poll.start"
POLL_END = "org.matrix.msc3381.poll.end"
POLL_RESPONSE_TYPES = ("org.matrix.msc3381.poll.response", "m.poll.response")
POLL_DISCLOSED = "org.matrix.msc3381.poll.disclosed"
POLL_UNDISCLOSED = "org.matrix.msc3381.poll.undisclosed"
TEXT = "org.matrix.msc1767.text"
HTML_FORMAT = "org.matrix.custom.html"

# Matrix refuses an event whose canonical JSON exceeds 65,536 bytes. The content is most of it;
# the homeserver adds the envelope (room, sender and event ids, up to 20 prev and a few auth
# event ids, hashes, signatures: 1-3 KB), and the sender adds its outbox marker. 5,536 bytes
# are room enough for all of that, while 60,000 still hold an edit of the largest card.
MAX_CONTENT_BYTES = 60_000
# Where `fit_content` cut a text. Without words, as the locale is not known there; callers
# that know it pass WORDS[locale]["message_cut"].
CUT_MARK = "… ✂"
# A poll's fallback text keeps at least this much before its question and answers are cut:
# without it, clients that cannot show polls would show an empty message.
_POLL_FALLBACK_FLOOR = 1_000


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


def fit_content(
    content: Mapping[str, Any], max_bytes: int = MAX_CONTENT_BYTES, marker: str = CUT_MARK
) -> dict[str, Any]:
    """`content` as it may be sent: unchanged if its JSON fits in `max_bytes`, else with its
    texts cut (each ending in `marker`) so that clients still show something sensible.

    A message, or both parts of its edit, loses its HTML first, then its body is cut. A poll
    loses its fallback text first, then its question and answer labels are cut; its answer
    ids and their number never change. Raises ValueError when even that is too large: such
    content can never be sent.
    """
    if content_bytes(content) <= max_bytes:
        return dict(content)
    fitted = copy.deepcopy(dict(content))
    if isinstance(fitted.get(POLL_START), dict):
        _fit_poll(fitted, max_bytes, marker)
    else:
        _fit_message(fitted, max_bytes, marker)
    size = content_bytes(fitted)
    if size > max_bytes:
        raise ValueError(
            f"the event content takes {size} bytes even with its texts cut, "
            f"over the {max_bytes} a Matrix event may hold"
        )
    return fitted


def content_bytes(content: Mapping[str, Any]) -> int:
    """The size of `content` as the homeserver counts it: compact JSON in UTF-8."""
    text = json.dumps(content, ensure_ascii=False, separators=(",", ":"))
    return len(text.encode("utf-8", "surrogatepass"))


def _fit_message(content: dict[str, Any], max_bytes: int, marker: str) -> None:
    new_content = content.get("m.new_content")
    parts = [content, new_content] if isinstance(new_content, dict) else [content]
    # The plain body says it all without the HTML; the edit's fallback goes first, being
    # read only by clients that do not know edits.
    for part in parts:
        if content_bytes(content) <= max_bytes:
            return
        part.pop("formatted_body", None)
        part.pop("format", None)
    texts = [
        (part, key) for part in parts for key in ("body", TEXT) if isinstance(part.get(key), str)
    ]
    _cut_texts(content, texts, max_bytes, marker)


def _fit_poll(content: dict[str, Any], max_bytes: int, marker: str) -> None:
    if isinstance(content.get(TEXT), str):
        # Clients that show the poll never read its fallback text: it gives way first.
        fallback = content[TEXT]
        content[TEXT] = ""
        room = max(max_bytes - content_bytes(content), _POLL_FALLBACK_FLOOR)
        content[TEXT] = _cut_text(fallback, room, marker)
    if content_bytes(content) <= max_bytes:
        return
    poll = content[POLL_START]
    labels = [poll.get("question"), *(poll.get("answers") or [])]
    texts = [
        (label, TEXT)
        for label in labels
        if isinstance(label, dict) and isinstance(label.get(TEXT), str)
    ]
    _cut_texts(content, texts, max_bytes, marker)


def _cut_texts(
    content: dict[str, Any],
    texts: Sequence[tuple[dict[str, Any], str]],
    max_bytes: int,
    marker: str,
) -> None:
    """Cuts the texts (each a mapping and its key) to one common size, the largest with which
    `content` fits: short texts stay whole, long ones share what the short ones leave."""
    originals = [holder[key] for holder, key in texts]
    for holder, key in texts:
        holder[key] = ""
    room = max_bytes - content_bytes(content)
    cap = _common_cap([_text_bytes(text) for text in originals], room)
    for (holder, key), text in zip(texts, originals, strict=True):
        holder[key] = _cut_text(text, cap, marker)


def _common_cap(sizes: Sequence[int], room: int) -> int:
    """The largest cap for which the sizes, each capped, add up to no more than `room`."""
    low, high = 0, max(sizes, default=0)
    while low < high:
        middle = (low + high + 1) // 2
        if sum(min(size, middle) for size in sizes) <= room:
            low = middle
        else:
            high = middle - 1
    return low


def _cut_text(text: str, max_bytes: int, marker: str) -> str:
    """The longest start of `text` that, with `marker`, takes at most `max_bytes` in JSON;
    `text` itself if it fits, "" if not even the marker does."""
    if _text_bytes(text) <= max_bytes:
        return text
    room = max_bytes - _text_bytes(marker)
    if room < 0:
        return ""
    # A longer start never takes fewer bytes: bisect for the longest that fits.
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if _text_bytes(text[:middle]) <= room:
            low = middle
        else:
            high = middle - 1
    return text[:low] + marker


def _text_bytes(text: str) -> int:
    """What `text` takes inside a JSON string (escapes counted), without its quotes."""
    return len(json.dumps(text, ensure_ascii=False).encode("utf-8", "surrogatepass")) - 2
