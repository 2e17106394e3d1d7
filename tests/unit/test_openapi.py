"""The OpenAPI document: valid, complete, and in agreement with the parsers and the payloads."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from ruamel.yaml import YAML

from bridge.config import Config
from bridge.core import BridgeCore
from bridge.domain import approval, tlog, vote
from bridge.domain.errors import InvalidInput
from bridge.domain.webhooks import WEBHOOK_TYPES, parse_webhook
from bridge.matrix.client import make_client
from bridge.web.api import openapi_document

from .test_webhooks_domain import INVALID, all_examples, design_examples

DOCUMENT_URI = "urn:procurement-bridge:openapi"
WEBHOOK_SCHEMAS = {
    "procurement.upserted": "ProcurementUpsertedWebhook",
    "vote.requested": "VoteRequestedWebhook",
    "vote.cancelled": "VoteCancelledWebhook",
    "approval.requested": "ApprovalRequestedWebhook",
    "approval.cancelled": "ApprovalCancelledWebhook",
    "document.published": "DocumentPublishedWebhook",
    "notice.posted": "NoticePostedWebhook",
    "request.accepted": "RequestAcceptedWebhook",
    "request.rejected": "RequestRejectedWebhook",
}
MSK = timezone(timedelta(hours=3))


def schema_validator(name: str) -> Draft202012Validator:
    """A JSON Schema validator for `#/components/schemas/<name>`, its $refs resolved."""
    resource = Resource.from_contents(openapi_document(), default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource(DOCUMENT_URI, resource)
    schema = {"$ref": f"{DOCUMENT_URI}#/components/schemas/{name}"}
    return Draft202012Validator(schema, registry=registry)


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for section in ("paths", "webhooks"):
        for path, item in document[section].items():
            for method, operation in item.items():
                yield path, method, operation


# --- the document ----------------------------------------------------------------------


def test_is_valid_openapi_3_1() -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(openapi_document())


def test_structure() -> None:
    document = openapi_document()
    assert document["openapi"].startswith("3.1.")
    for schema in document["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    for path, method, operation in _operations(document):
        assert operation["responses"], (path, method)
        assert "security" in operation, f"{method} {path} says nothing about auth"
        for requirement in operation["security"]:
            assert set(requirement) <= set(document["components"]["securitySchemes"])


def test_every_reference_resolves() -> None:
    document = openapi_document()

    def refs(node: object) -> Iterator[str]:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                yield node["$ref"]
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    for ref in refs(document):
        assert ref.startswith("#/"), ref
        node: Any = document
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]


async def test_documents_every_route_the_bridge_serves(tmp_path: Path) -> None:
    """The application core builds, with every feature's routes, nothing started."""
    path = tmp_path / "config.yaml"
    YAML().dump(
        {
            "homeserver": {"address": "http://127.0.0.1:1", "domain": "example.org"},
            "appservice": {"as_token": "a" * 32, "hs_token": "h" * 32},
            "database": f"sqlite:{tmp_path / 'bridge.db'}",
            "webhooks": {"secrets": ["whsec_" + "A" * 44]},
            "callbacks": {"url": "http://127.0.0.1:2/callbacks", "secret": "whsec_" + "B" * 44},
            "api": {"tokens": [{"token": "t" * 32, "scopes": ["read"]}]},
        },
        path,
    )
    config = Config(str(path), "pkg://bridge/example-config.yaml")
    config.load()
    config.update(save=False)
    core = BridgeCore(config)
    core.signer = tlog.Signer("example.org/procurement-bridge", Ed25519PrivateKey.generate())
    async with aiohttp.ClientSession() as session:
        core.session = session
        client = make_client("http://127.0.0.1:1", "a" * 32, "@bot:example.org", session)
        features = core.build_features(client)
        core.workers = core.build_workers(client, features)
        app = core.application(features)
    served = {
        (route.resource.canonical, route.method.lower())
        for route in app.router.routes()
        if route.resource is not None
        and route.method != "HEAD"
        # The appservice API is the Matrix specification's, not this document's.
        and not route.resource.canonical.startswith(
            ("/_matrix/", "/transactions", "/users", "/rooms")
        )
    }
    documented = {
        (path, method) for path, item in openapi_document()["paths"].items() for method in item
    }
    assert served <= documented
    assert {("/health", "get"), ("/health/live", "get"), ("/metrics", "get")} <= served
    assert set(openapi_document()["webhooks"]) == {
        "vote.completed",
        "approval.step_decided",
        "approval.completed",
        "document.uploaded",
        "request.submitted",
    }


