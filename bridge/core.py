"""The running bridge: storage, homeserver connection, workers and the HTTP listener, wired."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from mautrix.client import ClientAPI
from mautrix.errors import MatrixRequestError

from .callbacks import MAX_ATTEMPTS as CALLBACK_ATTEMPTS
from .callbacks import QUEUE as CALLBACK_QUEUE
from .callbacks import CallbackSender
from .config import Config
from .db import open_database
from .db.approvals import Approvals
from .db.callbacks import CallbackOutbox
from .db.direct import DirectChats
from .db.inbox import Inbox
from .db.outbox import MatrixOutbox
from .db.procurements import Procurements
from .db.rooms import Rooms
from .db.votes import Votes
from .db.webhooks import WebhookInbox
from .domain.plan import ApprovalRoomInput
from .domain.webhooks import ParsedWebhook
from .matrix.approvals import ApprovalKeeper
from .matrix.bot import Bot
from .matrix.client import check_homeserver, ensure_bot, make_client
from .matrix.documents import max_document_bytes, wire_documents
from .matrix.reconciler import Reconciler
from .matrix.sender import Sender
from .matrix.votes import VoteKeeper
from .matrix.webhooks import WebhookProcessor
from .signature import SignatureConfigError, SignatureVerifier, load_verifier_config
from .web.admin import AdminAPI
from .web.api import RestAPI
from .web.appservice import AppServiceAPI
from .web.documents import document_routes
from .web.ops import OpsAPI
from .web.webhooks import Admission, WebhookAPI
from .worker import QueueWorker

log = logging.getLogger("bridge.core")

# Homeserver transactions can carry many events; webhooks have their own, smaller limit.
_MAX_REQUEST_BYTES = 64 * 1024 * 1024
_RECONCILE_ATTEMPTS = 1_000_000
_DB_CLOSE_TIMEOUT_S = 10
_WEBHOOK_BODY_DEFAULT = 1024 * 1024


class StartupProblem(Exception):
    """Something outside the bridge stops the start; the message names what to fix."""


class BridgeCore:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.db = open_database(str(config["database"]), config["database_opts"])
        self.inbox = Inbox(self.db)
        self.outbox = MatrixOutbox(self.db)
        self.direct_chats = DirectChats(self.db)
        self.webhooks = WebhookInbox(self.db)
        self.procurements = Procurements(self.db)
        self.rooms = Rooms(self.db)
        self.callbacks = CallbackOutbox(self.db, enabled=bool(config["callbacks.url"]))
        self.votes = Votes(self.db)
        self.vote_keeper: VoteKeeper | None = None
        self.approvals = Approvals(self.db)
        self.approval_keeper: ApprovalKeeper | None = None
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

        domain, locale = self.config["homeserver.domain"], self.config.locale
        self.reconciler = reconciler = Reconciler(
            client,
            self.procurements,
            self.rooms,
            self.outbox,
            domain=domain,
            locale=locale,
            federate=bool(self.config["bridge.federate"]),
            approvals=self.approval_rooms,
        )
        self.bot = bot = Bot(
            client,
            self.outbox,
            self.direct_chats,
            self.rooms,
            reconciler.request,
            domain,
            locale,
        )
        self.webhook_processor = processor = WebhookProcessor(
            self.procurements, self.rooms, self.outbox
        )
        self.vote_keeper = votes = VoteKeeper(
            client,
            self.votes,
            self.procurements,
            self.rooms,
            self.outbox,
            self.callbacks,
            self.webhooks,
            locale,
        )
        processor.register("vote.requested", votes.vote_requested)
        processor.register("vote.cancelled", votes.vote_cancelled)
        bot.listeners.append(votes.on_event)
        bot.command_handlers.append(votes.on_command)
        documents = wire_documents(self)
        self.approval_keeper = approvals = ApprovalKeeper(
            self.approvals,
            self.procurements,
            self.rooms,
            self.outbox,
            self.callbacks,
            self.webhooks,
            self._signature_verifier(),
            documents,
            reconciler.request,
            bot.reply,
            locale,
            max_document_bytes(self.config),
        )
        processor.register("approval.requested", approvals.approval_requested)
        processor.register("approval.cancelled", approvals.approval_cancelled)
        bot.listeners.append(approvals.on_event)
        bot.command_handlers.append(approvals.on_command)
        sender = Sender(client, self.outbox)
        attempts = int(self.config["bridge.max_attempts"] or 8)
        self.workers = [
            QueueWorker("events", self.inbox, self.inbox.due, bot.handle, attempts),
            QueueWorker(
                "webhooks",
                self.webhooks,
                self.webhooks.due,
                self.webhook_processor.handle,
                attempts,
            ),
            # Convergence never gives up: a pass keeps being retried, backing off to minutes.
            QueueWorker(
                "reconcile",
                self.procurements,
                self.procurements.due,
                reconciler.reconcile,
                _RECONCILE_ATTEMPTS,
            ),
            QueueWorker("outbox", self.outbox, self.outbox.due, sender.send, attempts),
        ]
        if self.config["callbacks.url"]:
            deliver = CallbackSender(
                self.session, self.config["callbacks.url"], self.config["callbacks.secret"]
            ).deliver
            self.workers.append(
                QueueWorker(
                    CALLBACK_QUEUE, self.callbacks, self.callbacks.due, deliver, CALLBACK_ATTEMPTS
                )
            )

        app = web.Application(client_max_size=_MAX_REQUEST_BYTES)
        AppServiceAPI(self.config["appservice.hs_token"], self.inbox).register(app)
        WebhookAPI(
            self.config["webhooks.secrets"],
            int(self.config["webhooks.max_body_bytes"] or _WEBHOOK_BODY_DEFAULT),
            self.webhooks,
            admit=_admit_all(votes.admit, approvals.admit),
        ).register(app)
        views = {
            "/api/v1/procurements/{id}/votes/{vote_id}": lambda p: votes.view(
                p["id"], p["vote_id"]
            ),
            "/api/v1/procurements/{id}/approvals/{approval_id}": lambda p: approvals.view(
                p["id"], p["approval_id"]
            ),
        }
        RestAPI(self.config.api_tokens, self.procurements, self.rooms, views).register(app)
        for method, path, handler in document_routes(documents, self.config.api_tokens):
            app.router.add_route(method, path, handler)
        queues = {w.name: w.queue for w in self.workers} | {CALLBACK_QUEUE: self.callbacks}
        OpsAPI(self.db, client, queues).register(app)
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
        votes.ticker.start()
        approvals.ticker.start()
        await self._ping_homeserver()
        log.info("Bridge running as %s, listening on %s:%s", self.config.bot_mxid, host, port)

    async def approval_rooms(self, procurement_id: str) -> list[ApprovalRoomInput]:
        """The approvals whose rooms belong to a procurement's plan."""
        if self.approval_keeper is None:
            return []
        return await self.approval_keeper.plan_inputs(procurement_id)

    def _signature_verifier(self) -> SignatureVerifier:
        base = Path(self.config.path).resolve().parent
        try:
            return load_verifier_config(self.config["signatures"], base_dir=base)
        except SignatureConfigError as e:
            raise StartupProblem(str(e)) from None

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
        for keeper in (self.vote_keeper, self.approval_keeper):
            if keeper is not None:
                await keeper.ticker.stop()
        for worker in self.workers:
            await worker.stop()
        if self.session:
            await self.session.close()
        try:
            await asyncio.wait_for(self.db.stop(), _DB_CLOSE_TIMEOUT_S)
        except TimeoutError:
            log.warning("The database did not close in %ss; leaving it", _DB_CLOSE_TIMEOUT_S)

    def _db_label(self) -> str:
        url = self.db.url
        return str(url.with_password("***")) if url.password else str(url)


def _admit_all(*checks: Admission) -> Admission:
    async def admit(webhook: ParsedWebhook) -> None:
        for check in checks:
            await check(webhook)

    return admit
