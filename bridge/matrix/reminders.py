"""Reminders (оповещения): before a vote's or an approval's deadline, everyone who has not
answered gets a direct message with the link and the buttons to answer, once per offset; the
organisation chat is told when an approval's deadline passes without a decision."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from mautrix.client import ClientAPI
from mautrix.types import RoomCreatePreset, UserID

from ..db.reminders import Reminder
from ..db.store import Store
from ..domain.answers import button, phrase_card, reminder_card
from ..domain.approval import Decision, is_overdue
from ..domain.card import format_datetime
from ..domain.ids import UserId
from ..domain.locale import Locale
from ..domain.plan import ORG_KEY, RoomKind, room_key
from ..domain.reminders import due, next_time
from ..feature import Button, Feature, Queue, Reply
from ..timer import ItemTimer
from ..worker import now_ms
from .approvals import DECIDE, approval_state, approval_title
from .assistant import matrix_to
from .people import People
from .replies import Replier
from .votes import BALLOT, vote_state

log = logging.getLogger("bridge.reminders")

QUEUE = "reminders"


@dataclass(frozen=True, slots=True)
class Waiting:
    """An open vote or approval with a deadline, and who it waits for."""

    item: str  # "vote:<procurement>:<id>" / "approval:<procurement>:<id>"
    deadline: datetime
    people: tuple[UserId, ...]


class Reminders:
    def __init__(
        self,
        client: ClientAPI,
        store: Store,
        people: People,
        replier: Replier,
        locale: Locale,
        offsets: Sequence[int],
    ) -> None:
        self.client = client
        self.store = store
        self.people = people
        self.replier = replier
        self.locale = locale
        self.offsets = tuple(offsets)
        self.timer = ItemTimer(
            "reminders", self._due, self._settle, key=lambda w: w.item, next_at=self._next_at
        )

    def feature(self) -> Feature:
        return Feature(
            name="reminders",
            timers=(self.timer,),
            queues=(Queue(QUEUE, self.store.reminders, self.store.reminders.due, self.deliver),),
        )

    # Working out what is due (the database only) ---------------------------------------------

    async def _waiting(self) -> list[Waiting]:
        waiting = []
        for vote in await self.store.votes.open_all():
            voting = vote_state(vote, await self.store.votes.ballots(vote))
            answered = {b.user for b in voting.counted_ballots()}
            people = tuple(v for v in voting.voters if v not in answered)
            item = f"vote:{vote.procurement_id}:{vote.vote_id}"
            waiting.append(Waiting(item, voting.request.closes_at, people))
        for approval in await self.store.approvals.open_all():
            route = approval_state(approval, await self.store.approvals.decisions(approval))
            deadline = route.request.deadline
            if deadline is not None and not approval.awaiting_document:
                item = f"approval:{approval.procurement_id}:{approval.approval_id}"
                waiting.append(Waiting(item, deadline, route.current_approvers()))
        return waiting

    async def _due(self, _now: int) -> list[Waiting]:
        return await self._waiting() if self.offsets else []

    async def _settle(self, waiting: Waiting) -> None:
        now = datetime.now(UTC)
        sent = await self.store.reminders.sent(waiting.item)
        for user, offset in due(waiting.deadline, now, self.offsets, waiting.people, sent):
            await self.store.reminders.add(waiting.item, user, offset, now_ms())
        if waiting.item.startswith("approval:") and now >= waiting.deadline:
            await self._report_overdue(waiting.item)

    async def _next_at(self) -> int | None:
        now = datetime.now(UTC)
        times = [
            at
            for w in await self._waiting()
            if (at := next_time(w.deadline, now, self.offsets)) is not None
        ]
        times += [w.deadline for w in await self._waiting() if w.item.startswith("approval:")]
        future = [at for at in times if at > now]
        return int(min(future).timestamp() * 1000) if future else None

    async def _report_overdue(self, item: str) -> None:
        """An approval's deadline passed without a decision: the organisation chat hears once."""
        _, procurement_id, approval_id = item.split(":", 2)
        approval = await self.store.approvals.get(procurement_id, approval_id)
        if approval is None or approval.overdue_noticed:
            return
        state = approval_state(approval, await self.store.approvals.decisions(approval))
        if not is_overdue(state, datetime.now(UTC)):
            return
        org = await self.store.rooms.room_id_of(procurement_id, ORG_KEY)
        async with self.store.transaction():
            if await self.store.approvals.set_overdue_noticed(approval) and org is not None:
                card = phrase_card(
                    "overdue_approval", self.locale, title=approval_title(state.request)
                )
                await self.replier.post(org, f"{item}:overdue", card)

    # Delivering (a direct chat may need creating) ---------------------------------------------

    async def deliver(self, reminder: Reminder) -> None:
        """The reminder in the person's direct chat, if they still have to answer."""
        reply = await self._reply(reminder)
        if reply is None:
            return  # answered meanwhile, or the item is over: nothing to remind of
        room_id = await self._direct_room(reminder.user_id)
        await self.replier.post(room_id, f"reminder:{reminder.id}", reply)

    async def _reply(self, reminder: Reminder) -> Reply | None:
        kind, procurement_id, item_id = reminder.item.split(":", 2)
        snapshot = await self.people.snapshot(procurement_id)
        number = snapshot.display_number if snapshot else procurement_id
        if kind == "vote":
            return await self._vote_reply(reminder, procurement_id, item_id, number)
        return await self._approval_reply(reminder, procurement_id, item_id, number)

    async def _vote_reply(
        self, reminder: Reminder, procurement_id: str, vote_id: str, number: str
    ) -> Reply | None:
        vote = await self.store.votes.get(procurement_id, vote_id)
        if vote is None or vote.closed_at is not None:
            return None
        state = vote_state(vote, await self.store.votes.ballots(vote))
        if reminder.user_id in {b.user for b in state.counted_ballots()}:
            return None
        poll = await self.store.outbox.event_id_of(vote.poll_outbox_id or 0)
        card = reminder_card(
            "reminder_vote",
            matrix_to(vote.room_id, poll),
            self.locale,
            question=state.request.question,
            number=number,
            deadline=format_datetime(state.request.closes_at, self.locale),
        )
        buttons = tuple(
            Button(
                option.label,
                {
                    "kind": BALLOT,
                    "procurement_id": procurement_id,
                    "vote_id": vote_id,
                    "option": option.id,
                },
                reminder.user_id,
            )
            for option in state.request.options
        )
        return Reply(card, buttons)

    async def _approval_reply(
        self, reminder: Reminder, procurement_id: str, approval_id: str, number: str
    ) -> Reply | None:
        approval = await self.store.approvals.get(procurement_id, approval_id)
        if approval is None or approval.outcome is not None:
            return None
        state = approval_state(approval, await self.store.approvals.decisions(approval))
        if UserId(reminder.user_id) not in state.current_approvers():
            return None
        room_id = await self.store.rooms.room_id_of(
            procurement_id, room_key(RoomKind.APPROVAL, approval_id)
        )
        card_event = await self.store.outbox.event_id_of(approval.card_outbox_id or 0)
        deadline = state.request.deadline
        card = reminder_card(
            "reminder_approval",
            matrix_to(room_id or "", card_event),
            self.locale,
            title=approval_title(state.request),
            number=number,
            deadline=format_datetime(deadline, self.locale) if deadline else "—",
        )
        buttons = tuple(
            Button(
                button(self.locale, key),
                {
                    "kind": DECIDE,
                    "procurement_id": procurement_id,
                    "approval_id": approval_id,
                    "decision": decision.value,
                    "comment": None,
                },
                reminder.user_id,
            )
            for key, decision in (("approve", Decision.APPROVED), ("reject", Decision.REJECTED))
        )
        return Reply(card, buttons)

    async def _direct_room(self, user: str) -> str:
        """The person's direct chat with the bot, opened by the bot if there is none yet."""
        existing = await self.store.direct_chats.room_of(user)
        if existing is not None:
            return existing
        room_id = await self.client.create_room(
            preset=RoomCreatePreset.TRUSTED_PRIVATE, invitees=[UserID(user)], is_direct=True
        )
        await self.store.direct_chats.add(room_id, user)
        log.info("Opened a direct chat %s with %s for a reminder", room_id, user)
        return str(room_id)
