"""Property-based fuzzing of the contract against a running bridge: every route of the served
OpenAPI document (schemathesis) and the homeserver's transactions (hypothesis). Whatever comes
in, the answer is documented and no 5xx, and nothing is logged with a traceback.

A few examples per route in the normal run; `FUZZ_EXAMPLES=2000` runs that many per route and
generation mode, and that many transactions."""

from __future__ import annotations

import asyncio
import base64
import enum
import hashlib
import hmac
import json
import logging
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from bridge.config import decode_whsec, new_whsec
from bridge.core import BridgeCore
from bridge.domain.nesting import MAX_NESTING

from ..cast import make_cast
from ..conftest import Deployment
from ..erp import ERP
from ..fuzz_events import Scene, Transaction, transactions
from ..talk import BOT, ask, open_dm, rooms_of
from ..unit.test_webhooks_domain import design_examples
from ..waiting import wait_for

LONG_RUN = int(os.environ.get("FUZZ_EXAMPLES", "0"))
# The normal run: a few examples per route and mode, more for the webhooks, whose body is the
# richest input; the whole file stays under a minute on both databases.
SHORT_RUN_EXAMPLES = 6
SHORT_RUN_WEBHOOKS = 40
SHORT_RUN_TRANSACTIONS = 40
# The design's example procurement: REST routes are fuzzed with its id too, so that they
# answer with something to check besides 404.
KNOWN_PROCUREMENT = design_examples()["procurement.upserted"]["data"]["id"]
# Loggers of the bridge and of what it runs on: aiohttp logs a handler's escaped exception,
# asyncio a task's that nobody awaited, mautrix ("mau") its own.
WATCHED_LOGGERS = ("bridge", "aiohttp", "asyncio", "mau")

REST_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    positive_data_acceptance,
]
# Where a schema-valid request may still be refused with a documented 400, for rules JSON
# Schema cannot state: a webhook's ids listed twice (…), a report's `from` after its `to`.
CROSS_FIELD_RULES = frozenset({"receiveWebhook", "getResponseTimes"})
WEBHOOK_HEADERS = {"webhook-id": "set", "webhook-timestamp": "0", "webhook-signature": "v1,set"}
# Invalid input is refused with one of the statuses the document gives for refusals (a body
# too large for the limit among them), and nothing else.
CHECKS_CONFIG = schemathesis.Config.from_dict(
    {
        "checks": {
            "negative_data_rejection": {"expected-statuses": [400, 401, 403, 404, 409, 413, 415]}
        }
    }
)


def examples(short_run: int) -> int:
    return LONG_RUN or short_run