def test_webhook_request_covers_every_type() -> None:
    document = openapi_document()
    mapping = document["components"]["schemas"]["Webhook"]["discriminator"]["mapping"]
    assert set(mapping) == set(WEBHOOK_TYPES) == set(WEBHOOK_SCHEMAS)


# --- webhooks in: the schema and the parser agree --------------------------------------


@pytest.mark.parametrize("webhook_type", sorted(WEBHOOK_SCHEMAS))
def test_examples_are_valid_for_both(webhook_type: str) -> None:
    body = all_examples()[webhook_type]
    schema_validator("Webhook").validate(body)
    schema_validator(WEBHOOK_SCHEMAS[webhook_type]).validate(body)
    assert parse_webhook(body).type == webhook_type


def test_design_examples_are_the_documents_examples() -> None:
    operation = openapi_document()["paths"]["/api/v1/webhooks"]["post"]
    examples = operation["requestBody"]["content"]["application/json"]["examples"]
    for webhook_type, body in design_examples().items():
        assert examples[webhook_type]["value"] == body
    for example in examples.values():
        schema_validator("Webhook").validate(example["value"])
        parse_webhook(example["value"])


def _variant(webhook_type: str, change: Any) -> dict[str, Any]:
    body = copy.deepcopy(all_examples()[webhook_type])
    change(body["data"])
    return body


def _only_required(data: dict[str, Any], keep: tuple[str, ...]) -> None:
    for key in list(data):
        if key not in keep:
            del data[key]


VALID_VARIANTS = [
    pytest.param(
        _variant(
            "procurement.upserted",
            lambda d: _only_required(d, ("id", "version", "title", "stage", "manager")),
        ),
        id="snapshot-minimal",
    ),
    pytest.param(
        _variant(
            "procurement.upserted",
            lambda d: d.update(number=None, object=None, team=None, commission=None, url=None),
        ),
        id="snapshot-nulls",
    ),
    pytest.param(
        _variant("vote.requested", lambda d: d.update(voters=["@a:x.org"], quorum=1)),
        id="vote-listed-voters",
    ),
    pytest.param(
        _variant("vote.requested", lambda d: d.update(subject=None, disclosed=None)),
        id="vote-no-subject",
    ),
    pytest.param(
        _variant("vote.requested", lambda d: d.update(closes_at="2022-04-15T15:00:00Z")),
        id="vote-utc",
    ),
    pytest.param(
        _variant(
            "approval.requested",
            lambda d: d.update(
                document={"filename": "a.pdf", "url": "https://erp.example/a.pdf"},
                mode="parallel",
                deadline=None,
            ),
        ),
        id="approval-by-url",
    ),
    pytest.param(
        _variant("approval.cancelled", lambda d: d.pop("procurement_id")),
        id="cancel-without-procurement",
    ),
    pytest.param(
        _variant(
            "document.published", lambda d: d["document"].update(url=None, content_base64="YQ==")
        ),
        id="document-inline",
    ),
]


@pytest.mark.parametrize("body", VALID_VARIANTS)
def test_valid_variants_are_accepted_by_both(body: dict[str, Any]) -> None:
    schema_validator("Webhook").validate(body)
    parse_webhook(body)


def _set(key: str, value: object) -> Any:
    return lambda d: d.update({key: value})


