"""The running bridge: storage, homeserver connection, workers and the HTTP listener, wired."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
from aiohttp import web
from mautrix.client import ClientAPI
from mautrix.errors import MatrixRequestError
from mautrix.util.async_db import Database

from .config import Config
from .db import upgrade_table
from .db.direct import DirectChats
from .db.inbox import Inbox
from .db.outbox import MatrixOutbox
from .matrix.bot import Bot
from .matrix.client import check_homeserver, ensure_bot, make_client
from .matrix.sender import Sender
from .web.admin import AdminAPI
from .web.appservice import AppServiceAPI
from .web.ops import OpsAPI
from .worker import QueueWorker

log = logging.getLogger("bridge.core")

# Homeserver transactions can carry many events; webhooks have their own, smaller limit.
_MAX_REQUEST_BYTES = 64 * 1024 * 1024


class StartupProblem(Exception):
    """Something outside the bridge stops the start; the message names what to fix."""


class BridgeCore:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.db = Database.create(
            config["database"],
            upgrade_table=upgrade_table,
            db_args=dict(config["database_opts"] or {}),
            log=logging.getLogger("bridge.db"),
        )
        self.inbox = Inbox(self.db)
        self.outbox = MatrixOutbox(self.db)
        self.direct_chats = DirectChats(self.db)
        self.session: aiohttp.ClientSession | None = None
        self.client: ClientAPI | None = None
        self.runner: web.AppRunner | None = None
        self.workers: list[QueueWorker[Any]] = []

    async def start(self) -> None:
        try:
            await self.db.start()
        except Exception as e:
            raise StartupProblem(f"database: cannot open {self._db_label()} ({e})") from None
        self.session = aiohttp.ClientSession()
        self.client = client = make_client(
            self.config["homeserver.address"],
            self.config["appservice.as_token"],
            self.config.bot_mxid,
            self.session,
        )
        await check_homeserver(client, self.config["homeserver.address"])
        await ensure_bot(client, self.config.bot_displayname)

        bot = Bot(
            client,
            self.outbox,
            self.direct_chats,
            self.config["homeserver.domain"],
            self.config.locale,
        )
        sender = Sender(client, self.outbox)
        max_attempts = int(self.config["bridge.max_attempts"] or 8)
        events = QueueWorker("events", self.inbox, self.inbox.due, bot.handle, max_attempts)
        outgoing = QueueWorker("outbox", self.outbox, self.outbox.due, sender.send, max_attempts)
        self.workers = [events, outgoing]

        app = web.Application(client_max_size=_MAX_REQUEST_BYTES)
        AppServiceAPI(self.config["appservice.hs_token"], self.inbox).register(app)
        queues = {"events": self.inbox, "outbox": self.outbox}
        OpsAPI(self.db, client, queues).register(app)  # type: ignore[arg-type]
        AdminAPI(self.config.api_tokens, queues, wake=[w.wake for w in self.workers]).register(app)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        host, port = self.config["appservice.hostname"], self.config["appservice.port"]
        try:
            await web.TCPSite(self.runner, host, port).start()
        except OSError as e:
            raise StartupProblem(
                f"appservice.port: cannot listen on {host}:{port} ({e})"
            ) from None
        for worker in self.workers:
            worker.start()
        await self._ping_homeserver()
        log.info("Bridge running as %s, listening on %s:%s", self.config.bot_mxid, host, port)

    async def _ping_homeserver(self) -> None:
        """Asks the homeserver to deliver what it queued while the bridge was away, now."""
        assert self.client is not None
        try:
            await self.client.api.request(
                "POST",  # type: ignore[arg-type]
                f"/_matrix/client/v1/appservice/{self.config['appservice.id']}/ping",
                {},
            )
        except MatrixRequestError as e:
            log.warning("The homeserver's appservice ping failed: %s", e)

    async def stop(self) -> None:
        # Stop taking transactions first: anything not stored now is retried by the homeserver.
        if self.runner:
            await self.runner.cleanup()
        for worker in self.workers:
            await worker.stop()
        if self.session:
            await self.session.close()
        await self.db.stop()

    def _db_label(self) -> str:
        url = self.db.url
        return str(url.with_password("***")) if url.password else str(url)