class UnhandledErrors(logging.Handler):
    """Collects every record logged with a traceback: an exception the bridge did not expect."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.records.append(record)

    def report(self) -> str:
        """The first few, each with its traceback."""
        return "\n\n".join(self.format(r) for r in self.records[:5])


@contextmanager
def unhandled_errors() -> Iterator[UnhandledErrors]:
    handler = UnhandledErrors()
    loggers = [logging.getLogger(name) for name in WATCHED_LOGGERS]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield handler
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


# --- the REST API, webhooks, health and metrics: the OpenAPI document ---------------------


class Signing(enum.Enum):
    """How a fuzzed webhook is signed: mostly right, so that the body's validation is what is
    fuzzed, and in every way a sender or an attacker gets it wrong."""

    VALID = "valid"
    MISSING = "missing"
    OTHER_SECRET = "other secret"
    STALE = "stale"
    TAMPERED = "tampered"


class Token(enum.Enum):
    VALID = "valid"
    WRONG = "wrong"  # the placeholder the strategy was given: no one's token
    MISSING = "missing"


SIGNINGS = st.sampled_from([Signing.VALID] * 4 + list(Signing))
TOKENS = st.sampled_from([Token.VALID] * 4 + list(Token))
# application/json with or without its charset is taken; anything else is 415.
CONTENT_TYPES = st.sampled_from(
    ["application/json"] * 6
    + ["application/json; charset=utf-8", "text/plain", "application/json; charset=latin-1"]
)


@dataclass
class Tally:
    """The figures of a fuzzing run."""

    examples: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def count(self, status: int) -> None:
        self.examples += 1
        self.statuses[status] = self.statuses.get(status, 0) + 1


@dataclass(frozen=True)
class Target:
    base_url: str
    api_token: str
    webhook_secret: str


def sign_webhook(
    target: Target, body: bytes, signing: Signing, content_type: str
) -> dict[str, str]:
    webhook_id = f"fuzz-{uuid.uuid4().hex}"
    timestamp = int(time.time()) - (3600 if signing is Signing.STALE else 0)
    secret = new_whsec() if signing is Signing.OTHER_SECRET else target.webhook_secret
    signed = body + b" " if signing is Signing.TAMPERED else body
    headers = {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, webhook_id, timestamp, signed),
        "Content-Type": content_type,
    }
    if signing is Signing.MISSING:
        del headers["webhook-signature"]
    return headers


def signature(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """Standard Webhooks' `v1` signature, over the raw bytes: a generated body need not be
    UTF-8, and the reference library signs only text."""
    mac = hmac.new(decode_whsec(secret), f"{webhook_id}.{timestamp}.".encode(), hashlib.sha256)
    mac.update(body)
    return "v1," + base64.b64encode(mac.digest()).decode()


def webhook_request(
    target: Target, kwargs: dict[str, Any], signing: Signing, content_type: str
) -> dict[str, Any]:
    """The request schemathesis made, its body serialised here so that it can be signed."""
    if "json" in kwargs:
        body = json.dumps(kwargs.pop("json"), ensure_ascii=False).encode("utf-8", "surrogatepass")
    else:
        data = kwargs.pop("data", b"")
        body = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    replaced = ("content-type", *WEBHOOK_HEADERS)
    headers = {
        name: value
        for name, value in kwargs.pop("headers", {}).items()
        if name.lower() not in replaced
    }
    headers.update(sign_webhook(target, body, signing, content_type))
    return {**kwargs, "data": body, "headers": headers}


def expected_refusal(signing: Signing, content_type: str) -> int | None:
    """The status a webhook must get whatever its body, None when the body decides."""
    if content_type not in ("application/json", "application/json; charset=utf-8"):
        return 415
    if signing is not Signing.VALID:
        return 401
    return None


def fuzz_operation(
    operation: Any, mode: GenerationMode, count: int, target: Target, tally: Tally
) -> None:
    """Runs `count` examples of one operation in one generation mode; a failure is added to
    the tally (shrunk to its smallest form), so that one broken route hides no other."""
    is_webhook = operation.path == "/api/v1/webhooks"
    is_bearer = any(
        "bearer" in requirement for requirement in operation.definition.raw["security"]
    )
    # The headers of the security schemes are set here (signed, or a token), never generated:
    # an invalid one generated would be replaced and make a valid request look invalid.
    placeholders = {"Authorization": "Bearer wrong"} if is_bearer else {}
    strategy = operation.as_strategy(mode, headers=WEBHOOK_HEADERS if is_webhook else placeholders)
    if "{id}" in operation.path and mode is GenerationMode.POSITIVE:
        known = operation.as_strategy(mode, path_parameters={"id": KNOWN_PROCUREMENT})
        strategy = st.one_of(strategy, known)
    session = requests.Session()

    @settings(
        max_examples=count,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
    )
    @given(case=strategy, signing=SIGNINGS, token=TOKENS, content_type=CONTENT_TYPES)
    def example(case: Any, signing: Signing, token: Token, content_type: str) -> None:
        headers: dict[str, str] = {}
        if is_bearer and token is Token.VALID:
            headers["Authorization"] = f"Bearer {target.api_token}"
        elif is_bearer and token is Token.MISSING:
            case.headers.pop("Authorization", None)
        kwargs = case.as_transport_kwargs(base_url=target.base_url, headers=headers)
        if is_webhook:
            kwargs = webhook_request(target, kwargs, signing, content_type)
        response = session.request(**kwargs, timeout=60, allow_redirects=False)
        tally.count(response.status_code)
        described = f"{case.method} {response.request.url} -> {response.status_code}"
        if is_webhook and (status := expected_refusal(signing, content_type)):
            assert response.status_code == status, f"{signing}, {content_type}: {described}"
        if is_bearer and token is not Token.VALID:
            assert response.status_code == 401, f"token {token.value}: {described}"
        checks = REST_CHECKS
        if operation.definition.raw["operationId"] in CROSS_FIELD_RULES:
            checks = [c for c in checks if c is not positive_data_acceptance]
        if (is_webhook and signing is not Signing.VALID) or (
            is_bearer and token is not Token.VALID
        ):
            checks = [c for c in checks if c is not negative_data_rejection]
        case.validate_response(response, checks=checks)

    try:
        example()
    except Unsatisfiable:
        pass  # nothing to make invalid: the operation takes no input
    except (Exception, BaseExceptionGroup) as e:  # schemathesis groups its check failures
        tally.failures.append(f"{operation.label} ({mode.value}): {e}")


def fuzz_contract(target: Target, count: int, webhook_count: int) -> Tally:
    """Every operation of the OpenAPI document the bridge serves, as schemathesis reads it."""
    schema = schemathesis.openapi.from_url(
        f"{target.base_url}/api/v1/openapi.json", config=CHECKS_CONFIG
    )
    tally = Tally()
    for result in schema.get_all_operations():
        operation = result.ok()
        n = webhook_count if operation.path == "/api/v1/webhooks" else count
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fuzz_operation(operation, mode, n, target, tally)
    return tally


async def test_every_route_keeps_its_contract(
    synapse: Any, deployment: Deployment, database_url: str, tmp_path: Path, erp: ERP
) -> None:
    config = deployment.write_config(tmp_path / "config.yaml", database_url)
    target = Target(deployment.bridge_url, deployment.api_token, deployment.webhook_secret)
    started = time.monotonic()
    with unhandled_errors() as errors:
        core = BridgeCore(config)
        await core.start()
        try:
            await erp.upsert(design_examples()["procurement.upserted"]["data"])
            await wait_for(lambda: drained(core), what="the example procurement to be taken")
            tally = await asyncio.to_thread(
                fuzz_contract,
                target,
                examples(SHORT_RUN_EXAMPLES),
                examples(SHORT_RUN_WEBHOOKS),
            )
            # What was accepted is handled too, with nothing unexpected.
            await wait_for(lambda: drained(core), timeout=120, what="the fuzzed webhooks")
        finally:
            await core.stop()
    report("contract", tally, started)
    assert not tally.failures, "\n\n".join(tally.failures)
    assert not errors.records, errors.report()


async def drained(core: BridgeCore) -> bool:
    return await core.webhooks.depth() == 0 and await core.inbox.depth() == 0


def report(what: str, tally: Tally, started: float) -> None:
    statuses = ", ".join(f"{s}: {n}" for s, n in sorted(tally.statuses.items()))
    print(
        f"\nfuzz {what}: {tally.examples} requests in {time.monotonic() - started:.1f} s "
        f"({statuses}); {len(tally.failures)} failing"
    )


# --- homeserver transactions -------------------------------------------------------------


def put_transactions(url: str, hs_token: str, scene: Scene, count: int, tally: Tally) -> None:
    """PUTs `count` generated transactions; each must be stored (200) or refused (4xx) with an
    errcode and a reason, as the transaction's form says."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {hs_token}"

    @settings(
        max_examples=count,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate, Phase.shrink],
    )
    @given(transaction=transactions(scene))
    def example(transaction: Transaction) -> None:
        txn_id = f"fuzz-{uuid.uuid4().hex}"
        response = session.put(
            f"{url}/_matrix/app/v1/transactions/{txn_id}",
            data=transaction.body,
            headers={"Content-Type": "application/json"},
            timeout=60,
        )
        tally.count(response.status_code)
        shown = f"{response.status_code} {response.text[:300]!r} for {transaction.body[:300]!r}"
        assert response.status_code < 500, shown
        if transaction.well_formed:
            assert response.status_code == 200, shown
        else:
            assert 400 <= response.status_code < 500, shown
        if response.status_code != 200:
            answer = response.json()
            assert answer["errcode"].startswith("M_"), shown
            assert answer["error"], shown

    try:
        example()
    except (Exception, BaseExceptionGroup) as e:
        tally.failures.append(str(e))


