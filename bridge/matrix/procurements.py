"""Procurements and their rooms: snapshots and notices from the procurement system, the queue
of procurements whose rooms must converge, and the procurement's REST view."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from markdown_it import MarkdownIt

from ..db.procurements import ReconcileJob
from ..db.rooms import ManagedRoom, StateMap
from ..db.store import Store
from ..db.webhooks import StoredWebhook
from ..domain.document import NoticePosted, parse_notice_posted
from ..domain.errors import Refused
from ..domain.plan import parse_room_key
from ..domain.policy import is_read_only
from ..domain.snapshot import Snapshot, parse_snapshot
from ..domain.webhooks import ParsedWebhook
from ..feature import Feature, JsonView, Queue, Scope
from ..retry import Permanent, Transient
from ..worker import now_ms
from .reconciler import Reconciler

log = logging.getLogger("bridge.procurements")

PROCUREMENT_PATH = "/api/v1/procurements/{id}"
RECONCILE_QUEUE = "reconcile"

# Notices are the ERP's words: render Markdown, but no raw HTML passes through.
_markdown = MarkdownIt("js-default", {"html": False, "linkify": False, "breaks": True})


async def latest_snapshot(store: Store, procurement_id: str) -> Snapshot:
    """The newest snapshot received, applied or still queued: what the procurement will be
    when the webhooks before this one are applied. Refused for an unknown procurement."""
    snapshots = [parse_snapshot(d) for d in await store.webhooks.pending_snapshots(procurement_id)]
    stored = await store.procurements.get(procurement_id)
    if stored is not None:
        snapshots.append(parse_snapshot(json.loads(stored.snapshot)))
    if not snapshots:
        raise Refused(f"unknown procurement {procurement_id}", "ORG_PROCUREMENT_UNKNOWN")
    return max(snapshots, key=lambda s: s.version)


class ProcurementRooms:
    def __init__(self, store: Store, reconciler: Reconciler) -> None:
        self.store = store
        self.procurements = store.procurements
        self.rooms = store.rooms
        self.outbox = store.outbox
        self.reconciler = reconciler

    def feature(self) -> Feature:
        return Feature(
            name="rooms",
            webhooks={
                "procurement.upserted": self.procurement_upserted,
                "notice.posted": self.notice_posted,
            },
            admissions=(self.admit,),
            routes=(JsonView(PROCUREMENT_PATH, self.view, Scope.READ),),
            queues=(
                # Convergence never parks a procurement: a pass is retried, backing off. Several
                # procurements converge at once, each in one pass at a time (one row each).
                Queue(
                    RECONCILE_QUEUE,
                    self.procurements,
                    self.procurements.due,
                    self.reconcile,
                    concurrency=self.reconciler.concurrency,
                ),
            ),
        )

    async def reconcile(self, job: ReconcileJob) -> None:
        await self.reconciler.reconcile(job)

    # Webhooks -------------------------------------------------------------------------------

    async def admit(self, webhook: ParsedWebhook) -> None:
        """A notice for a procurement the bridge has no snapshot of, even one not applied yet,
        is refused at once (409): its room would never come."""
        if isinstance(webhook.value, NoticePosted):
            await latest_snapshot(self.store, webhook.value.procurement_id)

    async def procurement_upserted(self, webhook: StoredWebhook) -> None:
        snapshot = parse_snapshot(webhook.data)
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
        else:
            log.info("Snapshot %s v%d is not newer: ignored", snapshot.id, snapshot.version)

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
        """The room id of a room key; waits while the room is being created, refuses for good
        a key the converged procurement does not have."""
        room_id = await self.rooms.room_id_of(procurement_id, key)
        if room_id is not None:
            return room_id
        if await self.procurements.get(procurement_id) is None:
            raise Permanent(f"unknown procurement {procurement_id}")
        if await self.store.documents.room_is_unknown(procurement_id, key):
            raise Permanent(f"procurement {procurement_id} has no room {key}")
        raise Transient(f"room {key} of procurement {procurement_id} is not created yet")

    # Reading --------------------------------------------------------------------------------

    async def view(self, params: Mapping[str, str]) -> dict[str, Any] | None:
        """`GET /api/v1/procurements/{id}`: the procurement and its rooms (the ERP's "open
        chat" buttons)."""
        stored = await self.procurements.get(params["id"])
        if stored is None:
            return None
        snapshot = json.loads(stored.snapshot)
        rooms = await self.rooms.of_procurement(stored.id)
        states = await self.rooms.state_of(r.room_id for r in rooms if r.room_id)
        views = (room_view(room, states.get(room.room_id or "", {})) for room in rooms)
        return {
            "id": stored.id,
            "version": stored.version,
            "number": snapshot.get("number") or stored.id,
            "title": snapshot.get("title"),
            "stage": stored.stage,
            "rooms": [view for view in views if view is not None],
        }


def room_view(room: ManagedRoom, state: StateMap) -> dict[str, Any] | None:
    """One entry of `rooms`; None for a room not created yet (a planned room is listed once it
    exists) or a row whose key names no room kind we know."""
    if room.room_id is None:
        return None
    if room.is_space:
        kind = "space"
    else:
        parsed = parse_room_key(room.key)
        if parsed is None:
            log.warning("Room %s has the unknown key %r: not listed", room.room_id, room.key)
            return None
        kind = parsed[0].value
    name = state.get(("m.room.name", ""), {}).get("name")
    power_levels = state.get(("m.room.power_levels", ""))
    return {
        "key": room.key,
        "kind": kind,
        "name": name if isinstance(name, str) else None,
        "room_id": room.room_id,
        "archived": power_levels is not None and is_read_only(power_levels),
        "is_space": room.is_space,
        "link": matrix_to(room.room_id),
    }


def matrix_to(room_id: str) -> str:
    """The https://matrix.to link that opens the room in the user's client."""
    return "https://matrix.to/#/" + quote(room_id, safe="!:")
