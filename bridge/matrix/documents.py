"""The document registry in Matrix: files posted in managed rooms recorded with their bytes,
`document.published` posted, read receipts kept, and the «документы» / «кто видел» commands."""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Any

import aiohttp
from mautrix.client import ClientAPI

from ..db.callbacks import CallbackOutbox
from ..db.documents import Documents, StoredDocument
from ..db.outbox import MatrixOutbox
from ..db.procurements import Procurements
from ..db.rooms import ManagedRoom, Rooms
from ..db.webhooks import StoredWebhook
from ..domain import policy
from ..domain.cards import (
    Card,
    document_not_found_card,
    document_too_large_card,
    documents_card,
    seen_card,
)
from ..domain.commands import Command, ParsedCommand
from ..domain.document import check_document, check_sha256, parse_document_published, sha256_hex
from ..domain.errors import InvalidInput
from ..domain.events import card_content
from ..domain.ids import DocumentId, EventId, ProcurementId, RoomId, RoomKey, UserId
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
from ..worker import Permanent, now_ms
from . import media

if TYPE_CHECKING:
    from ..config import Config
    from ..core import BridgeCore

log = logging.getLogger("bridge.documents")

DEFAULT_MAX_BYTES = 50 * 1024 * 1024
# Commands come as text; a file named «документы.pdf» is a file, not a command.
_COMMAND_MSGTYPES = ("m.text", "m.notice")


