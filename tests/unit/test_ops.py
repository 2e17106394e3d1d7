"""The operator's probes: /health asks the database and the homeserver on every call,
/health/live asks neither."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from ruamel.yaml import YAML

from bridge.web.api import openapi_document
from bridge.web.ops import OpsAPI

from .test_openapi import schema_validator

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


class Unreachable:
    """Stands for both the database and the HTTP session to the homeserver: counts every time
    it is asked, and fails as a dependency that is down does."""

    def __init__(self) -> None:
        self.asked = 0

    async def fetchval(self, *_: object) -> object:
        self.asked += 1
        raise ConnectionRefusedError("database down")

    def get(self, *_: object, **__: object) -> Any:
        self.asked += 1
        raise aiohttp.ClientConnectionError("homeserver down")


@pytest.fixture
async def ops() -> AsyncIterator[tuple[TestClient[web.Request, web.Application], Unreachable]]:
    down = Unreachable()
    app = web.Application()
    OpsAPI(cast(Any, down), cast(Any, down), "http://homeserver.invalid", {}, {}).register(app)
    async with TestClient(TestServer(app)) as client:
        yield client, down


async def test_live_asks_neither_the_database_nor_the_homeserver(
    ops: tuple[TestClient[web.Request, web.Application], Unreachable],
) -> None:
    client, down = ops
    async with client.get("/health/live") as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body == {"process": "ok"}
    schema_validator("Liveness").validate(body)
    assert down.asked == 0


async def test_health_asks_both_on_every_call(
    ops: tuple[TestClient[web.Request, web.Application], Unreachable],
) -> None:
    client, down = ops
    for call in (1, 2):
        async with client.get("/health") as resp:
            assert resp.status == 503
            body = await resp.json()
        assert body == {
            "database": "unavailable: ConnectionRefusedError",
            "homeserver": "unavailable: ClientConnectionError",
        }
        schema_validator("Health").validate(body)
        assert down.asked == 2 * call


def test_the_deployments_probe_what_they_mean() -> None:
    """Readiness and the compose healthcheck ask /health; liveness, startup and the proxy ask
    /health/live: a liveness probe on /health would restart every process over an outage."""
    documented = set(openapi_document()["paths"])
    manifests = list(
        YAML(typ="safe").load_all((DEPLOY / "kubernetes" / "bridge.yaml").read_text())
    )
    pod = next(m for m in manifests if m["kind"] == "Deployment")["spec"]["template"]["spec"]
    (bridge,) = pod["containers"]
    probes = {name: bridge[name]["httpGet"]["path"] for name in bridge if name.endswith("Probe")}
    assert probes == {
        "startupProbe": "/health/live",
        "readinessProbe": "/health",
        "livenessProbe": "/health/live",
    }
    compose = YAML(typ="safe").load((DEPLOY / "docker-compose.yml").read_text())
    healthchecks = {
        name: " ".join(service["healthcheck"]["test"])
        for name, service in compose["services"].items()
        if name.startswith("bridge-")
    }
    assert set(healthchecks) == {"bridge-1", "bridge-2"}
    for test in healthchecks.values():
        assert "/health'" in test
    proxied = re.findall(r"health_uri (\S+)", (DEPLOY / "Caddyfile").read_text())
    assert proxied == ["/health/live"]
    assert set(probes.values()) | set(proxied) <= documented
