"""Webhooks over real HTTP into a real database: stored once, refused without a trace; the
REST API's view of a procurement."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from mautrix.util.async_db import Database
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from bridge.config import new_whsec
from bridge.db import upgrade_table
from bridge.db.audit import AuditLog
from bridge.db.procurements import Procurements
from bridge.db.rooms import Rooms
from bridge.db.store import Store
from bridge.db.webhooks import WebhookInbox
from bridge.domain.policy import power_levels
from bridge.feature import Scope
from bridge.matrix.procurements import ProcurementRooms
from bridge.web.api import openapi_document, register_api
from bridge.web.auth import ApiAuth, ApiToken
from bridge.web.webhooks import WebhookAPI

from ..unit.test_openapi import schema_validator
from ..unit.test_webhooks_domain import design_examples

LIMIT = 4096
SECRET, ROTATED_IN = new_whsec(), new_whsec()
API_TOKEN = "test-token-" + uuid.uuid4().hex
DOCUMENTS_ONLY = "documents-token-" + uuid.uuid4().hex
PATH = "/api/v1/webhooks"


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database.create(database_url, upgrade_table=upgrade_table)
    await database.start()
    yield database
    await database.stop()


Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def client(db: Database) -> AsyncIterator[Client]:
    auth = ApiAuth(
        [
            ApiToken(API_TOKEN, frozenset({Scope.READ})),
            ApiToken(DOCUMENTS_ONLY, frozenset({Scope.DOCUMENTS})),
        ]
    )
    app = web.Application(middlewares=[auth.middleware])
    WebhookAPI([SECRET, ROTATED_IN], LIMIT, WebhookInbox(db, AuditLog(db))).register(app, auth)
    reconciler = SimpleNamespace(concurrency=1)  # nothing converges here
    rooms = ProcurementRooms(Store(db, callbacks_enabled=False), reconciler)  # type: ignore[arg-type]
    register_api(app, auth, rooms.feature().routes)
    async with TestClient(TestServer(app, host="127.0.0.1")) as test_client:
        yield test_client


def sign(
    body: str,
    secret: str = SECRET,
    webhook_id: str | None = None,
    timestamp: int | None = None,
) -> dict[str, str]:
    """The headers a Standard Webhooks sender puts on `body` (signed by the reference library)."""
    msg_id = webhook_id or f"msg_{uuid.uuid4().hex}"
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": Webhook(secret).sign(msg_id, datetime.fromtimestamp(ts, UTC), body),
        "Content-Type": "application/json",
    }


def snapshot_body(**changes: Any) -> str:
    body = design_examples()["procurement.upserted"]
    body["data"].update(changes)
    return json.dumps(body, ensure_ascii=False)


async def rows(db: Database) -> list[tuple[Any, ...]]:
    records = await db.fetch(
        "SELECT seq, webhook_id, type, procurement_id, body, status FROM webhook ORDER BY seq"
    )
    return [tuple(r) for r in records]


async def post(
    client: Client, body: str | bytes, headers: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    data = body.encode() if isinstance(body, str) else body
    async with client.post(PATH, data=data, headers=headers) as resp:
        return resp.status, await resp.json()


# --- accepted ---------------------------------------------------------------------------


async def test_accepted_once(client: Client, db: Database) -> None:
    body = snapshot_body()
    headers = sign(body)
    assert Webhook(SECRET).verify(body, headers) is not None  # the reference agrees
    status, answer = await post(client, body, headers)
    assert (status, answer) == (202, {"id": headers["webhook-id"], "status": "accepted"})
    [(_, webhook_id, type_, procurement_id, stored_body, state)] = await rows(db)
    assert (webhook_id, type_, procurement_id, state) == (
        headers["webhook-id"],
        "procurement.upserted",
        "26908",
        "pending",
    )
    assert stored_body == body  # the raw text, as sent


async def test_same_id_again_has_no_second_effect(client: Client, db: Database) -> None:
    body = snapshot_body()
    first = sign(body)
    assert (await post(client, body, first))[0] == 202
    before = await rows(db)
    # A retry is re-signed with a new timestamp and may even differ; the id is what counts.
    retry = sign(
        snapshot_body(version=8), webhook_id=first["webhook-id"], timestamp=int(time.time()) + 1
    )
    status, answer = await post(client, snapshot_body(version=8), retry)
    assert (status, answer) == (202, {"id": first["webhook-id"], "status": "duplicate"})
    assert await rows(db) == before


async def test_a_rotated_in_secret_is_accepted(client: Client, db: Database) -> None:
    body = snapshot_body()
    assert (await post(client, body, sign(body, secret=ROTATED_IN)))[0] == 202
    # Several signatures, as a sender rotating its own secret sends: one matching is enough.
    headers = sign(body)
    stale = sign(body, secret=new_whsec(), webhook_id=headers["webhook-id"])["webhook-signature"]
    headers["webhook-signature"] = f"v1a,c2lnbmF0dXJl {stale} {headers['webhook-signature']}"
    assert (await post(client, body, headers))[0] == 202
    assert len(await rows(db)) == 2


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "application/json"])
async def test_charset_utf8_is_json(client: Client, content_type: str) -> None:
    body = snapshot_body()
    headers = {**sign(body), "Content-Type": content_type}
    assert (await post(client, body, headers))[0] == 202


# --- refused, and nothing changed --------------------------------------------------------

Request = tuple[bytes, dict[str, str]]


def _signed(body: str, **kwargs: Any) -> Request:
    return body.encode(), sign(body, **kwargs)


def _tampered() -> Request:
    body, headers = _signed(snapshot_body())
    return body.replace(b'"version": 7', b'"version": 9'), headers


def _without(header: str) -> Request:
    body, headers = _signed(snapshot_body())
    del headers[header]
    return body, headers


def _with(**replaced: str) -> Request:
    body, headers = _signed(snapshot_body())
    return body, {**headers, **replaced}


def _signed_bytes(body: bytes) -> Request:
    """Signed over the raw bytes, as a sender that does not insist on text would."""
    msg_id, ts = f"msg_{uuid.uuid4().hex}", str(int(time.time()))
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    return body, {
        "webhook-id": msg_id,
        "webhook-timestamp": ts,
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
        "Content-Type": "application/json",
    }


def _long_id() -> Request:
    return _signed(snapshot_body(), webhook_id="m" * 256)


REFUSED: list[Any] = [
    # (request, status, errcode, path)
    pytest.param(_tampered, 401, "M_UNAUTHORIZED", "headers.webhook-signature", id="tampered"),
    pytest.param(
        lambda: _signed(snapshot_body(), secret=new_whsec()),
        401,
        "M_UNAUTHORIZED",
        "headers.webhook-signature",
        id="wrong-secret",
    ),
    pytest.param(
        lambda: _signed(snapshot_body(), timestamp=int(time.time()) - 360),
        401,
        "M_UNAUTHORIZED",
        "headers.webhook-timestamp",
        id="six-minutes-old",
    ),
    pytest.param(
        lambda: _signed(snapshot_body(), timestamp=int(time.time()) + 360),
        401,
        "M_UNAUTHORIZED",
        "headers.webhook-timestamp",
        id="six-minutes-ahead",
    ),
    pytest.param(
        lambda: _with(**{"webhook-timestamp": f"{time.time():.3f}"}),
        401,
        "M_UNAUTHORIZED",
        "headers.webhook-timestamp",
        id="fractional-timestamp",
    ),
    *(
        pytest.param(
            lambda h=header: _without(h), 401, "M_UNAUTHORIZED", f"headers.{header}", id=header
        )
        for header in ("webhook-id", "webhook-timestamp", "webhook-signature")
    ),
    *(
        pytest.param(
            lambda s=signature: _with(**{"webhook-signature": s}),
            401,
            "M_UNAUTHORIZED",
            "headers.webhook-signature",
            id=f"signature-{name}",
        )
        for name, signature in [
            ("no-comma", "v1"),
            ("not-base64", "v1,***"),
            ("other-version", "v2,c2lnbmF0dXJl"),
            ("double-comma", "v1,a,b  v1,"),
        ]
    ),
    pytest.param(
        lambda: _signed(snapshot_body(title="x" * LIMIT)),
        413,
        "M_TOO_LARGE",
        None,
        id="over-the-limit",
    ),
    pytest.param(
        lambda: _with(**{"Content-Type": "text/plain"}),
        415,
        "M_UNSUPPORTED_MEDIA_TYPE",
        None,
        id="text-plain",
    ),
    pytest.param(
        lambda: _with(**{"Content-Type": "application/json; charset=latin-1"}),
        415,
        "M_UNSUPPORTED_MEDIA_TYPE",
        None,
        id="latin-1",
    ),
    pytest.param(lambda: _signed("{not json"), 400, "M_NOT_JSON", None, id="not-json"),
    pytest.param(lambda: _signed('{"type": NaN}'), 400, "M_NOT_JSON", None, id="nan"),
    pytest.param(
        lambda: _signed_bytes(b'{"type": "\xff"}'), 400, "M_NOT_JSON", None, id="not-utf8"
    ),
    pytest.param(lambda: _signed("[" * 2000 + "]" * 2000), 400, "M_NOT_JSON", None, id="too-deep"),
    pytest.param(
        lambda: _signed(
            snapshot_body(
                suppliers=[
                    {"id": "a", "name": "A", "members": ["@a:x.org"]},
                    {"id": "b", "name": "B", "members": ["@b:x.org"]},
                    {"id": "c", "name": "C", "members": ["c@x.org"]},
                ],
                specifications=[],
                shipments=[],
            )
        ),
        400,
        "M_BAD_JSON",
        "data.suppliers[2].members[0]",
        id="schema-violation",
    ),
    pytest.param(
        lambda: _signed('{"type": "procurement.deleted", "data": {}}'),
        400,
        "M_INVALID_PARAM",
        "type",
        id="unknown-type",
    ),
    pytest.param(_long_id, 400, "M_INVALID_PARAM", "headers.webhook-id", id="long-id"),
]


@pytest.mark.parametrize(("make_request", "status", "errcode", "path"), REFUSED)
async def test_refused_and_nothing_changed(
    client: Client,
    db: Database,
    make_request: Callable[[], Request],
    status: int,
    errcode: str,
    path: str | None,
) -> None:
    seeded = snapshot_body()
    assert (await post(client, seeded, sign(seeded)))[0] == 202
    before = await rows(db)
    body, headers = make_request()
    answer_status, answer = await post(client, body, headers)
    assert (answer_status, answer["errcode"], answer.get("path")) == (status, errcode, path)
    assert answer["error"]
    assert await rows(db) == before
    if status == 401 and headers.get("webhook-timestamp", "").isdigit():
        # The reference verifier refuses it too (only a fractional timestamp would pass there).
        with pytest.raises((WebhookVerificationError, ValueError)):
            Webhook(SECRET).verify(body, headers, json_parse=False)


async def test_oversized_by_content_length(client: Client, db: Database) -> None:
    body = snapshot_body(title="x" * LIMIT)
    headers = sign(body)
    async with client.post(PATH, data=body.encode(), headers=headers) as resp:
        assert resp.status == 413
        assert resp.request_info.headers["Content-Length"] == str(len(body.encode()))
    assert await rows(db) == []


async def test_oversized_chunked_body(client: Client, db: Database) -> None:
    """Without Content-Length the limit is found while reading; a sender may lie by streaming."""
    body = snapshot_body(title="x" * LIMIT).encode()
    headers = sign(body.decode())
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        for start in range(0, len(body), 512):
            sent += 1
            yield body[start : start + 512]

    async with client.post(PATH, data=chunks(), headers=headers) as resp:
        assert resp.status == 413
        assert "Content-Length" not in resp.request_info.headers
        assert (await resp.json())["errcode"] == "M_TOO_LARGE"
    assert sent > 1
    assert await rows(db) == []


async def test_store_unavailable(
    client: Client, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    await db.execute("DROP TABLE webhook")  # the test's own database: nobody else uses it
    body = snapshot_body()
    headers = sign(body)
    with caplog.at_level(logging.ERROR, logger="bridge.web.webhooks"):
        status, answer = await post(client, body, headers)
    assert (status, answer["errcode"]) == (503, "M_UNAVAILABLE")
    assert headers["webhook-id"] in caplog.text
    signature = headers["webhook-signature"].split(",", 1)[1]
    assert signature not in caplog.text
    assert SECRET.removeprefix("whsec_") not in caplog.text


# --- REST API ---------------------------------------------------------------------------


async def seed_procurement(db: Database) -> None:
    now = int(time.time() * 1000)
    snapshot = design_examples()["procurement.upserted"]["data"]
    await Procurements(db).save_snapshot("26908", 7, "offers", json.dumps(snapshot), now)
    rooms = Rooms(db)
    names = {
        "space": "Закупка 26908 · Поставка арматуры А500С",
        "org": "Чат организации по закупке",
        "supplier:torgprofi": "[Архив] ООО «ТоргПрофи»",
    }
    for key, name in names.items():
        party = key.partition(":")[2] or None
        room = await rooms.intend("26908", key, is_space=key == "space", party=party)
        room_id = f"!{key.replace(':', '-')}:corp.example"
        await rooms.bind(room.creation_id, room_id, now)
        await rooms.set_state(room_id, "m.room.name", "", {"name": name})
        levels = power_levels(
            bot="@procbot:corp.example",  # type: ignore[arg-type]
            room_version="12",
            archived=key.startswith("supplier:"),
        )
        await rooms.set_state(room_id, "m.room.power_levels", "", levels)
    await rooms.intend("26908", "commission", is_space=False, party=None)  # being created


async def get(
    client: Client, path: str, token: str | None = API_TOKEN
) -> tuple[int, dict[str, Any]]:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    async with client.get(path, headers=headers) as resp:
        return resp.status, await resp.json()


async def get_with_query_token(client: Client, path: str) -> tuple[int, dict[str, Any]]:
    """The token in the URL, where proxies and browsers log it: never accepted."""
    async with client.get(path, params={"access_token": API_TOKEN}) as resp:
        return resp.status, await resp.json()


async def test_procurement_with_its_rooms(client: Client, db: Database) -> None:
    await seed_procurement(db)
    status, answer = await get(client, "/api/v1/procurements/26908")
    assert status == 200, answer
    schema_validator("Procurement").validate(answer)
    assert answer == {
        "id": "26908",
        "version": 7,
        "number": "26908",
        "title": "Поставка арматуры А500С",
        "stage": "offers",
        "rooms": [
            {
                "key": "org",
                "kind": "org",
                "name": "Чат организации по закупке",
                "room_id": "!org:corp.example",
                "archived": False,
                "is_space": False,
                "link": "https://matrix.to/#/!org:corp.example",
            },
            {
                "key": "space",
                "kind": "space",
                "name": "Закупка 26908 · Поставка арматуры А500С",
                "room_id": "!space:corp.example",
                "archived": False,
                "is_space": True,
                "link": "https://matrix.to/#/!space:corp.example",
            },
            {
                "key": "supplier:torgprofi",
                "kind": "supplier",
                "name": "[Архив] ООО «ТоргПрофи»",
                "room_id": "!supplier-torgprofi:corp.example",
                "archived": True,
                "is_space": False,
                "link": "https://matrix.to/#/!supplier-torgprofi:corp.example",
            },
        ],
    }


Check = Callable[[Client], Awaitable[tuple[int, dict[str, Any]]]]


@pytest.mark.parametrize(
    ("request_it", "status", "errcode"),
    [
        pytest.param(lambda c: get(c, "/api/v1/procurements/26908", None), 401, "M_UNKNOWN_TOKEN"),
        pytest.param(
            lambda c: get(c, "/api/v1/procurements/26908", "wrong"), 401, "M_UNKNOWN_TOKEN"
        ),
        pytest.param(lambda c: get(c, "/api/v1/procurements/unknown"), 404, "M_NOT_FOUND"),
        pytest.param(
            lambda c: get_with_query_token(c, "/api/v1/procurements/26908"),
            401,
            "M_UNKNOWN_TOKEN",
        ),
        pytest.param(
            lambda c: get(c, "/api/v1/procurements/26908", DOCUMENTS_ONLY), 403, "M_FORBIDDEN"
        ),
        pytest.param(lambda c: get(c, "/api/v1/no-such-route"), 404, "M_NOT_FOUND"),
        pytest.param(lambda c: get(c, "/api/v1/no-such-route", None), 401, "M_UNKNOWN_TOKEN"),
    ],
    ids=[
        "no-token",
        "wrong-token",
        "unknown-id",
        "token-in-url",
        "token-without-the-scope",
        "unknown-route",
        "unknown-route-without-token",
    ],
)
async def test_procurement_refused(
    client: Client, db: Database, request_it: Check, status: int, errcode: str
) -> None:
    await seed_procurement(db)
    answer_status, answer = await request_it(client)
    assert (answer_status, answer["errcode"]) == (status, errcode)
    schema_validator("Error").validate(answer)


async def test_openapi_is_served_without_a_token(client: Client) -> None:
    status, answer = await get(client, "/api/v1/openapi.json", None)
    assert (status, answer) == (200, openapi_document())
