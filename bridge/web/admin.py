"""Operator API: dead letters listed and retried on request (DESIGN §8)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from typing import Any

from aiohttp import web

from .auth import bearer_token, token_matches
from .errors import error_response


class AdminAPI:
    def __init__(
        self,
        tokens: Sequence[str],
        queues: Mapping[str, Any],
        wake: Sequence[Callable[[], None]],
    ) -> None:
        self.tokens = tokens
        self.queues = queues
        self.wake = wake

    def register(self, app: web.Application) -> None:
        app.router.add_get("/api/v1/dead-letters", self.list_dead)
        app.router.add_post("/api/v1/dead-letters/{queue}/{key}/retry", self.retry)

    def _refuse(self, request: web.Request) -> web.Response | None:
        token = bearer_token(request)
        if token is None or not token_matches(token, self.tokens):
            return error_response(401, "M_UNKNOWN_TOKEN", "A valid API bearer token is required")
        return None

    async def list_dead(self, request: web.Request) -> web.Response:
        if refusal := self._refuse(request):
            return refusal
        result = {
            name: [asdict(d) for d in await queue.dead_letters()]
            for name, queue in self.queues.items()
        }
        return web.json_response(result)

    async def retry(self, request: web.Request) -> web.Response:
        if refusal := self._refuse(request):
            return refusal
        queue = self.queues.get(request.match_info["queue"])
        if queue is None:
            return error_response(404, "M_NOT_FOUND", "No such queue", "queue")
        try:
            key = int(request.match_info["key"])
        except ValueError:
            return error_response(400, "M_INVALID_PARAM", "The key is a number", "key")
        if not await queue.retry_dead(key):
            return error_response(404, "M_NOT_FOUND", "No dead letter with this key", "key")
        for wake in self.wake:
            wake()
        return web.json_response({"retried": key})
