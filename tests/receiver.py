"""The procurement system's callback endpoint, for tests: verifies every signature."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from bridge.localsynapse import free_port


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


class Receiver:
    """The procurement system's endpoint: verifies every request, answers as told."""

    def __init__(self, secret: str) -> None:
        self.port = free_port()
        self.webhook = Webhook(secret)
        self.requests: list[Request] = []
        self.unsigned = 0
        self.status_for: Callable[[dict[str, Any]], int] = lambda body: 200
        self.runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/callbacks"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/callbacks", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner:
            await self.runner.cleanup()

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
