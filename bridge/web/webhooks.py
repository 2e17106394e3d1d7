"""POST /api/v1/webhooks (DESIGN §4.1): check, verify, validate, store durably, answer 202."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Sequence

from aiohttp import web
from prometheus_client import Counter

from .. import metrics
from ..config import decode_whsec
from ..db.webhooks import WebhookInbox
from ..domain.errors import InvalidInput, Refused
from ..domain.nesting import check_nesting
from ..domain.webhooks import parse_webhook
from ..feature import Admission
from ..worker import now_ms
from .auth import ApiAuth
from .errors import error_response, invalid, refused

log = logging.getLogger("bridge.web.webhooks")

PATH = "/api/v1/webhooks"
TOLERANCE_S = 5 * 60
MAX_WEBHOOK_ID = 255
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
# Printable ASCII without spaces: the id goes into logs, answers and the database as it is.
_WEBHOOK_ID = re.compile(rf"[\x21-\x7e]{{1,{MAX_WEBHOOK_ID}}}")
_SIGNATURE_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")

WEBHOOKS = Counter(
    "bridge_webhooks_total",
    "Webhooks received, by outcome (accepted, duplicate, or why refused)",
    ["outcome"],
    registry=metrics.REGISTRY,
)


class WebhookAPI:
    """Every refusal happens before `inbox.store`, so a refused request changes nothing."""

    def __init__(
        self,
        secrets: Sequence[str],
        max_body_bytes: int,
        inbox: WebhookInbox,
        admit: Admission | None = None,
    ) -> None:
        if not secrets:
            raise ValueError("webhooks.secrets: at least one secret is needed")
        self.keys = [decode_whsec(secret) for secret in secrets]
        self.max_body_bytes = max_body_bytes
        self.inbox = inbox
        self.admit = admit

    def register(self, app: web.Application, auth: ApiAuth) -> None:
        # Public to the API's tokens: a webhook proves itself by its signature.
        auth.add(app, "POST", PATH, self.receive, None)

    async def receive(self, request: web.Request) -> web.Response:
        response = await self._receive(request)
        if response.status != 202:
            WEBHOOKS.labels(f"refused_{response.status}").inc()
        return response

    async def _receive(self, request: web.Request) -> web.Response:
        charset = (request.charset or "utf-8").lower()
        if request.content_type != "application/json" or charset not in ("utf-8", "utf8"):
            return error_response(
                415, "M_UNSUPPORTED_MEDIA_TYPE", "Send Content-Type: application/json (UTF-8)"
            )
        # Cheap refusals first: nothing is read from an unsigned or stale request.
        headers = {name: request.headers.get(name, "") for name in _SIGNATURE_HEADERS}
        if refusal := _check_headers(headers):
            return refusal
        too_large = error_response(
            413, "M_TOO_LARGE", f"The body is over the limit of {self.max_body_bytes} bytes"
        )
        if (request.content_length or 0) > self.max_body_bytes:
            return too_large
        body = await _read_at_most(request, self.max_body_bytes)
        if body is None:
            return too_large
        # The signature covers the raw bytes: verified before anything reads them.
        if not _signed(self.keys, headers, body):
            return error_response(
                401,
                "M_UNAUTHORIZED",
                "No signature in webhook-signature matches the body with any configured secret",
                "headers.webhook-signature",
            )
        webhook_id = headers["webhook-id"]
        if not _WEBHOOK_ID.fullmatch(webhook_id):
            return error_response(
                400,
                "M_INVALID_PARAM",
                f"webhook-id must be 1 to {MAX_WEBHOOK_ID} printable ASCII characters, no spaces",
                "headers.webhook-id",
            )
        try:
            text = body.decode("utf-8")
            decoded = json.loads(text, parse_constant=_refuse_constant)
        except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError included
            return error_response(400, "M_NOT_JSON", "The body is not UTF-8 JSON")
        try:
            check_nesting(decoded)
            parsed = parse_webhook(decoded)
        except InvalidInput as e:
            return invalid(e)
        try:
            if self.admit is not None and not await self.inbox.has(webhook_id):
                # What the current state forbids (a vote in an archived room) is refused now,
                # while the sender can still act on the answer.
                await self.admit(parsed)
        except Refused as e:
            log.info("Webhook %s (%s) refused: %s", webhook_id, parsed.type, e.error)
            return refused(e)
        except Exception:
            log.exception("Could not check webhook %s (%s)", webhook_id, parsed.type)
            return error_response(503, "M_UNAVAILABLE", "Storage unavailable, retry later")
        try:
            # The raw text is stored: the worker parses it again with the rules of its time.
            stored = await self.inbox.store(
                webhook_id, parsed.type, parsed.procurement_id, text, now_ms()
            )
        except Exception:
            # Not stored, so not acknowledged: the sender retries with the same id.
            log.exception("Could not store webhook %s (%s)", webhook_id, parsed.type)
            return error_response(503, "M_UNAVAILABLE", "Storage unavailable, retry later")
        status = "accepted" if stored else "duplicate"
        if not stored:
            log.info("Webhook %s was received before: not stored again", webhook_id)
        WEBHOOKS.labels(status).inc()
        return web.json_response({"id": webhook_id, "status": status}, status=202)


def _check_headers(headers: dict[str, str]) -> web.Response | None:
    """401 for a missing signature header or a timestamp more than 5 minutes off."""
    for name, value in headers.items():
        if not value:
            return error_response(
                401, "M_UNAUTHORIZED", f"Missing the {name} header", f"headers.{name}"
            )
    timestamp = headers["webhook-timestamp"]
    if not _TIMESTAMP.fullmatch(timestamp):
        return error_response(
            401,
            "M_UNAUTHORIZED",
            "webhook-timestamp must be the unix time in whole seconds",
            "headers.webhook-timestamp",
        )
    skew = int(timestamp) - int(time.time())
    if abs(skew) > TOLERANCE_S:
        when = "in the future" if skew > 0 else "old"
        return error_response(
            401,
            "M_UNAUTHORIZED",
            f"webhook-timestamp is {abs(skew)} seconds {when}; at most {TOLERANCE_S} are allowed",
            "headers.webhook-timestamp",
        )
    return None


def _signed(keys: Sequence[bytes], headers: dict[str, str], body: bytes) -> bool:
    """Whether any `v1,` signature is the HMAC-SHA256 of `{id}.{timestamp}.{body}` under any key.

    Written on `hmac` rather than `standardwebhooks.Webhook.verify`, which decodes the body as
    UTF-8 first (so it cannot check the raw bytes of a body that is not) and lets a malformed
    signature list escape as ValueError. Tests check both agree on everything else. Every key
    and every signature is compared, in constant time, whichever matches.
    """
    given: list[bytes] = []
    for entry in headers["webhook-signature"].split():
        version, _, signature = entry.partition(",")
        if version != "v1":
            continue  # another scheme (v1a is asymmetric), not ours to check
        try:
            given.append(base64.b64decode(signature, validate=True))
        except (binascii.Error, ValueError):
            continue
    # aiohttp decodes header bytes with surrogateescape; this gives the sender's bytes back.
    prefix = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode(
        "utf-8", "surrogateescape"
    )
    matched = False
    for key in keys:
        mac = hmac.new(key, prefix, hashlib.sha256)
        mac.update(body)
        expected = mac.digest()
        for candidate in given:
            matched |= hmac.compare_digest(expected, candidate)
    return matched


async def _read_at_most(request: web.Request, limit: int) -> bytes | None:
    """The body, or None once it proves longer than `limit`: never more is buffered."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(limit + 1 - size):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return None
    return b"".join(chunks)


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")