async def test_malformed_transactions_leave_the_bridge_working(
    synapse: Any,
    deployment: Deployment,
    database_url: str,
    tmp_path: Path,
    erp: ERP,
    user_factory: Any,
) -> None:
    # An unexpected failure is parked at once: each shows in the log at its first attempt.
    config = deployment.write_config(
        tmp_path / "config.yaml", database_url, bridge__max_attempts=1
    )
    cast = await make_cast(user_factory, suppliers=1, commission=0)
    alice = await user_factory("alice")
    started = time.monotonic()
    with unhandled_errors() as errors:
        core = BridgeCore(config)
        await core.start()
        try:
            await erp.upsert(cast.snapshot("offers"))
            rooms = await rooms_of(cast.manager, {"org", f"supplier:{cast.suppliers[0].id}"})
            direct_chat = await open_dm(alice)
            scene = Scene(
                managed_rooms=sorted(await core.rooms.all_room_ids()),
                direct_chat=direct_chat,
                people=[u.user_id for u in [*cast.everyone, alice]],
                bot=BOT,
            )
            tally = Tally()
            await asyncio.to_thread(
                put_transactions,
                deployment.bridge_url,
                deployment.hs_token,
                scene,
                examples(SHORT_RUN_TRANSACTIONS),
                tally,
            )
            await wait_for(lambda: drained(core), timeout=120, what="the fuzzed events")
            await still_works(erp, cast, rooms["org"], alice, direct_chat, user_factory)
        finally:
            await core.stop()
    report("transactions", tally, started)
    assert not tally.failures, "\n\n".join(tally.failures)
    assert not errors.records, errors.report()


