"""The document registry in Matrix: files posted in managed rooms recorded with their bytes,
`document.published` posted (fetched from its URL in a queue of its own), read receipts kept,
and the «документы» / «кто видел» commands."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from mautrix.client import ClientAPI

from ..db.documents import StoredDocument
from ..db.fetches import DocumentFetch
from ..db.rooms import ManagedRoom
from ..db.store import Store
from ..db.webhooks import StoredWebhook
from ..domain import policy
from ..domain.approval import ApprovalRequest
from ..domain.card import Card
from ..domain.cards import (
    document_not_found_card,
    document_too_large_card,
    documents_card,
    seen_card,
)
from ..domain.commands import Command, ParsedCommand
from ..domain.document import (
    DocumentPublished,
    check_document,
    check_sha256,
    parse_document_published,
    sha256_hex,
)
from ..domain.errors import InvalidInput, Refused
from ..domain.events import card_content
from ..domain.ids import DocumentId, EventId, ProcurementId, RoomId, RoomKey, UserId
from ..domain.incoming import is_timestamp
from ..domain.locale import Locale
from ..domain.registry import (
    OCTET_STREAM,
    DocumentSource,
    FileMessage,
    RegisteredDocument,
    document_uploaded_payload,
    document_view,
    file_message_content,
    find_document,
    from_ms,
    mime_for,
    parse_file_message,
    seen_by,
)
from ..domain.webhooks import ParsedWebhook
from ..feature import (
    Asker,
    Feature,
    FetchedHandler,
    FileBody,
    FileView,
    JsonView,
    Queue,
    Scope,
)
from ..fetch import DocumentFetcher, FetchRefused, check_url
from ..retry import Permanent
from ..worker import now_ms
from . import media
from .procurements import latest_snapshot

log = logging.getLogger("bridge.documents")

DEFAULT_MAX_BYTES = 50 * 1024 * 1024
DOCUMENTS_PATH = "/api/v1/procurements/{id}/documents"
CONTENT_PATH = "/api/v1/documents/{doc_id}/content"
FETCH_QUEUE = "fetches"

RoomFinder = Callable[[str, str], Awaitable[str]]


class DocumentKeeper:
    def __init__(
        self,
        client: ClientAPI,
        store: Store,
        fetcher: DocumentFetcher,
        room_for: RoomFinder,
        locale: Locale,
        max_bytes: int,
        fetch_concurrency: int = 4,
    ) -> None:
        self.client = client
        self.bot = UserId(str(client.mxid))
        self.store = store
        self.documents = store.documents
        self.procurements = store.procurements
        self.rooms = store.rooms
        self.outbox = store.outbox
        self.callbacks = store.callbacks
        self.fetches = store.fetches
        self.fetcher = fetcher
        self.room_for = room_for
        self.locale = locale
        self.max_bytes = max_bytes
        self.fetch_concurrency = fetch_concurrency
        # Set by core: the features that take fetched documents, by webhook type.
        self.on_fetched: Mapping[str, FetchedHandler] = {}

    def feature(self) -> Feature:
        return Feature(
            name="documents",
            webhooks={"document.published": self.document_published},
            admissions=(self.admit,),
            commands={Command.DOCUMENTS: self.on_command, Command.SEEN: self.on_command},
            # Listed first among the features: a file is on record before anything else (an
            # approval's signature) acts on it.
            listeners=(self.on_event,),
            ephemeral_listeners=(self.on_receipt,),
            routes=(
                JsonView(DOCUMENTS_PATH, self.list_view, Scope.DOCUMENTS),
                FileView(CONTENT_PATH, self.content_view, Scope.DOCUMENTS),
            ),
            queues=(
                Queue(
                    FETCH_QUEUE,
                    self.fetches,
                    self.fetches.due,
                    self.fetch,
                    concurrency=self.fetch_concurrency,
                ),
            ),
            fetched={"document.published": self._publish_fetched},
        )

    async def admit(self, webhook: ParsedWebhook) -> None:
        """A document URL the bridge will never fetch is refused at once (409), and so is a
        document for a procurement the bridge has no snapshot of (its room would never come)."""
        value = webhook.value
        if isinstance(value, DocumentPublished):
            await latest_snapshot(self.store, value.procurement_id)
        if isinstance(value, DocumentPublished | ApprovalRequest) and value.document.url:
            try:
                check_url(value.document.url, self.fetcher.policy)
            except FetchRefused as e:
                raise Refused(str(e), "ORG_PROCUREMENT_URL_NOT_ALLOWED") from e

    # Files posted in rooms ------------------------------------------------------------------

    async def on_event(self, room: ManagedRoom, event: dict[str, Any]) -> None:
        """A file posted in a managed room: recorded once with its bytes, and a member's
        upload reported to the procurement system (`document.uploaded`), together."""
        if event.get("type") != "m.room.message" or room.room_id is None or room.is_space:
            return
        if str(event.get("sender")) == self.bot:
            return  # the bot's own posts are recorded when queued (post_file)
        file = parse_file_message(event.get("content") or {})
        if file is None:
            return
        data = None
        if await self.documents.by_event(event["event_id"]) is None:
            data = await self._download(room, event, file)
            if data is None:
                return
        async with self.store.transaction():
            stored = await self.documents.by_event(event["event_id"])
            if stored is None:
                assert data is not None
                stored = await self._register(room, event, file, data)
            # Queued every time this runs, sent once: the dedup key is the event.
            await self.callbacks.enqueue(
                f"document.uploaded:{event['event_id']}",
                stored.document.procurement_id,
                "document.uploaded",
                document_uploaded_payload(stored.document),
                now_ms(),
            )

    async def _download(
        self, room: ManagedRoom, event: dict[str, Any], file: FileMessage
    ) -> bytes | None:
        """The file's bytes; None (and a word in the room) when the registry cannot keep it."""
        assert room.room_id is not None
        event_id = event["event_id"]
        try:
            return await media.download(self.client, file.mxc, self.max_bytes)
        except media.TooLarge as e:
            log.warning("File %s in %s not recorded: %s", event_id, room.room_id, e)
            card = document_too_large_card(file.filename, e.size, self.max_bytes, self.locale)
            await self.outbox.enqueue(
                f"document-too-large:{event_id}",
                room.room_id,
                "m.room.message",
                card_content(card),
                now_ms(),
            )
        except media.MediaMissing as e:
            # Nothing to keep; other listeners (approvals) still get the event.
            log.warning("File %s in %s not recorded: %s", event_id, room.room_id, e)
        return None

    async def _register(
        self, room: ManagedRoom, event: dict[str, Any], file: FileMessage, data: bytes
    ) -> StoredDocument:
        assert room.room_id is not None
        event_id = event["event_id"]
        ts = event.get("origin_server_ts")
        document = RegisteredDocument(
            doc_id=DocumentId(uuid.uuid4().hex),
            procurement_id=ProcurementId(room.procurement_id),
            room_id=RoomId(room.room_id),
            room_key=RoomKey(room.key),
            event_id=EventId(event_id),
            filename=file.filename,
            mime_type=mime_for(file.filename, file.mime_type),
            size=len(data),
            sha256=sha256_hex(data),
            uploader=UserId(str(event["sender"])),
            uploaded_at=from_ms(ts if isinstance(ts, int) else now_ms()),
            source=DocumentSource.USER,
            caption=file.caption,
        )
        seq = await self.documents.event_seq(room.room_id, event_id)
        await self.documents.record(document, file.mxc, data, seq=seq)
        log.info(
            "Document %s (%s, %d bytes) from %s in %s %s",
            document.doc_id,
            document.filename,
            document.size,
            document.uploader,
            room.procurement_id,
            room.key,
        )
        stored = await self.documents.by_event(event_id)
        assert stored is not None
        return stored

    # Posting files --------------------------------------------------------------------------

    async def document_published(self, webhook: StoredWebhook) -> None:
        """`document.published`: the file into its room, once however often this runs; a URL
        is fetched in the fetch queue, so a slow host delays only its own document."""
        published = parse_document_published(webhook.data)
        room_id = await self._open_room(published.procurement_id, published.room)
        document = published.document
        if document.content is None:
            assert document.url is not None
            await self.ask_fetch(webhook, published.procurement_id, document.url)
            return
        await self._publish(webhook, published, room_id, document.content)

    async def _publish_fetched(self, webhook: StoredWebhook, data: bytes) -> None:
        published = parse_document_published(webhook.data)
        room_id = await self._open_room(published.procurement_id, published.room)
        await self._publish(webhook, published, room_id, data)

    async def _publish(
        self, webhook: StoredWebhook, published: DocumentPublished, room_id: str, data: bytes
    ) -> None:
        info = published.document.info
        where = published.document.url or "content_base64"
        try:
            check_document(len(data), self.max_bytes)
            if info.sha256 is not None:
                check_sha256(data, info.sha256)
        except InvalidInput as e:
            raise Permanent(f"data.document ({where}): {e.error}") from e
        async with self.store.transaction():
            await self.post_file(
                room_id,
                f"document:{webhook.webhook_id}",
                info.filename,
                info.mime_type or OCTET_STREAM,
                data,
                published.caption,
            )

    async def ask_fetch(self, webhook: StoredWebhook, procurement_id: str, url: str) -> None:
        """Queues the fetch of a webhook's document (once per webhook)."""
        await self.fetches.enqueue(webhook.webhook_id, procurement_id, url, now_ms())

    async def fetch(self, job: DocumentFetch) -> None:
        """One document from the procurement system's URL, handed to whoever asked for it."""
        webhook = await self.store.webhooks.by_id(job.webhook_id)
        if webhook is None:
            raise Permanent(f"webhook {job.webhook_id} is not on record")
        handler = self.on_fetched.get(webhook.type)
        if handler is None:
            raise Permanent(f"nothing takes a fetched document of a {webhook.type}")
        fetched = await self.fetcher.fetch(job.url)
        log.info(
            "Fetched %s (%d bytes, %s) for webhook %s",
            fetched.url,
            len(fetched.data),
            fetched.content_type or "no content type",
            job.webhook_id,
        )
        await handler(webhook, fetched.data)

    async def post_file(
        self,
        room_id: str,
        dedup_key: str,
        filename: str,
        mime_type: str,
        data: bytes,
        caption: str | None,
    ) -> int:
        """Records a file in the registry and queues its message (the bytes are uploaded when
        it is sent); returns the outbox row. Safe to repeat with the same `dedup_key`: one
        entry, one message. Call it inside a transaction (the entry and its message go
        together)."""
        room = await self.rooms.by_room_id(room_id)
        if room is None:
            raise Permanent(f"{room_id} is not a managed room")
        check_document(len(data), self.max_bytes)
        mime = mime_for(filename, None if mime_type == OCTET_STREAM else mime_type)
        doc_id = DocumentId(uuid.uuid4().hex)
        now = now_ms()
        content = file_message_content(filename, mime, len(data), "", caption)
        del content["url"]  # filled in by the sender once the bytes are uploaded
        outbox_id = await self.outbox.enqueue(
            dedup_key, room_id, "m.room.message", content, now, upload_doc=doc_id
        )
        document = RegisteredDocument(
            doc_id=doc_id,
            procurement_id=ProcurementId(room.procurement_id),
            room_id=RoomId(room_id),
            room_key=RoomKey(room.key),
            event_id=None,
            filename=filename,
            mime_type=mime,
            size=len(data),
            sha256=sha256_hex(data),
            uploader=self.bot,
            uploaded_at=from_ms(now),
            source=DocumentSource.BRIDGE,
            caption=caption,
        )
        if await self.documents.record(document, "", data, outbox_id=outbox_id):
            log.info(
                "Posting document %s (%s) to %s %s",
                document.doc_id,
                filename,
                room.procurement_id,
                room.key,
            )
        return outbox_id

    async def _open_room(self, procurement_id: str, room_key: str) -> str:
        """The room a document goes to; an archive takes no new documents."""
        room_id = await self.room_for(procurement_id, room_key)
        states = await self.rooms.state_of([room_id])
        if policy.is_read_only(states[room_id].get(("m.room.power_levels", ""), {})):
            raise Permanent(f"room {room_key} of procurement {procurement_id} is archived")
        return room_id

    async def download(self, mxc: str) -> bytes:
        """The bytes of a file posted in a room, within `documents.max_bytes`."""
        return await media.download(self.client, mxc, self.max_bytes)

    # Read receipts --------------------------------------------------------------------------

    async def on_receipt(self, edu: dict[str, Any]) -> None:
        """Keeps each member's latest public read receipt in a managed room."""
        if edu.get("type") != "m.receipt":
            return
        room_id, content = edu.get("room_id"), edu.get("content")
        if not isinstance(room_id, str) or not isinstance(content, dict):
            return
        if await self.rooms.by_room_id(room_id) is None:
            return
        for event_id, receipts in content.items():
            # Only m.read: m.read.private is never shared (and should not arrive at all).
            readers = receipts.get("m.read") if isinstance(receipts, dict) else None
            if not isinstance(readers, dict):
                continue
            seq = await self.documents.event_seq(room_id, event_id)
            if seq is None:
                continue  # an event the bridge never saw says nothing about ours
            for user_id, receipt in readers.items():
                receipt = receipt if isinstance(receipt, dict) else {}
                # A receipt inside a thread does not mean the main timeline was read.
                if user_id == self.bot or receipt.get("thread_id") not in (None, "main"):
                    continue
                ts = receipt.get("ts")
                ts = ts if is_timestamp(ts) else now_ms()
                await self.documents.record_receipt(room_id, user_id, event_id, seq, ts)

    # Commands -------------------------------------------------------------------------------

    async def on_command(self, asker: Asker, command: ParsedCommand) -> Card | None:
        """«документы» and «кто видел»: this room's files only, so a supplier never learns of
        another supplier's documents."""
        room = asker.room
        if room is None or room.room_id is None:
            return None
        await self.documents.settle_posted()
        stored = await self.documents.of_room(room.room_id)
        names = await self._names(room.room_id)
        documents = [s.document for s in stored]
        if command.command is Command.DOCUMENTS:
            return documents_card(documents, names, self.locale)
        found = find_document(documents, command.argument)
        if found is None:
            return document_not_found_card(command.argument, self.locale)
        seq = next(s.seq for s in stored if s.document.doc_id == found.doc_id)
        marks = (await self.documents.read_marks([room.room_id]))[room.room_id]
        return seen_card(found, seen_by(seq, found.uploader, marks, self.bot), names, self.locale)

    async def _names(self, room_id: str) -> dict[UserId, str]:
        return {UserId(k): name for k, name in (await self.rooms.display_names(room_id)).items()}

    # Reading --------------------------------------------------------------------------------

    async def list_view(self, params: Mapping[str, str]) -> dict[str, Any] | None:
        """`GET /api/v1/procurements/{id}/documents`; None for an unknown procurement."""
        procurement_id = params["id"]
        if await self.procurements.get(procurement_id) is None:
            return None
        await self.documents.settle_posted()
        stored = await self.documents.of_procurement(procurement_id)
        marks = await self.documents.read_marks(sorted({s.document.room_id for s in stored}))
        return {
            "procurement_id": procurement_id,
            "documents": [
                document_view(
                    s.document,
                    seen_by(s.seq, s.document.uploader, marks[s.document.room_id], self.bot),
                )
                for s in stored
            ],
        }

    async def content_view(self, params: Mapping[str, str]) -> FileBody | None:
        """`GET /api/v1/documents/{doc_id}/content`: the bytes as the bridge keeps them."""
        stored = await self.documents.get(params["doc_id"])
        data = await self.documents.content(params["doc_id"]) if stored else None
        if stored is None or data is None:
            return None
        document = stored.document
        return FileBody(document.filename, document.mime_type or OCTET_STREAM, data)
