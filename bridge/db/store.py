"""Every table of the bridge, on one database; and the transaction that binds them."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

from mautrix.util.async_db import Connection, Database

from .approvals import Approvals
from .audit import AuditLog
from .avatars import RoomAvatars
from .buttons import Buttons
from .callbacks import CallbackOutbox
from .dialogs import Dialogs
from .direct import DirectChats
from .documents import Documents
from .fetches import DocumentFetches
from .inbox import Inbox
from .outbox import MatrixOutbox
from .procurements import Procurements
from .refusals import RefusedEffects
from .reminders import Reminders
from .requests import Requests
from .rooms import Rooms
from .search import SearchIndex
from .transaction import transaction
from .votes import Votes
from .webhooks import WebhookInbox


class Store:
    def __init__(self, db: Database, *, callbacks_enabled: bool, bot: str | None = None) -> None:
        self.db = db
        self.audit = AuditLog(db)
        self.inbox = Inbox(db, self.audit, bot)
        self.outbox = MatrixOutbox(db)
        self.direct_chats = DirectChats(db)
        self.webhooks = WebhookInbox(db, self.audit)
        self.procurements = Procurements(db)
        self.rooms = Rooms(db)
        self.refused = RefusedEffects(db)
        self.callbacks = CallbackOutbox(db, self.audit, enabled=callbacks_enabled)
        self.votes = Votes(db)
        self.approvals = Approvals(db)
        self.documents = Documents(db, self.audit)
        self.fetches = DocumentFetches(db)
        self.search = SearchIndex(db)
        self.buttons = Buttons(db)
        self.dialogs = Dialogs(db)
        self.requests = Requests(db)
        self.reminders = Reminders(db)
        self.avatars = RoomAvatars(db)

    def transaction(self) -> AbstractAsyncContextManager[Connection]:
        """A fact and everything it causes, written together or not at all."""
        return transaction(self.db)
