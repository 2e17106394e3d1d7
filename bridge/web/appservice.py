"""The application service API the homeserver calls: transactions, queries, ping."""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web

from .. import metrics
from ..db.inbox import Inbox
from ..domain.errors import InvalidInput
from ..domain.nesting import check_nesting
from ..worker import now_ms
from .auth import bearer_token, token_matches
from .errors import error_response, invalid

log = logging.getLogger("bridge.web.appservice")


class AppServiceAPI:
    def __init__(self, hs_token: str, inbox: Inbox) -> None:
        self.hs_token = hs_token
        self.inbox = inbox

    def register(self, app: web.Application) -> None:
        put, get, post = app.router.add_put, app.router.add_get, app.router.add_post
        for prefix in ("/_matrix/app/v1", ""):  # the legacy unprefixed paths, as mautrix serves
            put(prefix + "/transactions/{txn_id}", self.transaction)
            get(prefix + "/users/{user_id}", self.query)
            get(prefix + "/rooms/{alias}", self.query)
        post("/_matrix/app/v1/ping", self.ping)

    def _refuse_unauthorized(self, request: web.Request) -> web.Response | None:
        token = bearer_token(request)
        if token is None:
            return error_response(401, "M_MISSING_TOKEN", "Missing hs_token")
        if not token_matches(token, (self.hs_token,)):
            return error_response(403, "M_FORBIDDEN", "Invalid hs_token")
        return None

    async def transaction(self, request: web.Request) -> web.Response:
        if refusal := self._refuse_unauthorized(request):
            metrics.TRANSACTIONS.labels("unauthorized").inc()
            return refusal
        txn_id = request.match_info["txn_id"]
        try:
            # Strictly UTF-8: json.loads would take the bytes of lone surrogates from bytes.
            body = json.loads((await request.read()).decode("utf-8"))
        except (ValueError, RecursionError):  # too deep for the parser: unreadable too
            metrics.TRANSACTIONS.labels("malformed").inc()
            return error_response(400, "M_NOT_JSON", "Body is not UTF-8 JSON")
        try:
            check_nesting(body)
        except InvalidInput as e:
            metrics.TRANSACTIONS.labels("malformed").inc()
            return invalid(e)
        try:
            events, ephemeral = _parse_transaction(body)
        except ValueError as e:
            metrics.TRANSACTIONS.labels("malformed").inc()
            return error_response(400, "M_BAD_JSON", str(e))
        try:
            stored = await self.inbox.store_transaction(txn_id, events, ephemeral, now_ms())
        except Exception:
            # Not stored, so not acknowledged: the homeserver will send it again.
            log.exception("Could not store transaction %s", txn_id)
            metrics.TRANSACTIONS.labels("unavailable").inc()
            return error_response(503, "M_UNKNOWN", "Storage unavailable, retry later")
        metrics.TRANSACTIONS.labels("stored" if stored else "repeated").inc()
        return web.json_response({})

    async def query(self, request: web.Request) -> web.Response:
        if refusal := self._refuse_unauthorized(request):
            return refusal
        # The bridge creates no users or aliases on demand.
        return error_response(404, "M_NOT_FOUND", "Not handled by this bridge")

    async def ping(self, request: web.Request) -> web.Response:
        if refusal := self._refuse_unauthorized(request):
            return refusal
        return web.json_response({})


def _parse_transaction(body: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    if not isinstance(body, dict):
        raise ValueError("The body must be a JSON object")
    events = body.get("events")
    if not isinstance(events, list):
        raise ValueError("events: must be an array")
    for i, event in enumerate(events):
        if not isinstance(event, dict):
            raise ValueError(f"events[{i}]: must be an object")
        for key in ("event_id", "type"):
            if not isinstance(event.get(key), str):
                raise ValueError(f"events[{i}].{key}: must be a string")
    ephemeral: list[dict[str, Any]] = []
    for key in ("ephemeral", "de.sorunome.msc2409.ephemeral"):
        edus = body.get(key)
        if edus is None:
            continue
        if not isinstance(edus, list):
            raise ValueError(f"{key}: must be an array")
        for i, edu in enumerate(edus):
            if not isinstance(edu, dict) or not isinstance(edu.get("type"), str):
                raise ValueError(f"{key}[{i}]: must be an object with a type")
            ephemeral.append(edu)
    return events, ephemeral