async def still_works(
    erp: ERP,
    cast: Any,
    org_room: str,
    alice: Any,
    direct_chat: str,
    user_factory: Any,
) -> None:
    """After the fuzz: a new person in the snapshot gets their rooms, and people who write to
    the bot get their answers, in a managed room and in a direct chat."""
    newcomer = await user_factory("newcomer")
    snapshot = cast.snapshot("offers")
    snapshot["team"] = [*snapshot["team"], newcomer.user_id]
    await erp.upsert(snapshot)
    await rooms_of(newcomer, {"org"})
    assert (await ask(cast.manager, org_room, "помощь"))["content"]["body"]
    assert (await ask(alice, direct_chat, "help"))["content"]["body"]


# --- what the fuzz found -----------------------------------------------------------------


async def put_raw(deployment: Deployment, body: bytes) -> tuple[int, dict[str, Any]]:
    url = f"{deployment.bridge_url}/_matrix/app/v1/transactions/t-{uuid.uuid4().hex}"
    headers = {"Authorization": f"Bearer {deployment.hs_token}"}
    async with (
        aiohttp.ClientSession() as session,
        session.put(url, data=body, headers=headers) as resp,
    ):
        return resp.status, await resp.json(content_type=None)


def message(room_id: str, sender: str, content: Any, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": f"$odd-{uuid.uuid4().hex}",
        "room_id": room_id,
        "sender": sender,
        "type": "m.room.message",
        "origin_server_ts": 1_700_000_000_000,
        "content": content,
        **fields,
    }


async def test_json_nested_too_deep_is_refused_with_its_path(
    synapse: Any, deployment: Deployment, bridge: BridgeCore, erp: ERP
) -> None:
    # Deeper than the JSON parser's stack, so unreadable: was a 500.
    event = message("!nowhere:localhost", "@someone:localhost", {})
    content = "[" * 5000 + "]" * 5000
    text = json.dumps({"events": [event]}).replace('"content": {}', f'"content": {content}')
    status, answer = await put_raw(deployment, text.encode())
    assert (status, answer["errcode"]) == (400, "M_NOT_JSON")
    # Deeper than the bridge takes: refused, naming where.
    nested: Any = 1
    for _ in range(MAX_NESTING):
        nested = {"a": nested}
    status, answer = await put_raw(
        deployment, json.dumps({"events": [{**event, "content": nested}]}).encode()
    )
    assert (status, answer["errcode"]) == (400, "M_BAD_JSON")
    assert answer["path"].startswith("events[0].content.a.a.")
    snapshot = design_examples()["procurement.upserted"]["data"] | {"extra": nested}
    status, answer = await erp.send("procurement.upserted", snapshot)
    assert (status, answer["errcode"]) == (400, "M_BAD_JSON")
    assert answer["path"].startswith("data.extra.a.a.")
    # Refused, so stored nowhere (the homeserver may push other rooms' events meanwhile).
    assert await bridge.inbox.get_event(event["event_id"]) is None
    assert await bridge.db.fetchval("SELECT COUNT(*) FROM webhook") == 0


