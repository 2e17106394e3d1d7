"""The procurement system's callback endpoint, for tests: verifies every signature."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from .local_server import LocalServer


@dataclass(frozen=True)
class Request:
    """A request whose signature the receiver verified, and what it answered."""

    webhook_id: str
    timestamp: int
    raw: bytes
    body: dict[str, Any]
    status: int

    @property
    def key(self) -> str:
        return str(self.body["data"].get("key"))


class Receiver(LocalServer):
    """The procurement system's endpoint: verifies every request, answers as told."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.webhook = Webhook(secret)
        self.requests: list[Request] = []
        self.unsigned = 0
        self.status_for: Callable[[dict[str, Any]], int] = lambda body: 200

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/callbacks"

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/callbacks", self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body = self.webhook.verify(raw, dict(request.headers))
        except WebhookVerificationError:
            self.unsigned += 1
            return web.Response(status=401)
        assert request.content_type == "application/json"
        status = self.status_for(body)
        self.requests.append(
            Request(
                request.headers["webhook-id"],
                int(request.headers["webhook-timestamp"]),
                raw,
                body,
                status,
            )
        )
        return web.json_response({}, status=status)

    def delivered(self) -> list[Request]:
        return [r for r in self.requests if r.status == 200]

    def delivered_keys(self) -> list[str]:
        return [r.key for r in self.delivered()]

    def tries_of(self, key: str) -> list[Request]:
        return [r for r in self.requests if r.key == key]
