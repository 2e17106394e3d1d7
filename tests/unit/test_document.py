"""`document.published`, `notice.posted` and the document block shared with approvals."""

from __future__ import annotations

import base64
import contextlib
import hashlib
from datetime import date
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.domain.document import (
    DocumentInfo,
    check_document,
    check_sha256,
    parse_document_published,
    parse_notice_posted,
    sha256_hex,
)
from bridge.domain.errors import InvalidInput

PDF = b"%PDF-1.4 specification K987-02.02-001"


def published(**document: Any) -> dict[str, Any]:
    block: dict[str, Any] = {
        "type": "Спецификация",
        "number": "K987-02.02-001",
        "filename": "Spec_K987-02.02-001.pdf",
        "content_base64": base64.b64encode(PDF).decode(),
    }
    block.update(document)
    return {
        "procurement_id": "26908",
        "room": "specification:K987-02.02-001",
        "document": {k: v for k, v in block.items() if v is not None},
        "caption": "Спецификация на подпись",
    }


def invalid(data: object) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        parse_document_published(data)
    return caught.value


def test_inline_document() -> None:
    event = parse_document_published(published(sha256=hashlib.sha256(PDF).hexdigest().upper()))
    assert event.procurement_id == "26908"
    assert event.room == "specification:K987-02.02-001"
    assert event.caption == "Спецификация на подпись"
    assert event.document.content == PDF
    assert event.document.size == len(PDF)
    assert event.document.url is None
    assert event.document.info == DocumentInfo(
        filename="Spec_K987-02.02-001.pdf",
        type="Спецификация",
        number="K987-02.02-001",
        sha256=hashlib.sha256(PDF).hexdigest(),
    )


def test_url_document_with_all_fields() -> None:
    event = parse_document_published(
        published(
            content_base64=None,
            url="https://erp.example/files/1",
            series="01",
            valid_until="2022-12-31",
            mime_type="application/pdf",
        )
    )
    assert event.document.url == "https://erp.example/files/1"
    assert event.document.content is None
    assert event.document.size is None
    assert event.document.info.valid_until == date(2022, 12, 31)
    assert event.document.info.mime_type == "application/pdf"
    assert event.document.info.series == "01"


def test_base64_may_be_wrapped() -> None:
    wrapped = base64.encodebytes(PDF * 10).decode()
    assert "\n" in wrapped
    assert parse_document_published(published(content_base64=wrapped)).document.content == PDF * 10


def test_sha256_mismatch_names_the_field() -> None:
    error = invalid(published(sha256="0" * 64))
    assert error.path == "data.document.sha256"
    assert error.errcode == "ORG_PROCUREMENT_SHA256_MISMATCH"


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"content_base64": None}, "data.document.content_base64"),
        ({"url": "https://erp.example/f"}, "data.document.url"),
        ({"content_base64": "***"}, "data.document.content_base64"),
        ({"content_base64": "абв"}, "data.document.content_base64"),
        ({"content_base64": None, "url": "ftp://erp.example/f"}, "data.document.url"),
        ({"content_base64": None, "url": "javascript:alert(1)"}, "data.document.url"),
        ({"content_base64": None, "url": "https://"}, "data.document.url"),
        ({"content_base64": None, "url": "https://[::1"}, "data.document.url"),
        ({"content_base64": None, "url": "https://a.example/x\ty"}, "data.document.url"),
        ({"filename": "../etc/passwd"}, "data.document.filename"),
        ({"filename": "a\\b.pdf"}, "data.document.filename"),
        ({"filename": ".."}, "data.document.filename"),
        ({"filename": "a\nb"}, "data.document.filename"),
        ({"filename": None}, "data.document.filename"),
        ({"sha256": "xyz"}, "data.document.sha256"),
        ({"mime_type": "pdf"}, "data.document.mime_type"),
        ({"valid_until": "31.12.2022"}, "data.document.valid_until"),
        ({"number": 5}, "data.document.number"),
    ],
)
def test_bad_document(change: dict[str, Any], path: str) -> None:
    data = published()
    for key, value in change.items():
        if value is None:
            data["document"].pop(key, None)
        else:
            data["document"][key] = value
    assert invalid(data).path == path


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"procurement_id": "a/b"}, "data.procurement_id"),
        ({"procurement_id": ""}, "data.procurement_id"),
        ({"room": "lobby"}, "data.room"),
        ({"room": "supplier:"}, "data.room"),
        ({"room": "supplier:a b"}, "data.room"),
        ({"room": None}, "data.room"),
        ({"document": "file.pdf"}, "data.document"),
        ({"caption": ["x"]}, "data.caption"),
    ],
)
def test_bad_envelope(change: dict[str, Any], path: str) -> None:
    data = published()
    data.update(change)
    assert invalid(data).path == path


@pytest.mark.parametrize(
    "room",
    ["org", "commission", "supplier:torgprofi", "approval:A-17", "shipment:SH-1"],
)
def test_room_keys(room: str) -> None:
    data = published()
    data["room"] = room
    assert parse_document_published(data).room == room


def test_notice() -> None:
    notice = parse_notice_posted(
        {"procurement_id": "26908", "room": "org", "markdown": "**Внимание**: приёмка завтра"}
    )
    assert notice.room == "org"
    assert notice.markdown.startswith("**")
    with pytest.raises(InvalidInput) as caught:
        parse_notice_posted({"procurement_id": "26908", "room": "org"})
    assert caught.value.path == "data.markdown"
    assert caught.value.errcode == "M_MISSING_PARAM"
    with pytest.raises(InvalidInput) as caught:
        parse_notice_posted({"procurement_id": "26908", "room": "org", "markdown": "x" * 20_000})
    assert caught.value.path == "data.markdown"


def test_size_check() -> None:
    check_document(1024, 1024)
    with pytest.raises(InvalidInput) as caught:
        check_document(1025, 1024)
    assert caught.value.errcode == "M_TOO_LARGE"
    assert caught.value.path == "data.document"


def test_sha256_check() -> None:
    check_sha256(PDF, hashlib.sha256(PDF).hexdigest())
    check_sha256(PDF, hashlib.sha256(PDF).hexdigest().upper())
    assert sha256_hex(b"") == hashlib.sha256(b"").hexdigest()
    with pytest.raises(InvalidInput) as caught:
        check_sha256(PDF + b"!", hashlib.sha256(PDF).hexdigest(), "data.x.sha256")
    assert caught.value.path == "data.x.sha256"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


@given(json_values)
def test_parse_raises_only_invalid_input(data: object) -> None:
    for parse in (parse_document_published, parse_notice_posted):
        with contextlib.suppress(InvalidInput):
            parse(data)


@given(
    st.sampled_from(["procurement_id", "room", "document", "caption"]),
    st.sampled_from(
        ["filename", "content_base64", "url", "sha256", "valid_until", "mime_type", "type"]
    ),
    json_values,
)
def test_one_bad_field_raises_only_invalid_input(top: str, inner: str, value: object) -> None:
    data = published()
    data[top] = value
    with contextlib.suppress(InvalidInput):
        parse_document_published(data)
    data = published()
    data["document"][inner] = value
    with contextlib.suppress(InvalidInput):
        parse_document_published(data)