async def test_text_no_database_stores_is_still_stored(
    synapse: Any, deployment: Deployment, bridge: BridgeCore
) -> None:
    """Lone surrogates (valid JSON escapes) and timestamps beyond a 64-bit column: were 503."""
    odd = [
        message("!nowhere:localhost", "@\ud800:localhost", {"body": "\ud800"}),
        message("!nowhere:localhost", "@someone:localhost", {}, origin_server_ts=2**70),
    ]
    receipt = {"type": "m.receipt", "room_id": "!nowhere:localhost", "content": {"\ud800": {}}}
    body = {"events": odd, "ephemeral": [receipt]}
    assert await put_raw(deployment, json.dumps(body).encode()) == (200, {})
    for event in odd:
        assert await bridge.inbox.get_event(event["event_id"]) == event
    # The same lone surrogate as raw bytes is no UTF-8: not JSON (was taken).
    raw = json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass")
    status, answer = await put_raw(deployment, raw)
    assert (status, answer["errcode"]) == (400, "M_NOT_JSON")


async def test_events_of_odd_shape_in_a_managed_room_are_read_safely(
    synapse: Any,
    deployment: Deployment,
    database_url: str,
    tmp_path: Path,
    erp: ERP,
    user_factory: Any,
) -> None:
    """Each of these failed in a handler (a traceback, the event parked as a fault)."""
    config = deployment.write_config(
        tmp_path / "config.yaml", database_url, bridge__max_attempts=1
    )
    cast = await make_cast(user_factory, suppliers=1, commission=0)
    with unhandled_errors() as errors:
        core = BridgeCore(config)
        await core.start()
        try:
            await erp.upsert(cast.snapshot("offers"))
            org = (await rooms_of(cast.manager, {"org"}))["org"]
            manager = cast.manager.user_id
            odd = [
                message(org, manager, 5),
                message(org, manager, {"msgtype": "m.text", "body": "help", "m.relates_to": 7}),
                message(org, manager, {"msgtype": "m.text", "body": "поиск а\x00б"}),
                message(org, manager, {"msgtype": {"m.file": 1}, "url": "mxc://localhost/x"}),
                message(org, manager, {"m.relates_to": "x"}, type="m.reaction"),
                message(org, manager, {}, type="m.room.topic", state_key="\x00"),
                message(org, 5, {"body": "x"}),
                message(org, manager, {}, type="m.room.redaction", redacts=["$x"]),
            ]
            receipt = {
                "type": "m.receipt",
                "room_id": org,
                "content": {odd[2]["event_id"]: {"m.read": {manager: {"ts": 2**70}}}},
            }
            body = {"events": odd, "ephemeral": [receipt]}
            assert await put_raw(deployment, json.dumps(body).encode()) == (200, {})
            await wait_for(lambda: drained(core), what="the odd events to be handled")
            for event in odd:
                assert await core.inbox.status_of(event["event_id"]) == "done", event
            assert (await ask(cast.manager, org, "помощь"))["content"]["body"]
        finally:
            await core.stop()
    assert not errors.records, errors.report()


async def test_webhooks_that_could_never_apply_are_refused_at_once(
    bridge: BridgeCore, erp: ERP
) -> None:
    """Were accepted (202), then parked as dead letters the sender never heard of."""
    refusals = {
        "notice.posted": (
            {"procurement_id": "nobody-knows", "room": "org", "markdown": "Срок продлён"},
            "ORG_PROCUREMENT_UNKNOWN",
        ),
        "document.published": (
            {
                "procurement_id": "nobody-knows",
                "room": "org",
                "document": {"filename": "a.pdf", "content_base64": "JVBERi0xLjQK"},
            },
            "ORG_PROCUREMENT_UNKNOWN",
        ),
        "vote.cancelled": ({"vote_id": "V-never"}, "ORG_PROCUREMENT_VOTE_UNKNOWN"),
        "approval.cancelled": ({"approval_id": "A-never"}, "ORG_PROCUREMENT_APPROVAL_UNKNOWN"),
    }
    for event_type, (data, errcode) in refusals.items():
        status, answer = await erp.send(event_type, data)
        assert (status, answer["errcode"]) == (409, errcode), event_type
    assert await bridge.db.fetchval("SELECT COUNT(*) FROM webhook") == 0


async def test_a_report_of_a_period_no_date_can_name_is_refused(
    bridge: BridgeCore, erp: ERP
) -> None:
    """The 30 days before 0001-01-02 start before any date: was a 500 writing them out."""
    status, answer = await erp.get("/api/v1/reports/response-times?to=0001-01-02")
    assert (status, answer["errcode"], answer["path"]) == (400, "M_INVALID_PARAM", "to")
