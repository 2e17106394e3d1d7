"""JSON and events from outside, bounded and made storable before anything reads them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.domain.errors import InvalidInput
from bridge.domain.incoming import envelope_problem, storable
from bridge.domain.nesting import MAX_NESTING, check_nesting

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for i in range(depth):
        value = {"a": value} if i % 2 else [value]
    return value


def test_nesting_up_to_the_limit_is_taken() -> None:
    check_nesting(nested(MAX_NESTING))


def test_nesting_beyond_the_limit_is_refused_where_it_happens() -> None:
    with pytest.raises(InvalidInput) as refused:
        check_nesting({"data": nested(MAX_NESTING)})
    assert refused.value.errcode == "M_BAD_JSON"
    assert refused.value.path.startswith("data.a[0].a[0].a")


def test_nesting_far_beyond_the_stack_is_measured_not_a_crash() -> None:
    deep = nested(100_000)
    with pytest.raises(InvalidInput):
        check_nesting(deep)


@given(json_values)
def test_storable_text_has_no_nul_and_is_utf8(value: Any) -> None:
    text = json.dumps(storable(value), ensure_ascii=False)
    assert "\\u0000" not in text
    text.encode("utf-8")  # no lone surrogate left


def test_storable_keeps_what_is_storable() -> None:
    event = {"content": {"body": "Привет", "n": [1, 2.5, None, True]}, "sender": "@a:b"}
    assert storable(event) == event
    assert storable({"a\x00": ["\ud800x"]}) == {"a\ufffd": ["\ufffdx"]}


SOUND = {
    "event_id": "$e",
    "type": "m.room.message",
    "room_id": "!r:hs",
    "sender": "@a:hs",
    "origin_server_ts": 1_700_000_000_000,
    "content": {},
}


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({}, None),
        ({"state_key": ""}, None),
        ({"room_id": 5}, "room_id is not a string"),
        ({"sender": None}, "sender is not a string"),
        ({"content": [1]}, "content is not an object"),
        ({"state_key": 0}, "state_key is not a string"),
        ({"redacts": ["$x"]}, "redacts is not a string"),
        ({"origin_server_ts": 2**70}, "origin_server_ts is not a time in milliseconds"),
        ({"origin_server_ts": True}, "origin_server_ts is not a time in milliseconds"),
    ],
)
def test_envelope(change: dict[str, Any], problem: str | None) -> None:
    assert envelope_problem({**SOUND, **change}) == problem


def test_an_event_without_a_time_is_read_at_its_arrival() -> None:
    assert envelope_problem({k: v for k, v in SOUND.items() if k != "origin_server_ts"}) is None
