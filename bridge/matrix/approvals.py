"""Approval routes: the document and its card, decisions and signatures, the outcome. A
decision is written with everything it causes (the outcome, callbacks, the card's edit) in
one transaction; the Matrix side goes out through the outbox."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Protocol

from ..db.approvals import ApprovalKey, StoredApproval, StoredDecision
from ..db.outbox import Relation
from ..db.rooms import ManagedRoom
from ..db.store import Store
from ..db.webhooks import StoredWebhook
from ..domain.answers import button, confirm_card, decision_title, phrase_card
from ..domain.approval import (
    ApprovalCancel,
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
from ..domain.audit import Kind
from ..domain.card import Card
from ..domain.cards import (
    approval_card,
    refusal_card,
    signature_card,
)
from ..domain.commands import Command, ParsedCommand
from ..domain.document import check_document, check_sha256
from ..domain.errors import InvalidInput, Refused
from ..domain.events import card_content, parse_poll_response
from ..domain.ids import ApprovalId, UserId
from ..domain.incoming import mapping
from ..domain.locale import Locale
from ..domain.plan import ApprovalRoomInput, RoomKind, parse_room_key, room_key
from ..domain.text import clean_text
from ..domain.webhooks import ParsedWebhook
from ..feature import DISMISS, Answer, Asker, Button, Feature, JsonView, Reply, Scope
from ..retry import Permanent
from ..signature import SignatureVerifier
from ..timer import ItemTimer
from ..worker import from_ms, now_ms
from .procurements import latest_snapshot
from .replies import Replier

log = logging.getLogger("bridge.approvals")

APPROVAL_PATH = "/api/v1/procurements/{id}/approvals/{approval_id}"
# The buttons' action and the conversation this feature declares.
DECIDE = "approval.decide"
REASON = "approval.reason"
_DOCUMENT_PENDING = Refused("the document has not arrived yet", "ORG_PROCUREMENT_DOCUMENT_PENDING")
_SIGNATURE_SUFFIXES = (".p7s", ".sig", ".p7m", ".sgn")
_SIGNATURE_TYPES = ("application/pkcs7-signature", "application/x-pkcs7-signature")
# A comment goes into the card and the callback: long enough for any reason people write.
MAX_COMMENT = 2000


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

    async def ask_fetch(self, webhook: StoredWebhook, procurement_id: str, url: str) -> None: ...


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
    # Stored without the document's bytes, which are kept apart.
    return parse_approval_request(approval.request, content_required=False)


def _stored_request(data: Any) -> dict[str, Any]:
    """The request as kept: the document's bytes are not repeated inside it."""
    stored = json.loads(json.dumps(data))
    stored.get("document", {}).pop("content_base64", None)
    return dict(stored)


def approval_title(request: ApprovalRequest) -> str:
    """«ТКА № 234/01-02»: the document's type and number, else its file name."""
    info = request.document.info
    parts = [info.type, f"№ {info.number}" if info.number else None]
    return " ".join(p for p in parts if p) or info.filename


