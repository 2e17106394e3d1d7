"""The log's entries: canonical (RFC 8785) whatever the payload holds, large payloads kept as
blobs, and the blobs an entry needs found wherever its payload names a file."""

from __future__ import annotations

import hashlib
import json

from hypothesis import given
from hypothesis import strategies as st

from bridge.domain.audit import (
    INLINE_LIMIT,
    Record,
    blob_refs,
    canonical,
    entry_of,
    file_ref,
)

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def record(payload: object) -> Record:
    return Record("vote.result", 1_764_600_000_000, "P-1", "!r:hs", "V-7", json.dumps(payload))


def test_an_entry_is_canonical_and_carries_its_payload_and_hash() -> None:
    entry = entry_of(41, record({"b": 1, "a": "ю"}))
    assert entry.data == (
        b'{"index":41,"kind":"vote.result","payload":{"a":"\xd1\x8e","b":1},'
        b'"payload_sha256":"'
        + hashlib.sha256('{"a":"ю","b":1}'.encode()).hexdigest().encode()
        + b'","procurement":"P-1","room":"!r:hs","subject":"V-7","time":1764600000000}'
    )
    assert entry.blob is None


def test_a_large_payload_becomes_a_blob_named_by_its_hash() -> None:
    payload = {"body": "щ" * INLINE_LIMIT}
    entry = entry_of(0, record(payload))
    assert entry.blob is not None
    assert hashlib.sha256(entry.blob).hexdigest() == entry.payload_sha256
    parsed = json.loads(entry.data)
    assert "payload" not in parsed
    assert blob_refs(parsed) == {entry.payload_sha256}
    assert len(entry.data) < 1024


def test_what_json_text_may_hold_and_canonical_json_may_not_is_kept_readably() -> None:
    text = (
        '{"big": 123456789012345678901234567890, "nan": NaN, "lone": "\\ud800x", "nul": "\\u0000"}'
    )
    data = json.loads(canonical(json.loads(text)))
    assert data == {
        "big": "123456789012345678901234567890",
        "nan": "nan",
        "lone": "\ufffdx",
        "nul": "\x00",
    }


def test_files_named_anywhere_in_a_payload_are_needed() -> None:
    document = file_ref("a" * 64, 10)
    signature = file_ref("b" * 64, 3)
    entry = json.loads(entry_of(3, record({"file": document, "deep": [{"x": signature}]})).data)
    assert blob_refs(entry) == {"a" * 64, "b" * 64}
    # Something that only looks like it (more keys, a bad hash) is not a file.
    other = json.loads(entry_of(4, record({"sha256": "a" * 64, "size": 1, "name": "x"})).data)
    assert blob_refs(other) == set()
    assert blob_refs(json.loads(entry_of(5, record({"sha256": "zz", "size": 1})).data)) == set()


@given(JSON)
def test_any_payload_makes_an_entry_that_is_its_own_canonical_form(payload: object) -> None:
    entry = entry_of(7, record(payload))
    parsed = json.loads(entry.data)
    assert canonical(parsed) == entry.data
    assert parsed["index"] == 7
