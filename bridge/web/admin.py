"""Operator API: parked work listed and retried on request (DESIGN §8)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from typing import Protocol

from aiohttp import web

from ..db.queue import DeadLetter
from ..feature import Scope
from .auth import ApiAuth
from .errors import error_response


class Parked(Protocol):
    """Where work waits for an operator: a queue's dead letters, refused room changes."""

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]: ...
    async def dead_count(self) -> int: ...
    async def retry_dead(self, key: int) -> bool: ...


class AdminAPI:
    def __init__(self, parked: Mapping[str, Parked], wake: Sequence[Callable[[], None]]) -> None:
        self.parked = parked
        self.wake = wake

    def register(self, app: web.Application, auth: ApiAuth) -> None:
        auth.add(app, "GET", "/api/v1/dead-letters", self.list_dead, Scope.ADMIN)
        auth.add(app, "POST", "/api/v1/dead-letters/{queue}/{key}/retry", self.retry, Scope.ADMIN)

    async def list_dead(self, _: web.Request) -> web.Response:
        result = {
            name: [asdict(d) for d in await parked.dead_letters()]
            for name, parked in self.parked.items()
        }
        return web.json_response(result)

    async def retry(self, request: web.Request) -> web.Response:
        parked = self.parked.get(request.match_info["queue"])
        if parked is None:
            return error_response(404, "M_NOT_FOUND", "No such queue", "queue")
        try:
            key = int(request.match_info["key"])
        except ValueError:
            return error_response(400, "M_INVALID_PARAM", "The key is a number", "key")
        if not await parked.retry_dead(key):
            return error_response(404, "M_NOT_FOUND", "No dead letter with this key", "key")
        for wake in self.wake:
            wake()
        return web.json_response({"retried": key})