MORE_INVALID = [
    pytest.param(_variant("procurement.upserted", _set("version", -1)), id="negative-version"),
    pytest.param(_variant("procurement.upserted", _set("id", "26 908")), id="id-with-space"),
    pytest.param(_variant("procurement.upserted", _set("title", "")), id="empty-title"),
    pytest.param(_variant("procurement.upserted", _set("url", "ftp://x")), id="not-http"),
    pytest.param(_variant("procurement.upserted", _set("team", "@a:x.org")), id="team-string"),
    pytest.param(
        _variant("procurement.upserted", _set("team", ["@a:x.org", "@a:x.org"])), id="team-twice"
    ),
    pytest.param(
        _variant("procurement.upserted", lambda d: d["object"].pop("name")), id="object-no-name"
    ),
    pytest.param(_variant("vote.requested", _set("options", [])), id="no-options"),
    pytest.param(_variant("vote.requested", _set("voters", [])), id="empty-voters"),
    pytest.param(_variant("vote.requested", _set("quorum", 0)), id="zero-quorum"),
    pytest.param(_variant("vote.requested", _set("disclosed", "no")), id="disclosed-string"),
    pytest.param(
        _variant("vote.requested", lambda d: d["subject"].update(currency="rub")),
        id="lowercase-currency",
    ),
    pytest.param(
        _variant("vote.requested", lambda d: d["subject"].update(cost_without_vat="48 801")),
        id="money-with-space",
    ),
    pytest.param(_variant("approval.requested", _set("approvers", [])), id="no-approvers"),
    pytest.param(
        _variant("approval.requested", lambda d: d["document"].update(url="https://a.example/")),
        id="content-and-url",
    ),
    pytest.param(
        _variant("approval.requested", lambda d: d["document"].update(filename="../a.pdf")),
        id="filename-with-path",
    ),
    pytest.param(
        _variant("approval.requested", lambda d: d["document"].update(sha256="abc")),
        id="short-sha256",
    ),
    pytest.param(_variant("approval.requested", _set("initiator", None)), id="null-initiator"),
    pytest.param(_variant("notice.posted", _set("markdown", "x" * 16_001)), id="long-notice"),
    pytest.param(_variant("notice.posted", _set("room", "supplier:")), id="room-without-id"),
]


def _invalid_for_the_schema() -> list[Any]:
    # The parser's own cases, less those JSON Schema cannot express (cross-field rules and
    # hashes): the OpenAPI document describes those in words.
    cross_field = {"member-of-two-suppliers", "unknown-supplier", "wrong-sha256"}
    return [case for case in INVALID if case.id not in cross_field] + MORE_INVALID


@pytest.mark.parametrize(
    "body",
    [pytest.param(case.values[0], id=case.id) for case in _invalid_for_the_schema()],
)
def test_invalid_payloads_are_refused_by_both(body: object) -> None:
    assert not schema_validator("Webhook").is_valid(body)
    with pytest.raises(InvalidInput):
        parse_webhook(body)


# --- callbacks out: the payload builders produce what the document says -----------------


def _closed_vote() -> vote.VoteState:
    body = all_examples()["vote.requested"]
    body["data"].update(voters=["@a:x.org", "@b:x.org", "@c:x.org"], quorum=2)
    request = parse_webhook(body).value
    assert isinstance(request, vote.VoteRequest)
    state = vote.open_vote(request)
    t = datetime(2022, 4, 15, 12, 0, tzinfo=MSK)
    state = vote.apply_answer(state, "@a:x.org", ["for"], t)  # type: ignore[arg-type]
    state = vote.apply_answer(state, "@z:x.org", ["for"], t)  # type: ignore[arg-type]
    state = vote.apply_answer(state, "@b:x.org", ["against"], t)  # type: ignore[arg-type]
    return vote.close(state, vote.CloseReason.DEADLINE, datetime(2022, 4, 15, 18, tzinfo=MSK))


def test_vote_completed_payload_matches() -> None:
    schema_validator("VoteCompleted").validate(vote.vote_completed_payload(_closed_vote()))


def test_approval_payloads_match() -> None:
    request = parse_webhook(all_examples()["approval.requested"]).value
    assert isinstance(request, approval.ApprovalRequest)
    state = approval.start_approval(request)
    t = datetime(2022, 4, 16, 10, tzinfo=MSK)
    first, second = request.approvers
    state, effects = approval.decide(state, first, approval.Decision.APPROVED, None, True, t)
    decided = effects[0]
    assert isinstance(decided, approval.StepDecided)
    schema_validator("ApprovalStepDecided").validate(approval.step_decided_payload(state, decided))
    state, _ = approval.decide(state, second, approval.Decision.REJECTED, "Нет ЭП", None, t)
    schema_validator("ApprovalCompleted").validate(approval.approval_completed_payload(state))
    cancelled, _ = approval.cancel(approval.start_approval(request), "Отозвано", t)
    schema_validator("ApprovalCompleted").validate(approval.approval_completed_payload(cancelled))
