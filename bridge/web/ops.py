"""Operator endpoints: GET /health, GET /health/live and GET /metrics."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp
from aiohttp import web
from mautrix.util.async_db import Database
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .. import metrics
from ..db.queue import WorkQueue
from .admin import Parked

log = logging.getLogger("bridge.web.ops")
_CHECK_TIMEOUT_S = 5.0


class OpsAPI:
    def __init__(
        self,
        db: Database,
        session: aiohttp.ClientSession,
        homeserver: str,
        queues: Mapping[str, WorkQueue[Any]],
        parked: Mapping[str, Parked],
    ) -> None:
        self.db = db
        self.session = session
        self.versions_url = homeserver.rstrip("/") + "/_matrix/client/versions"
        self.queues = queues
        self.parked = parked

    def register(self, app: web.Application) -> None:
        app.router.add_get("/health", self.health)
        app.router.add_get("/health/live", self.live)
        app.router.add_get("/metrics", self.metrics)

    async def health(self, _: web.Request) -> web.Response:
        """Both probed on every call, never from a cache: 503 names what is down."""
        checks: dict[str, Callable[[], Awaitable[object]]] = {
            "database": lambda: self.db.fetchval("SELECT 1"),
            "homeserver": self._homeserver,
        }
        results = dict(
            zip(
                checks,
                await asyncio.gather(*(_check(name, probe) for name, probe in checks.items())),
                strict=True,
            )
        )
        healthy = all(r == "ok" for r in results.values())
        return web.json_response(results, status=200 if healthy else 503)

    async def live(self, _: web.Request) -> web.Response:
        """Answers whenever the event loop does, asking neither the database nor the homeserver:
        a liveness probe restarts what fails it, and a restart cures neither one's outage."""
        return web.json_response({"process": "ok"})

    async def _homeserver(self) -> None:
        async with self.session.get(self.versions_url) as resp:
            resp.raise_for_status()

    async def metrics(self, _: web.Request) -> web.Response:
        now = time.time()
        for name, queue in self.queues.items():
            try:
                metrics.QUEUE_DEPTH.labels(name).set(await queue.depth())
                since = await queue.oldest_waiting_since()
                metrics.QUEUE_OLDEST.labels(name).set(0 if since is None else now - since / 1000)
            except Exception as e:  # the database being down must not hide the other metrics
                log.warning("Could not read the %s queue for metrics: %s", name, e)
        for name, parked in self.parked.items():
            try:
                metrics.QUEUE_DEAD.labels(name).set(await parked.dead_count())
            except Exception as e:
                log.warning("Could not count what %s parked: %s", name, e)
        body = generate_latest(metrics.REGISTRY)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _check(name: str, probe: Callable[[], Awaitable[object]]) -> str:
    try:
        await asyncio.wait_for(probe(), _CHECK_TIMEOUT_S)
    except Exception as e:
        log.warning("Health check %s failed: %s", name, e)
        return f"unavailable: {type(e).__name__}"
    return "ok"
