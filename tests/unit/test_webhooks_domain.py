"""The webhook envelope: DESIGN §4.1's examples parse, and every fault names its exact path."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from bridge.domain.approval import ApprovalCancel, ApprovalRequest
from bridge.domain.document import DocumentPublished, NoticePosted
from bridge.domain.errors import InvalidInput
from bridge.domain.snapshot import Snapshot
from bridge.domain.vote import VoteCancel, VoteRequest
from bridge.domain.webhooks import WEBHOOK_TYPES, parse_webhook

DESIGN = Path(__file__).parents[2] / "docs" / "DESIGN.md"
# The approval example stands for a document's bytes and their hash with placeholders.
PDF = b"%PDF-1.4\n"
PLACEHOLDERS = {
    '"content_base64": "..."': f'"content_base64": "{base64.b64encode(PDF).decode()}"',
    '"sha256": "hex"': f'"sha256": "{hashlib.sha256(PDF).hexdigest()}"',
}


@cache
def _design_examples() -> tuple[str, ...]:
    text = DESIGN.read_text(encoding="utf-8")
    section = text[text.index("### 4.1") : text.index("### 4.2")]
    blocks = re.findall(r"```json\n(.*?)```", section, re.DOTALL)
    for placeholder, value in PLACEHOLDERS.items():
        blocks = [block.replace(placeholder, value) for block in blocks]
    return tuple(blocks)


def design_examples() -> dict[str, dict[str, Any]]:
    """DESIGN §4.1's JSON examples by type (placeholders filled in), fresh copies."""
    return {body["type"]: body for body in map(json.loads, _design_examples())}


def more_examples() -> dict[str, dict[str, Any]]:
    """The types DESIGN describes in words only, written as it describes them."""
    return {
        "vote.cancelled": {
            "type": "vote.cancelled",
            "data": {"procurement_id": "26908", "vote_id": "V-174", "reason": "Отозвано"},
        },
        "approval.cancelled": {
            "type": "approval.cancelled",
            "data": {"procurement_id": "26908", "approval_id": "A-17", "reason": "Отозвано"},
        },
        "document.published": {
            "type": "document.published",
            "data": {
                "procurement_id": "26908",
                "room": "supplier:torgprofi",
                "document": {
                    "type": "ДС к договору",
                    "filename": "DS-3.pdf",
                    "url": "https://erp.example/files/DS-3.pdf",
                },
                "caption": "Дополнительное соглашение № 3",
            },
        },
        "notice.posted": {
            "type": "notice.posted",
            "data": {"procurement_id": "26908", "room": "org", "markdown": "**Срок** продлён"},
        },
        "request.accepted": {
            "type": "request.accepted",
            "data": {"request_id": "req_5f1c", "number": "З-2026-0142"},
        },
        "request.rejected": {
            "type": "request.rejected",
            "data": {"request_id": "req_5f1c", "reason": "Нет в плане закупок"},
        },
    }


def all_examples() -> dict[str, dict[str, Any]]:
    return {**design_examples(), **more_examples()}


def test_design_has_the_three_examples() -> None:
    assert set(design_examples()) == {
        "procurement.upserted",
        "vote.requested",
        "approval.requested",
    }


def test_every_type_has_an_example() -> None:
    assert set(all_examples()) == set(WEBHOOK_TYPES)
    assert len(WEBHOOK_TYPES) == 9


@pytest.mark.parametrize(
    ("webhook_type", "value_type"),
    [
        ("procurement.upserted", Snapshot),
        ("vote.requested", VoteRequest),
        ("vote.cancelled", VoteCancel),
        ("approval.requested", ApprovalRequest),
        ("approval.cancelled", ApprovalCancel),
        ("document.published", DocumentPublished),
        ("notice.posted", NoticePosted),
    ],
)
def test_examples_parse(webhook_type: str, value_type: type) -> None:
    parsed = parse_webhook(all_examples()[webhook_type])
    assert parsed.type == webhook_type
    assert isinstance(parsed.value, value_type)
    assert parsed.procurement_id == "26908"


def test_snapshot_is_read_in_full() -> None:
    snapshot = parse_webhook(design_examples()["procurement.upserted"]).value
    assert isinstance(snapshot, Snapshot)
    assert snapshot.version == 7
    assert [s.id for s in snapshot.suppliers] == ["torgprofi"]
    assert snapshot.commission is not None
    assert snapshot.commission.chair == "@petrov:corp.example"


@pytest.mark.parametrize("webhook_type", ["vote.cancelled", "approval.cancelled"])
def test_a_cancellation_may_leave_out_its_procurement(webhook_type: str) -> None:
    body = more_examples()[webhook_type]
    del body["data"]["procurement_id"]
    assert parse_webhook(body).procurement_id is None


def test_unknown_fields_are_ignored() -> None:
    body = design_examples()["vote.requested"]
    body["sent_by"] = "erp"
    body["data"]["colour"] = "blue"
    assert parse_webhook(body).type == "vote.requested"


