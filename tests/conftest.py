"""Shared fixtures: a real Synapse per session, real databases, the bridge, users."""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from ruamel.yaml import YAML

from bridge.config import Config, new_whsec
from bridge.core import BridgeCore
from bridge.localsynapse import LocalSynapse, free_port

from .erp import ERP
from .matrix_user import MatrixUser
from .receiver import Receiver

POSTGRES_ADMIN_URL = os.environ.get(
    "BRIDGE_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/postgres"
)
SERVER_NAME = "localhost"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.path):
            item.add_marker(pytest.mark.integration)


class Deployment:
    """What one test session shares: the homeserver and the bridge's identity on it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.bridge_port = free_port()
        self.as_token = secrets.token_urlsafe(32)
        self.hs_token = secrets.token_urlsafe(32)
        self.webhook_secret = new_whsec()
        self.callback_secret = new_whsec()
        self.api_token = secrets.token_urlsafe(32)
        self.synapse = LocalSynapse(directory / "synapse", server_name=SERVER_NAME)

    @property
    def bridge_url(self) -> str:
        return f"http://127.0.0.1:{self.bridge_port}"

    def config_data(self, database: str, **overrides: Any) -> dict[str, Any]:
        data: dict[str, Any] = {
            "homeserver": {"address": self.synapse.url, "domain": SERVER_NAME},
            "appservice": {
                "address": self.bridge_url,
                "hostname": "127.0.0.1",
                "port": self.bridge_port,
                "id": "procurement",
                "bot": {"username": "procbot", "displayname": "Системный помощник"},
                "as_token": self.as_token,
                "hs_token": self.hs_token,
            },
            "database": database,
            "webhooks": {"secrets": [self.webhook_secret], "max_body_bytes": 1048576},
            "callbacks": {"url": None, "secret": self.callback_secret},
            "api": {
                "tokens": [
                    {"token": self.api_token, "scopes": ["read", "documents", "admin", "reports"]}
                ]
            },
            "bridge": {"locale": "ru", "federate": False, "max_attempts": 8},
        }
        for dotted, value in overrides.items():
            *parents, leaf = dotted.split("__")
            node = data
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = value
        return data

    def write_config(self, path: Path, database: str, **overrides: Any) -> Config:
        YAML().dump(self.config_data(database, **overrides), path)
        config = Config(str(path), "pkg://bridge/example-config.yaml")
        config.load()
        config.update(save=True)
        return config

    def write_registration(self) -> Path:
        config = self.write_config(self.directory / "registration-source.yaml", "sqlite:unused")
        path = self.directory / "registration.yaml"
        YAML().dump(config.registration(), path)
        return path


@pytest.fixture(scope="session")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    return Deployment(tmp_path_factory.mktemp("deployment"))


@pytest.fixture(scope="session")
async def synapse(deployment: Deployment) -> AsyncIterator[LocalSynapse]:
    deployment.synapse.app_service_files = [deployment.write_registration()]
    await deployment.synapse.start()
    yield deployment.synapse
    deployment.synapse.stop()


@pytest.fixture(params=["sqlite", "postgres"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, empty database of each kind the bridge supports."""
    if request.param == "sqlite":
        yield f"sqlite:{tmp_path / 'bridge.db'}"
        return
    async with postgres_database() as url:
        yield url


class postgres_database:
    """Creates a uniquely named PostgreSQL database and drops it afterwards."""

    def __init__(self) -> None:
        self.name = f"bridge_test_{uuid.uuid4().hex[:12]}"

    async def __aenter__(self) -> str:
        conn = await asyncpg.connect(POSTGRES_ADMIN_URL)
        try:
            await conn.execute(f'CREATE DATABASE "{self.name}"')
        finally:
            await conn.close()
        base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
        return f"{base}/{self.name}"

    async def __aexit__(self, *_: object) -> None:
        conn = await asyncpg.connect(POSTGRES_ADMIN_URL)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        finally:
            await conn.close()


@pytest.fixture
def config(deployment: Deployment, database_url: str, tmp_path: Path) -> Config:
    return deployment.write_config(tmp_path / "config.yaml", database_url)


@pytest.fixture
async def bridge(synapse: LocalSynapse, config: Config) -> AsyncIterator[BridgeCore]:
    core = BridgeCore(config)
    await core.start()
    yield core
    await core.stop()


StartBridge = Callable[..., Awaitable[BridgeCore]]


@pytest.fixture
async def bridge_with(
    synapse: LocalSynapse, deployment: Deployment, database_url: str, tmp_path: Path
) -> AsyncIterator[StartBridge]:
    """Starts the bridge with config overrides (`callbacks__url=…`); stopped after the test."""
    cores: list[BridgeCore] = []

    async def start(**overrides: Any) -> BridgeCore:
        config = deployment.write_config(tmp_path / "config.yaml", database_url, **overrides)
        core = BridgeCore(config)
        await core.start()
        cores.append(core)
        return core

    yield start
    for core in cores:
        await core.stop()


@pytest.fixture
async def user_factory(synapse: LocalSynapse) -> AsyncIterator[Any]:
    users: list[MatrixUser] = []

    async def make(name: str = "user", *, admin: bool = False, display: str = "") -> MatrixUser:
        user = await MatrixUser.register(
            synapse, f"{name}-{uuid.uuid4().hex[:8]}", admin=admin, name=display
        )
        users.append(user)
        return user

    yield make
    for user in users:
        await user.close()


@pytest.fixture
def erp(deployment: Deployment) -> ERP:
    return ERP(deployment.bridge_url, deployment.webhook_secret, deployment.api_token)


@pytest.fixture
async def receiver(deployment: Deployment) -> AsyncIterator[Receiver]:
    """The procurement system's callback endpoint, verifying every signature."""
    receiver = Receiver(deployment.callback_secret)
    await receiver.start()
    yield receiver
    await receiver.stop()