class ApprovalKeeper:
    def __init__(
        self,
        store: Store,
        verifier: SignatureVerifier,
        documents: DocumentPort,
        request_reconcile: Callable[[str], Awaitable[None]],
        replier: Replier,
        locale: Locale,
        max_document_bytes: int,
    ) -> None:
        self.store = store
        self.approvals = store.approvals
        self.rooms = store.rooms
        self.outbox = store.outbox
        self.callbacks = store.callbacks
        self.verifier = verifier
        self.documents = documents
        self.request_reconcile = request_reconcile
        self.replier = replier
        self.locale = locale
        self.max_document_bytes = max_document_bytes
        self._lock = asyncio.Lock()
        self.timer = ItemTimer("approvals", self.approvals.due, self._settle, lambda a: a.key)

    def feature(self) -> Feature:
        return Feature(
            name="approvals",
            webhooks={
                "approval.requested": self.approval_requested,
                "approval.cancelled": self.approval_cancelled,
            },
            admissions=(self.admit,),
            commands={Command.APPROVE: self.on_command, Command.REJECT: self.on_command},
            listeners=(self.on_event,),
            routes=(JsonView(APPROVAL_PATH, self.view, Scope.READ),),
            timers=(self.timer,),
            fetched={"approval.requested": self.document_fetched},
            actions={DECIDE: self.on_click},
            dialogs={REASON: self.on_reason},
        )

    # Webhooks -------------------------------------------------------------------------------

    async def admit(self, webhook: ParsedWebhook) -> None:
        if isinstance(webhook.value, ApprovalRequest):
            await self._check_people(webhook.value)
            await self._check_new(webhook.value)
        elif isinstance(webhook.value, ApprovalCancel):
            await self._check_known(webhook.value)

    async def _check_known(self, cancelled: ApprovalCancel) -> None:
        """A cancellation names an approval the bridge holds, or was asked for in a webhook
        not applied yet; any other could never be applied."""
        if await self._cancelled_approvals(cancelled):
            return
        for requested in await self.store.webhooks.pending_of_type("approval.requested"):
            same_procurement = cancelled.procurement_id in (None, requested.get("procurement_id"))
            if requested.get("approval_id") == cancelled.approval_id and same_procurement:
                return
        raise Refused(
            f"unknown approval {cancelled.approval_id}", "ORG_PROCUREMENT_APPROVAL_UNKNOWN"
        )

    async def _cancelled_approvals(self, cancelled: ApprovalCancel) -> list[StoredApproval]:
        found = await self.approvals.find(cancelled.approval_id)
        if cancelled.procurement_id:
            found = [a for a in found if a.procurement_id == cancelled.procurement_id]
        return found

    async def _check_people(self, request: ApprovalRequest) -> None:
        """Approval rooms are internal: no supplier's member may be in one."""
        snapshot = await latest_snapshot(self.store, request.procurement_id)
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

    async def _check_new(self, request: ApprovalRequest) -> None:
        """An approval id names one route for good: its room holds that route's people and
        document, so another request under the same id is refused, not merged."""
        known = await self.approvals.get(request.procurement_id, request.approval_id)
        if known is None or _same_route(_request(known), request):
            return
        raise Refused(
            f"approval {request.approval_id} of procurement {request.procurement_id} exists "
            "with another document or other participants; use a new approval_id",
            "ORG_PROCUREMENT_APPROVAL_EXISTS",
        )

    async def approval_requested(self, webhook: StoredWebhook) -> None:
        request = parse_approval_request(webhook.data)
        if await self.approvals.get(request.procurement_id, request.approval_id) is None:
            try:
                await self._check_people(request)
            except Refused as e:
                raise Permanent(f"{e.errcode}: {e.error}") from e
            data = request.document.content
            if data is not None:
                self._check_bytes(request, data)
            async with self.store.transaction():
                await self.approvals.create(
                    request.procurement_id,
                    request.approval_id,
                    _stored_request(webhook.data),
                    data,
                    now_ms(),
                )
                if data is None:
                    assert request.document.url is not None
                    await self.documents.ask_fetch(
                        webhook, request.procurement_id, request.document.url
                    )
                # Its room is part of the procurement's plan from now on.
                await self.request_reconcile(request.procurement_id)
            log.info("Approval %s of %s opened", request.approval_id, request.procurement_id)
        else:
            await self.request_reconcile(request.procurement_id)
        self.timer.wake()

    async def document_fetched(self, webhook: StoredWebhook, data: bytes) -> None:
        """The document of an approval requested by URL has arrived."""
        request = parse_approval_request(webhook.data)
        self._check_bytes(request, data)
        await self.approvals.set_document(
            ApprovalKey(request.procurement_id, request.approval_id), data
        )
        self.timer.wake()

    def _check_bytes(self, request: ApprovalRequest, data: bytes) -> None:
        try:
            check_document(len(data), self.max_document_bytes)
            if request.document.info.sha256:
                check_sha256(data, request.document.info.sha256)
        except InvalidInput as e:
            raise Permanent(f"{e.path}: {e.error}") from e

    async def approval_cancelled(self, webhook: StoredWebhook) -> None:
        cancelled = parse_approval_cancel(webhook.data)
        found = await self._cancelled_approvals(cancelled)
        if len(found) != 1:
            raise Permanent(f"unknown or ambiguous approval {cancelled.approval_id}")
        async with self._deciding(found[0].key):
            approval = await self._reload(found[0].key)
            state = approval_state(approval, await self.approvals.decisions(approval))
            state, effects = cancel(state, cancelled.reason, datetime.now(UTC))
            await self._apply(approval, state, effects, None)
        self.timer.wake()

    # The plan's input -----------------------------------------------------------------------

    async def plan_inputs(self, procurement_id: str) -> list[ApprovalRoomInput]:
        inputs = []
        for approval in await self.approvals.of_procurement(procurement_id):
            request = _request(approval)
            inputs.append(
                ApprovalRoomInput(
                    approval_id=request.approval_id,
                    title=approval_title(request),
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

    async def on_command(self, asker: Asker, command: ParsedCommand) -> Answer:
        """A decision typed as text counts only once confirmed with a click: «согласовать,
        но позже» must not approve anything. What would be refused is said at once."""
        approval = await self._approval_of(asker.room) if asker.room else None
        if approval is None:
            return None
        decision = Decision.APPROVED if command.command is Command.APPROVE else Decision.REJECTED
        comment = _bounded(command.argument or None)
        refusal = await self._refusal(approval, asker.user, decision, comment)
        if refusal is not None:
            return refusal
        action = _decide_action(approval, decision, comment)
        what = decision_title(decision, approval_title(_request(approval)), comment, self.locale)
        return Reply(
            confirm_card(what, self.locale),
            (
                Button(button(self.locale, "confirm"), action, asker.user),
                Button(button(self.locale, "decline"), {"kind": DISMISS}, asker.user),
            ),
            once=True,
        )

    async def on_click(self, asker: Asker, action: Mapping[str, Any]) -> Answer:
        """A click: a confirmation, the card's «Согласовать», or its «Отклонить» (which asks
        for the reason first, unless the confirmation carries it)."""
        approval = await self.approvals.get(
            str(action["procurement_id"]), str(action["approval_id"])
        )
        if approval is None:
            return None
        decision = Decision(str(action["decision"]))
        comment = action.get("comment")
        if decision is Decision.REJECTED and not comment:
            refusal = await self._refusal(approval, asker.user, decision, "…")
            if refusal is not None:
                return refusal
            await self.store.dialogs.put(
                asker.room_id,
                asker.user,
                REASON,
                {"procurement_id": approval.procurement_id, "approval_id": approval.approval_id},
                now_ms(),
            )
            return phrase_card("reason_ask", self.locale)
        return await self._decide_answered(approval, asker.event, decision, comment)

    async def on_reason(self, asker: Asker, text: str, state: Mapping[str, Any]) -> Answer:
        """The reason for a rejection clicked on the card: the rejection itself."""
        await self.store.dialogs.end(asker.room_id, asker.user)
        approval = await self.approvals.get(
            str(state["procurement_id"]), str(state["approval_id"])
        )
        if approval is None:
            return None
        return await self._decide_answered(
            approval, asker.event, Decision.REJECTED, _bounded(text)
        )

    async def _decide_answered(
        self,
        approval: StoredApproval,
        event: dict[str, Any],
        decision: Decision,
        comment: str | None,
    ) -> Card:
        """A decision taken by a click (or the reason asked for): the person is told it
        counted, also where the card is not in sight (a reminder in a direct chat)."""
        refusal = await self._decide(approval, event, decision, comment)
        if refusal is not None:
            return refusal
        title = approval_title(_request(approval))
        what = decision_title(decision, title, comment, self.locale)
        return phrase_card("decision_taken", self.locale, what=what)

    async def _refusal(
        self, approval: StoredApproval, user: str, decision: Decision, comment: str | None
    ) -> Card | None:
        """What the route would answer to this decision now, without taking it."""
        if approval.awaiting_document:
            return refusal_card(_DOCUMENT_PENDING, self.locale)
        state = approval_state(approval, await self.approvals.decisions(approval))
        signature = await self.approvals.signature_of(approval, user)
        signature_ok = None if signature is None or decision is Decision.REJECTED else signature[0]
        try:
            decide(state, UserId(user), decision, comment, signature_ok, datetime.now(UTC))
        except ApprovalRefused as e:
            return refusal_card(e, self.locale)
        return None

    async def on_event(self, room: ManagedRoom, event: dict[str, Any]) -> None:
        content = event.get("content") or {}
        parsed = parse_poll_response(content)
        if parsed is not None:
            approval = await self.approvals.by_poll_event(parsed[0])
            # Only an answer in the approval's own room counts.
            if approval is None or not parsed[1] or not _in_room_of(room, approval):
                return
            answer = parsed[1][0]
            if answer not in ("approve", "reject"):
                return
            decision = Decision.APPROVED if answer == "approve" else Decision.REJECTED
            refusal = await self._decide(approval, event, decision, None)
            if refusal is not None:
                await self.replier.reply(event, refusal)
            return
        if _is_signature_file(content):
            approval = await self._approval_of(room)
            if approval is not None:
                await self._on_signature(approval, event)

    async def _decide(
        self,
        approval: StoredApproval,
        event: dict[str, Any],
        decision: Decision,
        comment: str | None,
    ) -> Card | None:
        """Applies one decision; returns the refusal to reply with, or None when taken (or
        taken before: a decision event is applied once, with all its effects)."""
        approver = str(event["sender"])
        async with self._deciding(approval.key):
            if await self.approvals.has_decision(event["event_id"]):
                return None
            approval = await self._reload(approval.key)
            if approval.awaiting_document:
                return refusal_card(
                    Refused(
                        "the document has not arrived yet", "ORG_PROCUREMENT_DOCUMENT_PENDING"
                    ),
                    self.locale,
                )
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
            await self.approvals.add_decision(
                event["event_id"],
                approval,
                approver,
                decision.value,
                comment,
                details,
                int(at.timestamp() * 1000),
            )
            await self.store.audit.record(
                Kind.APPROVAL_DECISION.value,
                {
                    "approval": approval.approval_id,
                    "approver": approver,
                    "decision": decision.value,
                    "reason": comment,
                    "event_id": event["event_id"],
                    "signature": signature_verdict(signature_ok, details),
                },
                now=now_ms(),
                procurement=approval.procurement_id,
                room=event.get("room_id"),
                subject=approval.approval_id,
            )
            await self._apply(approval, state, effects, details)
        self.timer.wake()
        return None

    async def _apply(
        self,
        approval: StoredApproval,
        state: ApprovalState,
        effects: tuple[Any, ...],
        signature: dict[str, Any] | None,
    ) -> None:
        """Everything a decision or a cancellation causes, in the caller's transaction."""
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
                await self.store.audit.record(
                    Kind.APPROVAL_OUTCOME.value,
                    {
                        "approval": approval.approval_id,
                        "outcome": effect.outcome.value,
                        "cancel_reason": state.cancel_reason,
                    },
                    now=now,
                    procurement=approval.procurement_id,
                    subject=approval.approval_id,
                )
                await self.callbacks.enqueue(
                    f"approval.completed:{key}",
                    approval.procurement_id,
                    "approval.completed",
                    approval_completed_payload(state),
                    now,
                )
        approval = await self._reload(approval.key)
        if approval.card_outbox_id is not None:
            await self._edit_card(approval, state, f"{len(state.steps)}:{now}")

    async def _on_signature(self, approval: StoredApproval, event: dict[str, Any]) -> None:
        content = event.get("content") or {}
        approver = str(event["sender"])
        request = _request(approval)
        if approver not in request.approvers or approval.awaiting_document:
            return
        signature = await self.documents.download(str(content["url"]))
        document = await self.approvals.document(approval)
        result = await self.verifier.verify_async(signature, document, approver)
        details = result.as_dict()
        ts = event.get("origin_server_ts")
        async with self.store.transaction():
            await self.approvals.add_signature(
                event["event_id"],
                approval,
                approver,
                result.ok,
                details,
                ts if isinstance(ts, int) else now_ms(),
            )
            await self.store.audit.record(
                Kind.APPROVAL_SIGNATURE.value,
                {
                    "approval": approval.approval_id,
                    "approver": approver,
                    "event_id": event["event_id"],
                    "signature_file": await self.store.audit.keep_file(signature),
                    "document": await self.store.audit.keep_file(document),
                    "verdict": "valid" if result.ok else "invalid",
                    "details": details,
                },
                now=now_ms(),
                procurement=approval.procurement_id,
                room=event.get("room_id"),
                subject=approval.approval_id,
            )
            await self.replier.reply(event, signature_card(details, self.locale))
        log.info(
            "Signature %s by %s for %s: %s",
            event["event_id"],
            approver,
            approval.approval_id,
            "verified" if result.ok else f"refused at {details['failed_check']}",
        )

    # Posting and finishing ------------------------------------------------------------------

    @asynccontextmanager
    async def _deciding(self, key: ApprovalKey) -> AsyncIterator[None]:
        """An approval's transaction: one at a time in this process and, by its row, across
        processes sharing the database."""
        async with self._lock, self.store.transaction():
            await self.approvals.lock(key)
            yield

    async def _settle(self, approval: StoredApproval) -> None:
        """Posts the document and its card once the room and the document are there; finishes
        an ended route. Each in one transaction, so a retry never posts twice."""
        key = room_key(RoomKind.APPROVAL, approval.approval_id)
        room_id = await self.rooms.room_id_of(approval.procurement_id, key)
        if room_id is None:
            return  # being created by reconciliation
        async with self._deciding(approval.key):
            approval = await self._reload(approval.key)
            if approval.finished:
                return
            state = approval_state(approval, await self.approvals.decisions(approval))
            if approval.card_outbox_id is None:
                if approval.awaiting_document and approval.outcome is None:
                    return  # posted with its document once it arrives
                await self._post(approval, room_id, state)
                approval = await self._reload(approval.key)
            if approval.outcome is not None:
                await self._finish(approval, room_id, state)

    async def _post(self, approval: StoredApproval, room_id: str, state: ApprovalState) -> None:
        """The document (if it has arrived), its card and the card's buttons."""
        request = state.request
        info = request.document.info
        prefix = f"approval:{approval.procurement_id}:{approval.approval_id}"
        file_id = None
        if not approval.awaiting_document:
            file_id = await self.documents.post_file(
                room_id,
                f"{prefix}:file",
                info.filename,
                info.mime_type or "application/octet-stream",
                await self.approvals.document(approval),
                None,
            )
        card_id = await self.outbox.enqueue(
            f"{prefix}:card", room_id, "m.room.message", await self._card(state, room_id), now_ms()
        )
        # The decision's buttons sit on the card, which shows every decision however it was
        # taken (a poll would read «no votes» after decisions typed as text).
        await self.replier.put_buttons(
            room_id, card_id, f"{prefix}:card", self._card_buttons(approval)
        )
        await self.approvals.set_posted(approval, file_id, card_id, None)

    def _card_buttons(self, approval: StoredApproval) -> tuple[Button, ...]:
        """«Согласовать» and «Отклонить» on the card, for whoever the route lets decide."""
        return tuple(
            Button(button(self.locale, key), _decide_action(approval, decision, None))
            for key, decision in (("approve", Decision.APPROVED), ("reject", Decision.REJECTED))
        )

    async def _finish(self, approval: StoredApproval, room_id: str, state: ApprovalState) -> None:
        prefix = f"approval:{approval.procurement_id}:{approval.approval_id}"
        if approval.poll_outbox_id is not None:
            text = approval_card(state, self.locale).body
            await self.outbox.enqueue(
                f"{prefix}:end",
                room_id,
                "org.matrix.msc3381.poll.end",
                {"org.matrix.msc3381.poll.end": {}, "org.matrix.msc1767.text": text},
                now_ms(),
                related_id=approval.poll_outbox_id,
                relation=Relation.REFERENCE,
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
        await self.outbox.enqueue_edit(
            f"approval:{approval.procurement_id}:{approval.approval_id}:edit:{why}",
            room_id,
            await self._card(state, room_id),
            approval.card_outbox_id,
            now_ms(),
        )

    async def _card(self, state: ApprovalState, room_id: str) -> dict[str, Any]:
        names = {UserId(k): name for k, name in (await self.rooms.display_names(room_id)).items()}
        return card_content(approval_card(state, self.locale, names))

    async def _reload(self, key: ApprovalKey) -> StoredApproval:
        fresh = await self.approvals.get(key.procurement_id, key.approval_id)
        assert fresh is not None
        return fresh

    # Reading --------------------------------------------------------------------------------

    async def view(self, params: Mapping[str, str]) -> dict[str, Any] | None:
        approval = await self.approvals.get(params["id"], ApprovalId(params["approval_id"]))
        if approval is None:
            return None
        decisions = await self.approvals.decisions(approval)
        view = approval_view(approval_state(approval, decisions))
        signatures = {d.approver: d.signature for d in decisions if d.signature}
        for step in view["steps"]:
            if step["approver"] in signatures:
                step["signature"]["verification"] = signatures[step["approver"]]
        return view


def _same_route(known: ApprovalRequest, new: ApprovalRequest) -> bool:
    """Whether a repeated request names the same route (the bytes are compared by the sha256
    each names, or not at all when neither does)."""
    return (
        known.initiator == new.initiator
        and known.approvers == new.approvers
        and known.mode == new.mode
        and known.require_signature == new.require_signature
        and known.document.info == new.document.info
    )


def _in_room_of(room: ManagedRoom, approval: StoredApproval) -> bool:
    return room.procurement_id == approval.procurement_id and room.key == room_key(
        RoomKind.APPROVAL, approval.approval_id
    )


def _is_signature_file(content: dict[str, Any]) -> bool:
    if content.get("msgtype") != "m.file" or not isinstance(content.get("url"), str):
        return False
    name = str(content.get("filename") or content.get("body") or "").lower()
    mime = str(mapping(content.get("info")).get("mimetype") or "").lower()
    return name.endswith(_SIGNATURE_SUFFIXES) or mime in _SIGNATURE_TYPES


def _decide_action(
    approval: StoredApproval, decision: Decision, comment: str | None
) -> dict[str, Any]:
    return {
        "kind": DECIDE,
        "procurement_id": approval.procurement_id,
        "approval_id": approval.approval_id,
        "decision": decision.value,
        "comment": comment,
    }


def _bounded(comment: str | None) -> str | None:
    """A comment goes into the card and the callback: long enough for any reason people give."""
    if comment is None or not comment.strip():
        return None
    return clean_text(comment.strip(), MAX_COMMENT)


def signature_verdict(ok: bool | None, details: dict[str, Any] | None) -> dict[str, Any]:
    """What the log says of an approver's signature when they decided."""
    verdict = "absent" if ok is None else "valid" if ok else "invalid"
    return {"verdict": verdict, "details": details}
