"""A throwaway local Synapse (the `matrix-synapse` package) for the demo and the test suite."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from ruamel.yaml import YAML

log = logging.getLogger("bridge.localsynapse")

# Everything a busy test or demo does at once must pass: Synapse's defaults allow ~0.2 msg/s.
_UNLIMITED = {"per_second": 100000, "burst_count": 100000}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LocalSynapse:
    """One Synapse process in `directory`, listening on 127.0.0.1:`port`, SQLite inside."""

    directory: Path
    server_name: str = "localhost"
    port: int = field(default_factory=free_port)
    app_service_files: list[Path] = field(default_factory=list)
    registration_secret: str = field(default_factory=lambda: secrets.token_hex(16))
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.directory / "homeserver.yaml"

    @property
    def log_path(self) -> Path:
        return self.directory / "homeserver.log"

    def write_config(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        log_config = self.directory / "log.yaml"
        YAML().dump(
            {
                "version": 1,
                "formatters": {"f": {"format": "%(asctime)s %(name)s %(levelname)s %(message)s"}},
                "handlers": {
                    "file": {
                        "class": "logging.FileHandler",
                        "formatter": "f",
                        "filename": str(self.log_path),
                    }
                },
                "root": {"level": "INFO", "handlers": ["file"]},
                "disable_existing_loggers": False,
            },
            log_config,
        )
        config: dict[str, Any] = {
            "server_name": self.server_name,
            "public_baseurl": self.url + "/",
            "pid_file": str(self.directory / "homeserver.pid"),
            "listeners": [
                {
                    "port": self.port,
                    "bind_addresses": ["127.0.0.1"],
                    "type": "http",
                    "tls": False,
                    "x_forwarded": False,
                    "resources": [{"names": ["client"], "compress": False}],
                }
            ],
            "database": {
                "name": "sqlite3",
                "args": {"database": str(self.directory / "homeserver.db")},
            },
            "log_config": str(log_config),
            "media_store_path": str(self.directory / "media"),
            "signing_key_path": str(self.directory / "signing.key"),
            "registration_shared_secret": self.registration_secret,
            "macaroon_secret_key": secrets.token_hex(16),
            "form_secret": secrets.token_hex(16),
            "report_stats": False,
            "trusted_key_servers": [],
            "suppress_key_server_warning": True,
            "enable_registration": False,
            "app_service_config_files": [str(p) for p in self.app_service_files],
            # Keep what the bridge promises (DESIGN §8): redacted originals are not purged.
            "redaction_retention_period": None,
            # Tests poll /sync; the default 2-minute response cache would show a stale world.
            "caches": {"sync_response_cache_duration": 0},
            "rc_message": _UNLIMITED,
            "rc_registration": _UNLIMITED,
            "rc_login": {
                "address": _UNLIMITED,
                "account": _UNLIMITED,
                "failed_attempts": _UNLIMITED,
            },
            "rc_joins": {"local": _UNLIMITED, "remote": _UNLIMITED},
            "rc_joins_per_room": _UNLIMITED,
            "rc_invites": {
                "per_room": _UNLIMITED,
                "per_user": _UNLIMITED,
                "per_issuer": _UNLIMITED,
            },
            "rc_admin_redaction": _UNLIMITED,
            "rc_room_creation": _UNLIMITED,
            "rc_3pid_validation": _UNLIMITED,
            "rc_presence": {"per_user": _UNLIMITED},
            "rc_media_create": _UNLIMITED,
            "rc_delayed_event_mgmt": _UNLIMITED,
            "rc_reports": _UNLIMITED,
            "user_directory": {"enabled": True, "search_all_users": False},
            "presence": {"enabled": False},
            "url_preview_enabled": False,
            "enable_media_repo": True,
            "max_upload_size": "100M",
            "experimental_features": {"msc3266_enabled": True},
        }
        YAML().dump(config, self.config_path)

    async def start(self, wait_s: float = 60.0) -> None:
        if not self.config_path.exists():
            self.write_config()
        log_file = (self.directory / "stdout.log").open("ab")
        # Popen returns at once; only the readiness wait below takes time.
        self.process = subprocess.Popen(  # noqa: S603, ASYNC220 - our own interpreter
            [sys.executable, "-m", "synapse.app.homeserver", "-c", str(self.config_path)],
            cwd=self.directory,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log_file.close()
        await self.wait_ready(wait_s)

    async def wait_ready(self, wait_s: float) -> None:
        deadline = time.monotonic() + wait_s
        async with aiohttp.ClientSession() as session:
            while True:
                if self.process is not None and self.process.poll() is not None:
                    raise RuntimeError(
                        f"Synapse exited with {self.process.returncode}; see {self.log_path}"
                    )
                try:
                    async with session.get(f"{self.url}/_matrix/client/versions") as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"Synapse did not start in {wait_s}s; see {self.log_path}")
                await asyncio.sleep(0.1)

    def stop(self, timeout: float = 30.0) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None

    async def restart(self) -> None:
        self.stop()
        await self.start()

    async def register(
        self, localpart: str, password: str, *, admin: bool = False, displayname: str = ""
    ) -> dict[str, Any]:
        """Registers a user through the shared-secret admin API; returns the login response."""
        url = f"{self.url}/_synapse/admin/v1/register"
        async with aiohttp.ClientSession() as session:
            async with session.get(url) as resp:
                nonce = (await resp.json())["nonce"]
            message = "\x00".join((nonce, localpart, password, "admin" if admin else "notadmin"))
            mac = hmac.new(self.registration_secret.encode(), message.encode(), hashlib.sha1)
            body = {
                "nonce": nonce,
                "username": localpart,
                "password": password,
                "admin": admin,
                "displayname": displayname or localpart,
                "mac": mac.hexdigest(),
            }
            async with session.post(url, json=body) as resp:
                data: dict[str, Any] = await resp.json()
                if resp.status != 200:
                    raise RuntimeError(f"registering {localpart} failed: {resp.status} {data}")
                return data
