"""Hypothesis strategies for what a homeserver could push in a transaction, sane or not: events
with missing or wrongly typed fields, huge strings, NULs, deep nesting, unknown types, state
events with odd state keys, and events that claim the rooms the bridge manages."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from bridge.domain.nesting import MAX_NESTING

MISSING = object()  # a field left out of the event altogether

# What the bridge reads and reacts to, so that generated events reach its handlers.
EVENT_TYPES = (
    "m.room.message",
    "m.room.member",
    "m.room.power_levels",
    "m.room.join_rules",
    "m.room.name",
    "m.room.topic",
    "m.room.create",
    "m.room.redaction",
    "m.room.tombstone",
    "m.room.pinned_events",
    "m.room.avatar",
    "m.room.encrypted",
    "m.space.child",
    "m.space.parent",
    "m.reaction",
    "org.matrix.msc3381.poll.start",
    "org.matrix.msc3381.poll.response",
    "m.poll.response",
    "org.matrix.msc3381.poll.end",
    "org.procurement.context",
)
EPHEMERAL_TYPES = ("m.receipt", "m.typing", "m.presence")
# The first words of the assistant's commands, so that messages reach the command table.
COMMAND_WORDS = (
    "help",
    "помощь",
    "меню",
    "статус",
    "status",
    "мои задачи",
    "tasks",
    "поиск",
    "search",
    "!поиск",
    "/search",
    "ещё",
    "more",
    "голосование",
    "документы",
    "кто видел",
    "seen",
    "согласовать",
    "отклонить",
    "заявка",
    "request",
    "отмена",
    "cancel",
    "✅ Подтвердить",
    "➡️ Ещё",
)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
odd_text = st.one_of(
    st.text(max_size=30),
    st.just(""),
    st.text(alphabet=st.sampled_from("\x00\x01\x7f\u202e\ufeff\ud800 \n\t%'\"\\;*:"), max_size=12),
    st.integers(min_value=1, max_value=100_000).map(lambda n: "я" * n),  # huge
    st.text(max_size=8).map(lambda t: f"{t}\x00{t}"),
)


@dataclass(frozen=True)
class Scene:
    """The real things generated events may claim: rooms the bridge manages, a direct chat,
    people, the bot."""

    managed_rooms: Sequence[str]
    direct_chat: str
    people: Sequence[str]
    bot: str


def mostly(sane: st.SearchStrategy[Any], *odd: st.SearchStrategy[Any]) -> Any:
    """`sane` two times in three: chosen by a sampled index, as a one_of keeps no proportions."""
    return st.sampled_from([sane] * (2 * len(odd)) + list(odd)).flatmap(lambda chosen: chosen)


def _one_of_or_odd(values: Sequence[str], wrong: st.SearchStrategy[Any]) -> Any:
    return mostly(st.sampled_from(list(values)), odd_text, wrong, st.just(MISSING))


def _wrong_type() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.integers(), st.booleans(), st.none(), st.lists(json_scalars, max_size=3), json_values
    )


def _contents(scene: Scene) -> st.SearchStrategy[Any]:
    """What the bridge looks inside: message bodies (commands among them), relations, polls
    answers, memberships, power levels, with their fields sane, absent or of another type."""
    text_or_odd = st.one_of(
        st.tuples(st.sampled_from(COMMAND_WORDS), st.text(max_size=20)).map(" ".join),
        odd_text,
        _wrong_type(),
    )
    relation = st.fixed_dictionaries(
        {},
        optional={
            "rel_type": st.sampled_from(["m.replace", "m.annotation", "m.reference", "x"])
            | _wrong_type(),
            "event_id": st.text(max_size=12).map(lambda t: f"${t}") | _wrong_type(),
            "key": st.sampled_from(["✅ Подтвердить", "✖️ Отмена", "📊 Статус", "1. шт"])
            | odd_text,
            "m.in_reply_to": st.fixed_dictionaries({"event_id": odd_text}) | _wrong_type(),
        },
    )
    fields = {
        "msgtype": st.sampled_from(["m.text", "m.notice", "m.file", "m.image", "m.emote"])
        | _wrong_type(),
        "body": text_or_odd,
        "format": st.just("org.matrix.custom.html") | _wrong_type(),
        "formatted_body": odd_text,
        "url": st.text(max_size=20).map(lambda t: f"mxc://localhost/{t}") | _wrong_type(),
        "info": st.fixed_dictionaries({}, optional={"mimetype": odd_text, "size": json_scalars})
        | _wrong_type(),
        "filename": odd_text,
        "m.relates_to": relation | _wrong_type(),
        "m.new_content": st.deferred(lambda: _flat_content()) | _wrong_type(),
        "membership": st.sampled_from(["invite", "join", "leave", "ban", "knock"]) | _wrong_type(),
        "is_direct": st.booleans() | _wrong_type(),
        "join_rule": st.sampled_from(["invite", "public", "knock"]) | _wrong_type(),
        "users": st.dictionaries(
            st.sampled_from([*scene.people, scene.bot]) | odd_text,
            st.integers(-(2**70), 2**70) | _wrong_type(),
            max_size=3,
        )
        | _wrong_type(),
        "events_default": st.integers(-(2**70), 2**70) | _wrong_type(),
        "redacts": odd_text,
        "name": odd_text,
        "replacement_room": odd_text,
        "pinned": st.lists(odd_text, max_size=3) | _wrong_type(),
        "answers": st.lists(st.sampled_from(["for", "against", "abstain"]) | odd_text, max_size=3)
        | _wrong_type(),
        "org.matrix.msc3381.poll.response": st.fixed_dictionaries({"answers": _wrong_type()})
        | _wrong_type(),
        "m.poll.response": st.fixed_dictionaries(
            {"answers": st.lists(st.sampled_from(["for", "against"]), max_size=2)}
        )
        | _wrong_type(),
        "via": st.lists(odd_text, max_size=2) | _wrong_type(),
    }
    return mostly(st.fixed_dictionaries({}, optional=fields), _wrong_type(), st.just(MISSING))


def _flat_content() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {}, optional={"msgtype": st.just("m.text") | _wrong_type(), "body": odd_text}
    )


def events(scene: Scene) -> st.SearchStrategy[dict[str, Any]]:
    """One event as the homeserver might push it, its id fresh so that it is processed: most
    with an envelope as the spec has it and odd contents (what reaches the handlers), some with
    envelope fields missing or of another type."""
    return st.one_of(_events(scene, sound=True), _events(scene, sound=True), _events(scene))


def _events(scene: Scene, *, sound: bool = False) -> st.SearchStrategy[dict[str, Any]]:
    rooms = [*scene.managed_rooms, scene.direct_chat]
    senders = [*scene.people, scene.bot]
    unsigned = st.fixed_dictionaries(
        {},
        optional={
            "redacted_because": json_values,
            "age": json_scalars,
            "prev_content": json_values,
        },
    )
    timestamps = st.integers(min_value=0, max_value=2**41)
    contents = _contents(scene)
    if sound:
        envelope = {
            "type": st.sampled_from(EVENT_TYPES),
            "room_id": st.sampled_from(rooms),
            "sender": st.sampled_from(senders),
            "state_key": st.one_of(st.just(MISSING), st.just(""), st.sampled_from(senders)),
            "content": contents.filter(lambda c: isinstance(c, dict)),
            "origin_server_ts": timestamps,
        }
    else:
        envelope = {
            "type": mostly(st.sampled_from(EVENT_TYPES), odd_text),
            "room_id": _one_of_or_odd(rooms, _wrong_type()),
            "sender": _one_of_or_odd(senders, _wrong_type()),
            "state_key": st.one_of(
                st.just(MISSING), st.just(""), st.sampled_from(senders), odd_text, _wrong_type()
            ),
            "content": contents,
            "origin_server_ts": st.one_of(
                timestamps,
                st.integers(min_value=-(2**80), max_value=2**80),
                _wrong_type(),
                st.just(MISSING),
            ),
        }
    fields = st.fixed_dictionaries(
        {
            **envelope,
            "redacts": st.one_of(st.just(MISSING), odd_text),
            "unsigned": st.one_of(st.just(MISSING), unsigned, _wrong_type()),
        }
    )
    return fields.map(_with_fresh_id)


def _with_fresh_id(fields: dict[str, Any]) -> dict[str, Any]:
    event = {"event_id": f"$fuzz-{uuid.uuid4().hex}"}
    event.update({name: value for name, value in fields.items() if value is not MISSING})
    return event


def ephemeral_events(scene: Scene) -> st.SearchStrategy[dict[str, Any]]:
    rooms = [*scene.managed_rooms, scene.direct_chat]
    receipt_content = st.dictionaries(
        odd_text,
        st.fixed_dictionaries(
            {},
            optional={
                "m.read": st.dictionaries(
                    st.sampled_from(list(scene.people)) | odd_text,
                    st.fixed_dictionaries({}, optional={"ts": json_scalars}) | _wrong_type(),
                    max_size=2,
                )
                | _wrong_type(),
                "m.read.private": json_values,
            },
        )
        | _wrong_type(),
        max_size=3,
    )
    return st.fixed_dictionaries(
        {"type": st.one_of(st.sampled_from(EPHEMERAL_TYPES), odd_text)},
        optional={
            "room_id": st.one_of(st.sampled_from(rooms), odd_text, _wrong_type()),
            "content": receipt_content | _wrong_type(),
        },
    )


def deeply_nested(depth: int) -> str:
    """A content nested `depth` objects deep, as raw JSON text (a Python dict that deep could
    not be serialised by the sender)."""
    return '{"a":' * depth + "1" + "}" * depth


@dataclass(frozen=True)
class Transaction:
    """A transaction's body as raw bytes, and whether it must be stored (answered 200) or
    refused (a 4xx)."""

    body: bytes
    well_formed: bool


def _well_formed(events_: list[dict[str, Any]], edus: list[dict[str, Any]]) -> bool:
    """What the appservice API must take (DESIGN §4.5: stored, answered 200): every event an
    object with a string id and type, every ephemeral event an object with a string type."""
    return all(
        isinstance(e.get("event_id"), str) and isinstance(e.get("type"), str) for e in events_
    ) and all(isinstance(e.get("type"), str) for e in edus)


def transactions(scene: Scene) -> st.SearchStrategy[Transaction]:
    """Mostly well-formed transactions of odd events; some with an event whose id or type is
    missing or of another type, some nested too deep, some not a transaction at all."""
    normal = st.builds(
        _transaction,
        st.lists(events(scene), min_size=1, max_size=4),
        st.lists(ephemeral_events(scene), max_size=2),
        st.sampled_from(["ephemeral", "de.sorunome.msc2409.ephemeral"]),
        mostly(st.just(True), st.just(False)),
    )
    broken_event = st.builds(
        _transaction,
        st.lists(
            st.one_of(
                events(scene).map(lambda e: {k: v for k, v in e.items() if k != "event_id"}),
                events(scene).map(lambda e: {**e, "type": 7}),
                _wrong_type(),
            ),
            min_size=1,
            max_size=2,
        ),
        st.just([]),
        st.just("ephemeral"),
        st.booleans(),
    )
    nested = st.one_of(
        st.integers(min_value=MAX_NESTING - 5, max_value=MAX_NESTING + 5),
        st.integers(min_value=2, max_value=100_000),
    ).map(_nested_transaction)
    not_a_transaction = st.one_of(
        json_values.map(lambda v: Transaction(json.dumps(v).encode(), False)),
        st.binary(max_size=40).map(lambda b: Transaction(b, False)),
    )
    # Most transactions carry events that the handlers get to read.
    return mostly(normal, broken_event, nested, not_a_transaction)


def _transaction(
    events_: list[Any], edus: list[dict[str, Any]], ephemeral_key: str, escaped: bool
) -> Transaction:
    """`escaped`: non-ASCII as `\\u` escapes, as Synapse sends it (a lone surrogate is then
    valid JSON); otherwise as UTF-8, where a lone surrogate makes the body no UTF-8 at all."""
    body: dict[str, Any] = {"events": events_}
    if edus:
        body[ephemeral_key] = edus
    well_formed = all(isinstance(e, dict) for e in events_) and _well_formed(events_, edus)
    text = json.dumps(body, ensure_ascii=escaped)
    return Transaction(text.encode("utf-8", "surrogatepass"), well_formed and _utf8(text))


def _nested_transaction(depth: int) -> Transaction:
    event = (
        f'{{"event_id": "$fuzz-{uuid.uuid4().hex}", "type": "m.room.message", '
        f'"room_id": "!nowhere:localhost", "sender": "@someone:localhost", '
        f'"content": {deeply_nested(depth)}}}'
    )
    # The transaction, its events and the event are three levels above the content.
    return Transaction(f'{{"events": [{event}]}}'.encode(), depth + 3 <= MAX_NESTING)


def _utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True
