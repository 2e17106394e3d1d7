"""The running bridge: the one place that knows every component. It opens the store and the
homeserver connection, builds the features, registers what they declare (refusing duplicates
and gaps), and runs the workers, timers and the HTTP listener."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from mautrix.client import ClientAPI
from mautrix.errors import MatrixRequestError
from mautrix.util.async_db import Scheme

from .audit.keeper import AuditKeeper, verifier_key
from .audit.keys import KeyProblem, create_key, load_key
from .callbacks import QUEUE as CALLBACK_QUEUE
from .callbacks import CallbackSender
from .config import Config
from .db import open_database
from .db.leases import Leases
from .db.single import SecondProcess, SqliteProcessLock, upgrading_alone
from .db.store import Store
from .domain import tlog
from .domain.commands import Command
from .domain.plan import ApprovalRoomInput
from .domain.webhooks import WEBHOOK_TYPES
from .feature import FeatureConflict, FeatureSet, Queue, Timer
from .fetch import DocumentFetcher
from .matrix.approvals import ApprovalKeeper
from .matrix.assistant import Assistant
from .matrix.avatars import Avatars
from .matrix.bot import Bot
from .matrix.catchup import CatchUp
from .matrix.client import check_homeserver, ensure_bot, make_client
from .matrix.conversation import Conversation
from .matrix.documents import DocumentKeeper
from .matrix.people import People
from .matrix.procurements import ProcurementRooms
from .matrix.reconciler import Reconciler
from .matrix.reminders import Reminders
from .matrix.replies import Replier
from .matrix.requests import RequestDesk
from .matrix.sender import Sender
from .matrix.votes import VoteKeeper
from .matrix.watch import HomeserverWatch
from .processes import Lease, Membership, process_name
from .reports import Reports
from .signature import SignatureConfigError, SignatureVerifier, load_verifier_config
from .web.admin import AdminAPI, Parked
from .web.api import register_api
from .web.appservice import AppServiceAPI
from .web.auth import ApiAuth
from .web.ops import OpsAPI
from .web.webhooks import WebhookAPI
from .worker import QueueWorker

log = logging.getLogger("bridge.core")

# Homeserver transactions can carry many events; webhooks have their own, smaller limit.
_MAX_REQUEST_BYTES = 64 * 1024 * 1024
_DB_CLOSE_TIMEOUT_S = 10
_WEBHOOK_BODY_DEFAULT = 1024 * 1024
# Commands the conversation answers itself; every other must have a feature's handler.
_CONVERSATION_COMMANDS = frozenset({Command.HELP, Command.CANCEL})
REFUSED_CHANGES = "refused-changes"
# Leases of what one process at a time runs when several share the database.
EVENTS_LEASE, WEBHOOKS_LEASE, TIMERS_LEASE = "events", "webhooks", "timers"
_SHARED_POLL_S = 1.0


class StartupProblem(Exception):
    """Something outside the bridge stops the start; the message names what to fix."""


class BridgeCore:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.store = Store(
            open_database(str(config["database"]), config["database_opts"]),
            callbacks_enabled=bool(config["callbacks.url"]),
            bot=config.bot_mxid,
        )
        # The tables, by name, for the tests and the demo that look inside.
        self.db = self.store.db
        self.inbox, self.outbox = self.store.inbox, self.store.outbox
        self.webhooks, self.procurements = self.store.webhooks, self.store.procurements
        self.rooms, self.callbacks = self.store.rooms, self.store.callbacks
        self.votes, self.approvals = self.store.votes, self.store.approvals
        self.process_lock = SqliteProcessLock(str(config["database"]))
        self.session: aiohttp.ClientSession | None = None
        self.client: ClientAPI | None = None
        self.fetcher: DocumentFetcher | None = None
        self.runner: web.AppRunner | None = None
        self.workers: list[QueueWorker[Any]] = []
        self.timers: list[Timer] = []
        self.catch_up: CatchUp | None = None
        self.watch: HomeserverWatch | None = None
        self.audit: AuditKeeper | None = None
        self.membership: Membership | None = None

    async def start(self) -> None:
        await self._open_database()
        self.signer = await self._audit_signer()
        client = await self._connect()
        features = self.build_features(client)
        self.workers = self.build_workers(client, features)
        self.catch_up = CatchUp(
            client, self.store.inbox, self.store.rooms, self.config.max_backoff_s
        )
        self._share_database()
        self._watch_homeserver()
        await self._listen(features)
        if self.membership is not None:
            self.membership.start()
        for worker in self.workers:
            worker.start()
        for timer in self.timers:
            timer.start()
        self.catch_up.start()
        await self._ping_homeserver()
        log.info("Bridge running as %s", self.config.bot_mxid)

    # Steps of the start ---------------------------------------------------------------------

    async def _open_database(self) -> None:
        try:
            self.process_lock.acquire()
        except SecondProcess as e:
            raise StartupProblem(f"database: {e}") from None
        try:
            async with upgrading_alone(str(self.config["database"])):
                await self.store.db.start()
        except Exception as e:
            raise StartupProblem(f"database: cannot open {self._db_label()} ({e})") from None

    async def _audit_signer(self) -> tlog.Signer:
        """The checkpoint key; made at the first start of an empty log, never silently again."""
        path, origin = self.config.audit_key_path, self.config.audit_origin
        try:
            signer = load_key(path, origin)
            if signer is not None:
                return signer
            if await self.store.audit.latest_checkpoint() is not None:
                raise KeyProblem(
                    f"audit.key: {path} is missing, and the log has checkpoints signed by it; "
                    "restore the key file"
                )
            signer = create_key(path, self.config.new_audit_origin)
        except KeyProblem as e:
            raise StartupProblem(str(e)) from None
        log.info("Audit log key made: %s", verifier_key(signer))
        return signer

    async def _connect(self) -> ClientAPI:
        self.session = aiohttp.ClientSession()
        self.client = client = make_client(
            self.config["homeserver.address"],
            self.config["appservice.as_token"],
            self.config.bot_mxid,
            self.session,
        )
        await check_homeserver(client, self.config["homeserver.address"])
        await ensure_bot(client, self.config.bot_displayname)
        return client

    def build_features(self, client: ClientAPI) -> FeatureSet:
        config, store, locale = self.config, self.store, self.config.locale
        avatars = Avatars(client, store)
        self.reconciler = reconciler = Reconciler(
            client,
            store,
            domain=config["homeserver.domain"],
            locale=locale,
            federate=bool(config["bridge.federate"]),
            approvals=self._approval_rooms,
            avatars=avatars.urls,
            concurrency=config.provision_concurrency,
        )
        store.refused.request_reconcile = reconciler.request
        people = People(store)
        replier = Replier(store)
        conversation = Conversation(store, people, replier, locale)
        self.bot = bot = Bot(
            client,
            store,
            conversation,
            replier,
            reconciler.request,
            config["homeserver.domain"],
            locale,
        )
        rooms = ProcurementRooms(store, reconciler)
        assistant = Assistant(store, people, locale, config.bot_mxid, config.bot_displayname)
        requests = RequestDesk(store, replier, config.request_fields, locale)
        reminders = Reminders(client, store, people, replier, locale, config.reminder_offsets)
        self.fetcher = DocumentFetcher(config.fetch_policy)
        self.documents = documents = DocumentKeeper(
            client,
            store,
            self.fetcher,
            rooms.room_for,
            locale,
            config.max_document_bytes,
            config.fetch_concurrency,
        )
        self.vote_keeper = votes = VoteKeeper(store, locale)
        self.audit = audit = AuditKeeper(
            store.audit,
            self.signer,
            interval_s=float(config["audit.checkpoint_seconds"] or 60),
            witness_url=config["audit.checkpoint_url"] or None,
            session=self.session,
            max_backoff_s=config.max_backoff_s,
        )
        self.approval_keeper = approvals = ApprovalKeeper(
            store,
            self._signature_verifier(),
            documents,
            reconciler.request,
            replier,
            locale,
            config.max_document_bytes,
        )
        try:
            # Documents first: a file is on record before another feature acts on it.
            features = FeatureSet(
                (
                    rooms.feature(),
                    documents.feature(),
                    votes.feature(),
                    approvals.feature(),
                    assistant.feature(),
                    requests.feature(),
                    reminders.feature(),
                    avatars.feature(),
                    audit.feature(),
                    Reports(store, locale).feature(),
                ),
                webhook_types=WEBHOOK_TYPES,
                commands=set(Command) - _CONVERSATION_COMMANDS,
            )
        except FeatureConflict as e:
            raise StartupProblem(f"features: {e}") from None
        conversation.commands = features.commands
        conversation.actions = features.actions
        conversation.dialogs = features.dialogs
        bot.listeners = features.listeners
        bot.ephemeral_listeners = features.ephemeral_listeners
        bot.recorders = features.recorders
        documents.on_fetched = features.fetched
        self.timers = list(features.timers.values())
        # A new room may be what a timer waits for (an approval's card).
        reconciler.after_creation = [timer.wake for timer in self.timers]
        return features

    def build_workers(self, client: ClientAPI, features: FeatureSet) -> list[QueueWorker[Any]]:
        config, store = self.config, self.store
        sender = Sender(client, store.outbox, store.rooms, store.documents)
        queues = [
            Queue("events", store.inbox, store.inbox.due, self.bot.handle),
            Queue("webhooks", store.webhooks, store.webhooks.due, features.handle_webhook),
            Queue("outbox", store.outbox, store.outbox.due, sender.send),
            *features.queues.values(),
        ]
        if config["callbacks.url"]:
            assert self.session is not None
            deliver = CallbackSender(
                self.session, config["callbacks.url"], config["callbacks.secret"]
            ).deliver
            queues.append(Queue(CALLBACK_QUEUE, store.callbacks, store.callbacks.due, deliver))
        attempts = int(config["bridge.max_attempts"] or 8)
        return [
            QueueWorker(
                q.name,
                q.table,
                q.due,
                q.handle,
                # Convergence is enforcement: a procurement is never parked.
                None if q.table is store.procurements else attempts,
                max_backoff_s=config.max_backoff_s,
                concurrency=q.concurrency,
            )
            for q in queues
        ]

    def _share_database(self) -> None:
        """On PostgreSQL other processes may share the database: the ordered queues and the
        timers run under leases, the other queues' rows are claimed, and every loop looks for
        work others stored at least every `_SHARED_POLL_S`. SQLite has this process alone."""
        if self.store.db.scheme not in (Scheme.POSTGRES, Scheme.COCKROACH):
            return
        owner = process_name()
        queues = [worker.queue for worker in self.workers]
        for queue in queues:
            queue.owner = owner
        self.membership = membership = Membership(
            Leases(self.store.db),
            owner,
            (EVENTS_LEASE, WEBHOOKS_LEASE, TIMERS_LEASE),
            queues,
            self.config.max_backoff_s,
        )
        for worker in self.workers:
            worker.idle_s = _SHARED_POLL_S
            name = {"events": EVENTS_LEASE, "webhooks": WEBHOOKS_LEASE}.get(worker.name)
            if name is not None:
                self._run_under(membership.lease(name), worker)
        for timer in self.timers:
            self._run_under(membership.lease(TIMERS_LEASE), timer)
        assert self.catch_up is not None
        self._run_under(membership.lease(EVENTS_LEASE), self.catch_up)
        log.info("Sharing the database with other processes as %s", owner)

    @staticmethod
    def _run_under(lease: Lease, loop: Any) -> None:
        loop.gate = lease.held
        loop.idle_s = _SHARED_POLL_S
        lease.on_taken.append(loop.wake)

    def _watch_homeserver(self) -> None:
        """Once the homeserver is back after an outage, what waited for it goes at once."""
        assert self.session is not None

        async def retry_all() -> None:
            for worker in self.workers:
                await worker.queue.retry_waiting()
                worker.wake()
            for timer in self.timers:
                timer.retry_now()
            if self.catch_up is not None:
                self.catch_up.homeserver_back()  # what it lost in a restart, if it did

        self.watch = HomeserverWatch(self.session, self.config["homeserver.address"], retry_all)
        for worker in self.workers:
            worker.on_transient = self.watch.suspect
        self.watch.start()

    async def _listen(self, features: FeatureSet) -> None:
        self.runner = web.AppRunner(self.application(features), access_log=None)
        await self.runner.setup()
        host, port = self.config["appservice.hostname"], self.config["appservice.port"]
        try:
            await web.TCPSite(self.runner, host, port).start()
        except OSError as e:
            raise StartupProblem(
                f"appservice.port: cannot listen on {host}:{port} ({e})"
            ) from None
        log.info("Listening on %s:%s", host, port)

    def application(self, features: FeatureSet) -> web.Application:
        """The one HTTP application: appservice API, webhooks, REST API, health, metrics."""
        assert self.session is not None
        config, store = self.config, self.store
        auth = ApiAuth(config.api_tokens)
        app = web.Application(client_max_size=_MAX_REQUEST_BYTES, middlewares=[auth.middleware])
        AppServiceAPI(config["appservice.hs_token"], store.inbox).register(app)
        WebhookAPI(
            config["webhooks.secrets"],
            int(config["webhooks.max_body_bytes"] or _WEBHOOK_BODY_DEFAULT),
            store.webhooks,
            admit=features.admit,
        ).register(app, auth)
        register_api(app, auth, features.routes.values())
        queues = {worker.name: worker.queue for worker in self.workers}
        queues.setdefault(CALLBACK_QUEUE, store.callbacks)
        parked: dict[str, Parked] = {**queues, REFUSED_CHANGES: store.refused}
        AdminAPI(parked, wake=[w.wake for w in self.workers]).register(app, auth)
        OpsAPI(store.db, self.session, config["homeserver.address"], queues, parked).register(app)
        return app

    async def _approval_rooms(self, procurement_id: str) -> list[ApprovalRoomInput]:
        """The approvals whose rooms belong to a procurement's plan."""
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

    # Stopping -------------------------------------------------------------------------------

    async def stop(self) -> None:
        # Stop taking transactions first: anything not stored now is retried by the homeserver.
        if self.runner:
            await self.runner.cleanup()
        if self.watch is not None:
            await self.watch.stop()
        for timer in self.timers:
            await timer.stop()
        if self.catch_up is not None:
            await self.catch_up.stop()
        for worker in self.workers:
            await worker.stop()
        if self.audit is not None:
            await self.audit.close()
        if self.membership is not None:
            await self.membership.stop()  # the others take over at once
        if self.fetcher:
            await self.fetcher.close()
        if self.session:
            await self.session.close()
        try:
            await asyncio.wait_for(self.store.db.stop(), _DB_CLOSE_TIMEOUT_S)
        except TimeoutError:
            log.warning("The database did not close in %ss; leaving it", _DB_CLOSE_TIMEOUT_S)
        self.process_lock.release()

    def _db_label(self) -> str:
        url = self.store.db.url
        return str(url.with_password("***")) if url.password else str(url)
