"""Operator endpoints: GET /health and GET /metrics."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web
from mautrix.client import ClientAPI
from mautrix.util.async_db import Database
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .. import metrics
from ..db.queue import WorkQueue

log = logging.getLogger("bridge.web.ops")
_CHECK_TIMEOUT_S = 5.0


class OpsAPI:
    def __init__(
        self, db: Database, client: ClientAPI, queues: Mapping[str, WorkQueue[Any]]
    ) -> None:
        self.db = db
        self.client = client
        self.queues = queues

    def register(self, app: web.Application) -> None:
        app.router.add_get("/health", self.health)
        app.router.add_get("/metrics", self.metrics)

    async def health(self, _: web.Request) -> web.Response:
        checks: dict[str, Callable[[], Awaitable[object]]] = {
            "database": lambda: self.db.fetchval("SELECT 1"),
            "homeserver": self.client.versions,
        }
        results = {name: await _check(name, probe) for name, probe in checks.items()}
        healthy = all(r == "ok" for r in results.values())
        return web.json_response(results, status=200 if healthy else 503)

    async def metrics(self, _: web.Request) -> web.Response:
        for name, queue in self.queues.items():
            try:
                metrics.QUEUE_DEPTH.labels(name).set(await queue.depth())
                metrics.QUEUE_DEAD.labels(name).set(await queue.dead_count())
            except Exception as e:  # the database being down must not hide the other metrics
                log.warning("Could not read the %s queue for metrics: %s", name, e)
        body = generate_latest(metrics.REGISTRY)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _check(name: str, probe: Callable[[], Awaitable[object]]) -> str:
    try:
        await asyncio.wait_for(probe(), _CHECK_TIMEOUT_S)
    except Exception as e:
        log.warning("Health check %s failed: %s", name, e)
        return f"unavailable: {type(e).__name__}"
    return "ok"