def _broken(webhook_type: str, change: Any) -> dict[str, Any]:
    body = copy.deepcopy(all_examples()[webhook_type])
    change(body["data"])
    return body


def _supplier(i: int, member: str) -> dict[str, Any]:
    return {"id": f"s{i}", "name": f"Supplier {i}", "members": [member]}


def _three_suppliers_the_last_with(member: str) -> Any:
    def change(data: dict[str, Any]) -> None:
        data["suppliers"] = [_supplier(0, "@a:x.org"), _supplier(1, "@b:x.org")]
        data["suppliers"].append(_supplier(2, member))
        data["specifications"] = data["shipments"] = []

    return change


INVALID = [
    # (body, path, errcode)
    pytest.param([], "", "M_BAD_JSON", id="not-an-object"),
    pytest.param({"data": {}}, "type", "M_MISSING_PARAM", id="no-type"),
    pytest.param({"type": 5, "data": {}}, "type", "M_BAD_JSON", id="type-not-a-string"),
    pytest.param({"type": "vote.tallied", "data": {}}, "type", "M_INVALID_PARAM", id="unknown"),
    pytest.param({"type": "notice.posted"}, "data", "M_MISSING_PARAM", id="no-data"),
    pytest.param({"type": "notice.posted", "data": None}, "data", "M_MISSING_PARAM", id="null"),
    pytest.param({"type": "notice.posted", "data": []}, "data", "M_BAD_JSON", id="data-array"),
    pytest.param(
        _broken("procurement.upserted", _three_suppliers_the_last_with("kirillov")),
        "data.suppliers[2].members[0]",
        "M_BAD_JSON",
        id="not-an-mxid",
    ),
    pytest.param(
        _broken("procurement.upserted", _three_suppliers_the_last_with("@a:x.org")),
        "data.suppliers[2].members[0]",
        "M_INVALID_PARAM",
        id="member-of-two-suppliers",
    ),
    pytest.param(
        _broken("procurement.upserted", lambda d: d.pop("manager")),
        "data.manager",
        "M_MISSING_PARAM",
        id="no-manager",
    ),
    pytest.param(
        _broken("procurement.upserted", lambda d: d.update(version="7")),
        "data.version",
        "M_BAD_JSON",
        id="version-as-string",
    ),
    pytest.param(
        _broken("procurement.upserted", lambda d: d.update(stage="archived")),
        "data.stage",
        "M_BAD_JSON",
        id="unknown-stage",
    ),
    pytest.param(
        _broken("procurement.upserted", lambda d: d["specifications"][0].update(supplier_id="x")),
        "data.specifications[0].supplier_id",
        "M_INVALID_PARAM",
        id="unknown-supplier",
    ),
    pytest.param(
        _broken("vote.requested", lambda d: d["options"][1].pop("label")),
        "data.options[1].label",
        "M_MISSING_PARAM",
        id="option-without-label",
    ),
    pytest.param(
        _broken("vote.requested", lambda d: d["subject"].update(cost_with_vat=58561.49)),
        "data.subject.cost_with_vat",
        "M_BAD_JSON",
        id="money-as-float",
    ),
    pytest.param(
        _broken("vote.requested", lambda d: d.update(closes_at="2022-04-15 18:00")),
        "data.closes_at",
        "M_BAD_JSON",
        id="timestamp-without-offset",
    ),
    pytest.param(
        _broken("approval.requested", lambda d: d["document"].update(sha256="0" * 64)),
        "data.document.sha256",
        "ORG_PROCUREMENT_SHA256_MISMATCH",
        id="wrong-sha256",
    ),
    pytest.param(
        _broken("approval.requested", lambda d: d["approvers"].append(d["approvers"][0])),
        "data.approvers[2]",
        "M_BAD_JSON",
        id="approver-twice",
    ),
    pytest.param(
        _broken("approval.requested", lambda d: d.update(mode="random")),
        "data.mode",
        "M_BAD_JSON",
        id="unknown-mode",
    ),
    pytest.param(
        _broken("approval.cancelled", lambda d: d.pop("approval_id")),
        "data.approval_id",
        "M_MISSING_PARAM",
        id="cancel-without-id",
    ),
    pytest.param(
        _broken("vote.cancelled", lambda d: d.update(vote_id="V 174")),
        "data.vote_id",
        "M_BAD_JSON",
        id="id-with-space",
    ),
    pytest.param(
        _broken("document.published", lambda d: d.update(room="lobby")),
        "data.room",
        "M_BAD_JSON",
        id="unknown-room-key",
    ),
    pytest.param(
        _broken("document.published", lambda d: d["document"].pop("url")),
        "data.document.content_base64",
        "M_MISSING_PARAM",
        id="document-without-content",
    ),
    pytest.param(
        _broken("notice.posted", lambda d: d.update(markdown="   ")),
        "data.markdown",
        "M_BAD_JSON",
        id="blank-notice",
    ),
]


@pytest.mark.parametrize(("body", "path", "errcode"), INVALID)
def test_faults_name_their_path(body: object, path: str, errcode: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_webhook(body)
    assert (caught.value.path, caught.value.errcode) == (path, errcode)