class DocumentKeeper:
    def __init__(
        self,
        client: ClientAPI,
        documents: Documents,
        procurements: Procurements,
        rooms: Rooms,
        outbox: MatrixOutbox,
        callbacks: CallbackOutbox,
        locale: Locale,
        max_bytes: int,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.client = client
        self.bot = UserId(str(client.mxid))
        self.documents = documents
        self.procurements = procurements
        self.rooms = rooms
        self.outbox = outbox
        self.callbacks = callbacks
        self.locale = locale
        self.max_bytes = max_bytes
        self.session = session or client.api.session

    # Files posted in rooms ------------------------------------------------------------------

    async def on_event(self, room: ManagedRoom, event: dict[str, Any]) -> None:
        """A file posted in a managed room: recorded once with its bytes; a member's upload is
        reported to the procurement system (`document.uploaded`)."""
        if event.get("type") != "m.room.message" or room.room_id is None or room.is_space:
            return
        if str(event.get("sender")) == self.bot:
            return  # the bot's own posts are recorded when queued (post_file)
        file = parse_file_message(event.get("content") or {})
        if file is None:
            return
        stored = await self.documents.by_event(event["event_id"])
        if stored is None:
            stored = await self._record_upload(room, event, file)
            if stored is None:
                return
        # Enqueued every time this runs, sent once: the dedup key is the event.
        await self.callbacks.enqueue(
            f"document.uploaded:{event['event_id']}",
            stored.document.procurement_id,
            "document.uploaded",
            document_uploaded_payload(stored.document),
            now_ms(),
        )

    async def _record_upload(
        self, room: ManagedRoom, event: dict[str, Any], file: FileMessage
    ) -> StoredDocument | None:
        assert room.room_id is not None
        event_id = event["event_id"]
        try:
            data = await media.download(self.client, file.mxc, self.max_bytes)
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
            return None
        except media.MediaMissing as e:
            # Nothing to keep; other listeners (approvals) still get the event.
            log.warning("File %s in %s not recorded: %s", event_id, room.room_id, e)
            return None
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
        if await self.documents.record(document, file.mxc, data, seq=seq):
            log.info(
                "Document %s (%s, %d bytes) from %s in %s %s",
                document.doc_id,
                document.filename,
                document.size,
                document.uploader,
                room.procurement_id,
                room.key,
            )
        return await self.documents.by_event(event_id)

    # Posting files --------------------------------------------------------------------------

    async def document_published(self, webhook: StoredWebhook) -> None:
        """`document.published`: the file into its room, once however often this runs."""
        published = parse_document_published(webhook.data)
        room_id = await self._room_for(published.procurement_id, published.room)
        document = published.document
        info = document.info
        if document.content is not None:
            data = document.content
        else:
            assert document.url is not None
            data = await self.fetch_url(document.url)
        where = document.url or "content_base64"
        try:
            check_document(len(data), self.max_bytes)
            if info.sha256 is not None:
                check_sha256(data, info.sha256)
        except InvalidInput as e:
            raise Permanent(f"data.document ({where}): {e.error}") from e
        await self.post_file(
            room_id,
            f"document:{webhook.webhook_id}",
            info.filename,
            info.mime_type or OCTET_STREAM,
            data,
            published.caption,
        )

    async def post_file(
        self,
        room_id: str,
        dedup_key: str,
        filename: str,
        mime_type: str,
        data: bytes,
        caption: str | None,
    ) -> int:
        """Posts a file as the bot and records it in the registry; returns the outbox row of the
        message. Safe to repeat with the same `dedup_key`: one upload, one message, one entry."""
        room = await self.rooms.by_room_id(room_id)
        if room is None:
            raise Permanent(f"{room_id} is not a managed room")
        check_document(len(data), self.max_bytes)
        mime = mime_for(filename, None if mime_type == OCTET_STREAM else mime_type)
        mxc = await self.documents.published_mxc(dedup_key)
        if mxc is None:
            uploaded = await media.upload(self.client, data, mime, filename)
            mxc = await self.documents.remember_mxc(dedup_key, uploaded)
        now = now_ms()
        content = file_message_content(filename, mime, len(data), mxc, caption)
        outbox_id = await self.outbox.enqueue(dedup_key, room_id, "m.room.message", content, now)
        document = RegisteredDocument(
            doc_id=DocumentId(uuid.uuid4().hex),
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
        if await self.documents.record(document, mxc, data, outbox_id=outbox_id):
            log.info(
                "Posting document %s (%s) to %s %s",
                document.doc_id,
                filename,
                room.procurement_id,
                room.key,
            )
        return outbox_id

    async def _room_for(self, procurement_id: str, room_key: str) -> str:
        room_id = await self.rooms.room_id_of(procurement_id, room_key)
        if room_id is None:
            if await self.procurements.get(procurement_id) is None:
                raise Permanent(f"unknown procurement {procurement_id}")
            if await self.documents.room_is_unknown(procurement_id, room_key):
                raise Permanent(f"procurement {procurement_id} has no room {room_key}")
            # Retried: the room is being created.
            raise RuntimeError(
                f"room {room_key} of procurement {procurement_id} is not created yet"
            )
        states = await self.rooms.state_of([room_id])
        if policy.is_read_only(states[room_id].get(("m.room.power_levels", ""), {})):
            raise Permanent(f"room {room_key} of procurement {procurement_id} is archived")
        return room_id

    async def fetch_url(self, url: str) -> bytes:
        """A document from the procurement system's URL, within `documents.max_bytes`.

        What retrying cannot fix (too large, a 4xx answer) raises Permanent; the rest is
        retried by the worker.
        """
        try:
            return await media.fetch_url(self.session, url, self.max_bytes)
        except media.TooLarge as e:
            raise Permanent(
                f"data.document.url: {url}: over documents.max_bytes ({self.max_bytes} bytes)"
            ) from e
        except media.FetchRefused as e:
            raise Permanent(f"data.document.url: {e}") from e

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
                ts = ts if isinstance(ts, int) else now_ms()
                await self.documents.record_receipt(room_id, user_id, event_id, seq, ts)

    # Commands -------------------------------------------------------------------------------

    async def on_command(
        self, room: ManagedRoom, event: dict[str, Any], command: ParsedCommand
    ) -> Card | None:
        """«документы» and «кто видел»: this room's files only, so a supplier never learns of
        another supplier's documents."""
        if command.command not in (Command.DOCUMENTS, Command.SEEN) or room.room_id is None:
            return None
        if (event.get("content") or {}).get("msgtype") not in _COMMAND_MSGTYPES:
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

    async def list_view(self, procurement_id: str) -> dict[str, Any] | None:
        """`GET /api/v1/procurements/{id}/documents`; None for an unknown procurement."""
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

    async def content(self, doc_id: str) -> tuple[RegisteredDocument, bytes] | None:
        """A document and its bytes, as the bridge keeps them."""
        stored = await self.documents.get(doc_id)
        data = await self.documents.content(doc_id) if stored else None
        if stored is None or data is None:
            return None
        return stored.document, data


def max_document_bytes(config: Config) -> int:
    """`documents.max_bytes`: the largest file the bridge posts or records."""
    value = config["documents.max_bytes"]
    if value is None:
        return DEFAULT_MAX_BYTES
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        from ..core import StartupProblem  # imported here: core imports this module

        raise StartupProblem(f"documents.max_bytes: {value!r} is not a positive number of bytes")
    return value


def wire_documents(core: BridgeCore) -> DocumentKeeper:
    """Builds the keeper and plugs it into the running core (called from BridgeCore.start,
    before the HTTP listener starts; the REST routes come from `web.documents`)."""
    assert core.client is not None
    keeper = DocumentKeeper(
        core.client,
        Documents(core.db),
        core.procurements,
        core.rooms,
        core.outbox,
        core.callbacks,
        core.config.locale,
        max_document_bytes(core.config),
        core.session,
    )
    core.webhook_processor.register("document.published", keeper.document_published)
    # First: a file is on record before anything else (an approval's signature) acts on it.
    core.bot.listeners.insert(0, keeper.on_event)
    core.bot.ephemeral_listeners.append(keeper.on_receipt)
    core.bot.command_handlers.append(keeper.on_command)
    return keeper
