"""Applies stored webhooks: snapshots to the procurement table, notices and cards to rooms."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

from markdown_it import MarkdownIt

from ..db.outbox import MatrixOutbox
from ..db.procurements import Procurements
from ..db.rooms import Rooms
from ..db.webhooks import StoredWebhook, WebhookInbox
from ..domain.document import NoticePosted, parse_notice_posted
from ..domain.errors import InvalidInput, Refused
from ..domain.snapshot import Snapshot, check_successor, parse_snapshot
from ..worker import Permanent, now_ms

log = logging.getLogger("bridge.webhooks")

# Notices are the ERP's words: render Markdown, but no raw HTML passes through.
_markdown = MarkdownIt("js-default", {"html": False, "linkify": False, "breaks": True})

Handler = Callable[[StoredWebhook], Awaitable[None]]


async def latest_snapshot(
    procurements: Procurements, webhooks: WebhookInbox, procurement_id: str
) -> Snapshot:
    """The newest snapshot received, applied or still queued: what the procurement will be
    when the webhooks before this one are applied. Refused for an unknown procurement."""
    snapshots = [parse_snapshot(d) for d in await webhooks.pending_snapshots(procurement_id)]
    stored = await procurements.get(procurement_id)
    if stored is not None:
        snapshots.append(parse_snapshot(json.loads(stored.snapshot)))
    if not snapshots:
        raise Refused(f"unknown procurement {procurement_id}", "ORG_PROCUREMENT_UNKNOWN")
    return max(snapshots, key=lambda s: s.version)


class NotYet(Exception):
    """The webhook refers to something that does not exist yet (e.g. a room being created)."""


class WebhookProcessor:
    def __init__(self, procurements: Procurements, rooms: Rooms, outbox: MatrixOutbox) -> None:
        self.procurements = procurements
        self.rooms = rooms
        self.outbox = outbox
        self.handlers: dict[str, Handler] = {
            "procurement.upserted": self.procurement_upserted,
            "notice.posted": self.notice_posted,
        }

    def register(self, webhook_type: str, handler: Handler) -> None:
        self.handlers[webhook_type] = handler

    async def handle(self, webhook: StoredWebhook) -> None:
        handler = self.handlers.get(webhook.type)
        if handler is None:
            raise Permanent(f"no handler for {webhook.type}")
        try:
            await handler(webhook)
        except InvalidInput as e:
            # Validated on arrival; only a change of rules between then and now lands here.
            raise Permanent(f"{e.path}: {e.error}") from e

    async def procurement_upserted(self, webhook: StoredWebhook) -> None:
        snapshot = parse_snapshot(webhook.data)
        stored = await self.procurements.get(snapshot.id)
        if stored is not None and stored.version >= snapshot.version:
            log.info(
                "Snapshot %s v%d is not newer than v%d: ignored",
                snapshot.id,
                snapshot.version,
                stored.version,
            )
            return
        if stored is not None:
            check_successor(parse_snapshot(json.loads(stored.snapshot)), snapshot)
        saved = await self.procurements.save_snapshot(
            snapshot.id,
            snapshot.version,
            snapshot.stage.value,
            json.dumps(webhook.data, ensure_ascii=False),
            now_ms(),
        )
        if saved:
            log.info(
                "Procurement %s: v%d, %s", snapshot.id, snapshot.version, snapshot.stage.value
            )

    async def notice_posted(self, webhook: StoredWebhook) -> None:
        notice: NoticePosted = parse_notice_posted(webhook.data)
        room_id = await self.room_for(notice.procurement_id, notice.room)
        content = {
            "msgtype": "m.notice",
            "body": notice.markdown,
            "format": "org.matrix.custom.html",
            "formatted_body": _markdown.render(notice.markdown).strip(),
            "m.mentions": {},
        }
        await self.outbox.enqueue(
            f"notice:{webhook.webhook_id}", room_id, "m.room.message", content, now_ms()
        )

    async def room_for(self, procurement_id: str, key: str) -> str:
        """The room id of a room key; retried while the room is still being created."""
        room_id = await self.rooms.room_id_of(procurement_id, key)
        if room_id is None:
            if await self.procurements.get(procurement_id) is None:
                raise Permanent(f"unknown procurement {procurement_id}")
            raise NotYet(f"room {key} of procurement {procurement_id} does not exist yet")
        return room_id
