"""Approval routes in Matrix: the document and its card, decisions and signatures, the outcome."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from ..db.approvals import Approvals, StoredApproval, StoredDecision
from ..db.callbacks import CallbackOutbox
from ..db.outbox import MatrixOutbox
from ..db.procurements import Procurements
from ..db.rooms import ManagedRoom, Rooms
from ..db.webhooks import StoredWebhook, WebhookInbox
from ..domain.approval import (
    ApprovalRefused,
    ApprovalRequest,
    ApprovalState,
    Completed,
    Decision,
    StepDecided,
    approval_completed_payload,
    approval_view,
    cancel,
    decide,
    parse_approval_cancel,
    parse_approval_request,
    start_approval,
    step_decided_payload,
)
from ..domain.cards import (
    Card,
    approval_card,
    approval_poll_answers,
    refusal_card,
    signature_card,
)
from ..domain.commands import Command, ParsedCommand
from ..domain.document import check_document, check_sha256
from ..domain.errors import InvalidInput, Refused
from ..domain.events import card_content, parse_poll_response, poll_end_content, poll_start_content
from ..domain.ids import ApprovalId, EventId, UserId
from ..domain.locale import Locale
from ..domain.plan import ApprovalRoomInput, RoomKind, parse_room_key, room_key
from ..domain.webhooks import ParsedWebhook
from ..signature import SignatureVerifier
from ..worker import Permanent, from_ms, now_ms
from .ticker import Ticker
from .webhooks import latest_snapshot

log = logging.getLogger("bridge.approvals")

_SIGNATURE_SUFFIXES = (".p7s", ".sig", ".p7m", ".sgn")
_SIGNATURE_TYPES = ("application/pkcs7-signature", "application/x-pkcs7-signature")


class DocumentPort(Protocol):
    """What approvals need of the document registry."""

    async def post_file(
        self,
        room_id: str,
        dedup_key: str,
        filename: str,
        mime_type: str,
        data: bytes,
        caption: str | None,
    ) -> int: ...

    async def download(self, mxc: str) -> bytes: ...

    async def fetch_url(self, url: str) -> bytes: ...


def approval_state(approval: StoredApproval, decisions: list[StoredDecision]) -> ApprovalState:
    """The route replayed from its stored, accepted decisions."""
    state = start_approval(_request(approval))
    for d in decisions:
        ok = None if d.signature is None else bool(d.signature.get("ok"))
        state, _ = decide(
            state, UserId(d.approver), Decision(d.decision), d.comment, ok, from_ms(d.ts)
        )
    if approval.outcome == "cancelled" and approval.ended_at is not None:
        state, _ = cancel(state, approval.cancel_reason, from_ms(approval.ended_at))
    return state


def _request(approval: StoredApproval) -> ApprovalRequest:
    return parse_approval_request(approval.request)


def _title(request: ApprovalRequest) -> str:
    info = request.document.info
    parts = [info.type, f"№ {info.number}" if info.number else None]
    return " ".join(p for p in parts if p) or info.filename


class ApprovalKeeper:
    def __init__(
        self,
        approvals: Approvals,
        procurements: Procurements,
        rooms: Rooms,
        outbox: MatrixOutbox,
        callbacks: CallbackOutbox,
        webhooks: WebhookInbox,
        verifier: SignatureVerifier,
        documents: DocumentPort,
        request_reconcile: Callable[[str], Awaitable[None]],
        reply: Callable[[dict[str, Any], Card], Awaitable[None]],
        locale: Locale,
        max_document_bytes: int,
    ) -> None:
        self.approvals = approvals
        self.procurements = procurements
        self.rooms = rooms
        self.outbox = outbox
        self.callbacks = callbacks
        self.webhooks = webhooks
        self.verifier = verifier
        self.documents = documents
        self.request_reconcile = request_reconcile
        self.reply = reply
        self.locale = locale
        self.max_document_bytes = max_document_bytes
        self._lock = asyncio.Lock()
        self.ticker = Ticker("approval-keeper", self._tick)

    # Webhooks -------------------------------------------------------------------------------

    async def admit(self, webhook: ParsedWebhook) -> None:
        if isinstance(webhook.value, ApprovalRequest):
            await self._check_people(webhook.value)

    async def _check_people(self, request: ApprovalRequest) -> None:
        """Approval rooms are internal: no supplier's member may be in one."""
        snapshot = await latest_snapshot(self.procurements, self.webhooks, request.procurement_id)
        if snapshot.stage.closed:
            raise Refused(
                f"procurement {request.procurement_id} is {snapshot.stage.value}",
                "ORG_PROCUREMENT_CLOSED",
            )
        for user in (request.initiator, *request.approvers):
            if snapshot.supplier_of(user) is not None:
                raise Refused(
                    f"{user} is a supplier's member and cannot take part in an approval",
                    "ORG_PROCUREMENT_SUPPLIER_IN_APPROVAL",
                )

    async def approval_requested(self, webhook: StoredWebhook) -> None:
        request = parse_approval_request(webhook.data)
        if await self.approvals.get(request.procurement_id, request.approval_id) is None:
            try:
                await self._check_people(request)
            except Refused as e:
                raise Permanent(f"{e.errcode}: {e.error}") from e
            data = request.document.content
            if data is None:
                assert request.document.url is not None
                data = await self.documents.fetch_url(request.document.url)
            try:
                check_document(len(data), self.max_document_bytes)
                if request.document.info.sha256:
                    check_sha256(data, request.document.info.sha256)
            except InvalidInput as e:
                raise Permanent(f"{e.path}: {e.error}") from e
            await self.approvals.create(
                request.procurement_id, request.approval_id, webhook.data, data, now_ms()
            )
            log.info("Approval %s of %s opened", request.approval_id, request.procurement_id)
        # Its room is part of the procurement's plan from now on.
        await self.request_reconcile(request.procurement_id)
        self.ticker.wake()

    async def approval_cancelled(self, webhook: StoredWebhook) -> None:
        cancelled = parse_approval_cancel(webhook.data)
        found = await self.approvals.find(cancelled.approval_id)
        if cancelled.procurement_id:
            found = [a for a in found if a.procurement_id == cancelled.procurement_id]
        if len(found) != 1:
            raise Permanent(f"unknown or ambiguous approval {cancelled.approval_id}")
        async with self._lock:
            approval = found[0]
            state = approval_state(approval, await self.approvals.decisions(approval))
            state, effects = cancel(state, cancelled.reason, datetime.now(UTC))
            await self._apply(approval, state, effects, None)
        self.ticker.wake()

    # The plan's input -----------------------------------------------------------------------

    async def plan_inputs(self, procurement_id: str) -> list[ApprovalRoomInput]:
        inputs = []
        for approval in await self.approvals.of_procurement(procurement_id):
            request = _request(approval)
            inputs.append(
                ApprovalRoomInput(
                    approval_id=request.approval_id,
                    title=_title(request),
                    initiator=request.initiator,
                    approvers=request.approvers,
                    closed=approval.outcome is not None,
                )
            )
        return inputs

    # Decisions ------------------------------------------------------------------------------

    async def _approval_of(self, room: ManagedRoom) -> StoredApproval | None:
        parsed = parse_room_key(room.key)
        if parsed is None or parsed[0] is not RoomKind.APPROVAL or parsed[1] is None:
            return None
        return await self.approvals.get(room.procurement_id, parsed[1])

    async def on_command(
        self, room: ManagedRoom, event: dict[str, Any], command: ParsedCommand
    ) -> Card | None:
        if command.command not in (Command.APPROVE, Command.REJECT):
            return None
        approval = await self._approval_of(room)
        if approval is None:
            return None
        decision = Decision.APPROVED if command.command is Command.APPROVE else Decision.REJECTED
        return await self._decide(approval, event, decision, command.argument or None)

    async def on_event(self, room: ManagedRoom, event: dict[str, Any]) -> None:
        content = event.get("content") or {}
        parsed = parse_poll_response(content)
        if parsed is not None:
            approval = await self.approvals.by_poll_event(parsed[0])
            if approval is None or not parsed[1]:
                return
            answer = parsed[1][0]
            if answer not in ("approve", "reject"):
                return
            decision = Decision.APPROVED if answer == "approve" else Decision.REJECTED
            refusal = await self._decide(approval, event, decision, None)
            if refusal is not None:
                await self.reply(event, refusal)
            return
        if _is_signature_file(content):
            approval = await self._approval_of(room)
            if approval is not None:
                await self._on_signature(room, approval, event)

    async def _decide(
        self,
        approval: StoredApproval,
        event: dict[str, Any],
        decision: Decision,
        comment: str | None,
    ) -> Card | None:
        """Applies one decision; returns the refusal to reply with, or None when taken."""
        approver = str(event["sender"])
        async with self._lock:
            approval = await self._reload(approval)
            state = approval_state(approval, await self.approvals.decisions(approval))
            signature = await self.approvals.signature_of(approval, approver)
            signature_ok = None if signature is None else signature[0]
            if decision is Decision.REJECTED:
                signature_ok, signature = None, None  # a rejection needs no signature
            ts = event.get("origin_server_ts")
            at = from_ms(ts) if isinstance(ts, int) else datetime.now(UTC)
            try:
                state, effects = decide(
                    state, UserId(approver), decision, comment, signature_ok, at
                )
            except ApprovalRefused as e:
                return refusal_card(e, self.locale)
            details = None if signature is None else signature[1]
            if not await self.approvals.add_decision(
                event["event_id"],
                approval,
                approver,
                decision.value,
                comment,
                details,
                int(at.timestamp() * 1000),
            ):
                return None  # this event was applied before
            await self._apply(approval, state, effects, details)
        return None

    async def _apply(
        self,
        approval: StoredApproval,
        state: ApprovalState,
        effects: tuple[Any, ...],
        signature: dict[str, Any] | None,
    ) -> None:
        key = f"{approval.procurement_id}:{approval.approval_id}"
        now = now_ms()
        for effect in effects:
            if isinstance(effect, StepDecided):
                payload = step_decided_payload(state, effect)
                if signature is not None:
                    payload["signature"] = {**payload["signature"], "verification": signature}
                await self.callbacks.enqueue(
                    f"approval.step_decided:{key}:{effect.step}",
                    approval.procurement_id,
                    "approval.step_decided",
                    payload,
                    now,
                )
            elif isinstance(effect, Completed):
                await self.approvals.end(approval, effect.outcome.value, now, state.cancel_reason)
                await self.callbacks.enqueue(
                    f"approval.completed:{key}",
                    approval.procurement_id,
                    "approval.completed",
                    approval_completed_payload(state),
                    now,
                )
        approval = await self._reload(approval)
        if approval.card_outbox_id is not None:
            await self._edit_card(approval, state, f"{len(state.steps)}:{now}")
        self.ticker.wake()

    async def _on_signature(
        self, room: ManagedRoom, approval: StoredApproval, event: dict[str, Any]
    ) -> None:
        content = event.get("content") or {}
        approver = str(event["sender"])
        request = _request(approval)
        if approver not in request.approvers:
            return
        try:
            signature = await self.documents.download(str(content["url"]))
        except Exception as e:
            log.warning("Could not fetch signature %s: %s", event["event_id"], e)
            raise
        document = await self.approvals.document(approval)
        result = await self.verifier.verify_async(signature, document, approver)
        details = result.as_dict()
        ts = event.get("origin_server_ts")
        await self.approvals.add_signature(
            event["event_id"],
            approval,
            approver,
            result.ok,
            details,
            ts if isinstance(ts, int) else now_ms(),
        )
        log.info(
            "Signature %s by %s for %s: %s",
            event["event_id"],
            approver,
            approval.approval_id,
            "verified" if result.ok else f"refused at {details['failed_check']}",
        )
        await self.reply(event, signature_card(details, self.locale))

    # Posting and finishing ------------------------------------------------------------------

    async def _tick(self) -> bool:
        """Settles every approval that is not finished; True while there are any."""
        pending = await self.approvals.unfinished()
        for approval in pending:
            async with self._lock:
                await self._settle(await self._reload(approval))
        return bool(pending)

    async def _settle(self, approval: StoredApproval) -> None:
        key = room_key(RoomKind.APPROVAL, approval.approval_id)
        room_id = await self.rooms.room_id_of(approval.procurement_id, key)
        if room_id is None:
            return  # being created by reconciliation
        state = approval_state(approval, await self.approvals.decisions(approval))
        if approval.card_outbox_id is None:
            await self._post(approval, room_id, state)
            approval = await self._reload(approval)
        if approval.outcome is not None:
            await self._finish(approval, room_id, state)

    async def _post(self, approval: StoredApproval, room_id: str, state: ApprovalState) -> None:
        """The document, its card and the decision poll; each once however often this runs."""
        request = state.request
        info = request.document.info
        prefix = f"approval:{approval.procurement_id}:{approval.approval_id}"
        file_id = await self.documents.post_file(
            room_id,
            f"{prefix}:file",
            info.filename,
            info.mime_type or "application/octet-stream",
            await self.approvals.document(approval),
            None,
        )
        now = now_ms()
        card_id = await self.outbox.enqueue(
            f"{prefix}:card", room_id, "m.room.message", await self._card(state, room_id), now
        )
        question = approval_card(state, self.locale).body.splitlines()[0]
        poll = poll_start_content(question, approval_poll_answers(self.locale), True, question)
        poll_id = await self.outbox.enqueue(
            f"{prefix}:poll", room_id, "org.matrix.msc3381.poll.start", poll, now
        )
        await self.approvals.set_posted(approval, file_id, card_id, poll_id)

    async def _finish(self, approval: StoredApproval, room_id: str, state: ApprovalState) -> None:
        prefix = f"approval:{approval.procurement_id}:{approval.approval_id}"
        if approval.poll_outbox_id is not None:
            poll_event_id = await self.outbox.event_id_of(approval.poll_outbox_id)
            if poll_event_id is None:
                return  # the poll is not out yet; end it once it is
            text = approval_card(state, self.locale).body
            await self.outbox.enqueue(
                f"{prefix}:end",
                room_id,
                "org.matrix.msc3381.poll.end",
                poll_end_content(EventId(poll_event_id), text),
                now_ms(),
            )
        await self._edit_card(approval, state, "final")
        await self.approvals.set_finished(approval)
        # The route is over: its room becomes an archive.
        await self.request_reconcile(approval.procurement_id)

    async def _edit_card(self, approval: StoredApproval, state: ApprovalState, why: str) -> None:
        assert approval.card_outbox_id is not None
        key = room_key(RoomKind.APPROVAL, approval.approval_id)
        room_id = await self.rooms.room_id_of(approval.procurement_id, key)
        assert room_id is not None
        await self.outbox.enqueue(
            f"approval:{approval.procurement_id}:{approval.approval_id}:edit:{why}",
            room_id,
            "m.room.message",
            await self._card(state, room_id),
            now_ms(),
            edit_of=approval.card_outbox_id,
        )

    async def _card(self, state: ApprovalState, room_id: str) -> dict[str, Any]:
        names = {UserId(k): name for k, name in (await self.rooms.display_names(room_id)).items()}
        return card_content(approval_card(state, self.locale, names))

    async def _reload(self, approval: StoredApproval) -> StoredApproval:
        fresh = await self.approvals.get(approval.procurement_id, approval.approval_id)
        assert fresh is not None
        return fresh

    # Reading --------------------------------------------------------------------------------

    async def view(self, procurement_id: str, approval_id: str) -> dict[str, Any] | None:
        approval = await self.approvals.get(procurement_id, ApprovalId(approval_id))
        if approval is None:
            return None
        decisions = await self.approvals.decisions(approval)
        view = approval_view(approval_state(approval, decisions))
        signatures = {d.approver: d.signature for d in decisions if d.signature}
        for step in view["steps"]:
            if step["approver"] in signatures:
                step["signature"]["verification"] = signatures[step["approver"]]
        return view


def _is_signature_file(content: dict[str, Any]) -> bool:
    if content.get("msgtype") != "m.file" or not isinstance(content.get("url"), str):
        return False
    name = str(content.get("filename") or content.get("body") or "").lower()
    mime = str((content.get("info") or {}).get("mimetype") or "").lower()
    return name.endswith(_SIGNATURE_SUFFIXES) or mime in _SIGNATURE_TYPES
