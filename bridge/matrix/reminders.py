"""Reminders (оповещения): before a vote's or an approval's deadline, everyone who has not
answered gets a direct message with the link and the buttons to answer, once per offset; the
organisation chat is told when an approval's deadline passes without a decision."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

from mautrix.client import ClientAPI
from mautrix.types import RoomCreatePreset, UserID

from ..db.approvals import ApprovalKey, StoredApproval
from ..db.reminders import Reminder
from ..db.store import Store
from ..db.votes import VoteKey
from ..domain.answers import button, phrase_card, reminder_card
from ..domain.approval import ApprovalState, Decision, is_overdue
from ..domain.card import format_datetime
from ..domain.ids import UserId
from ..domain.locale import Locale
from ..domain.plan import ORG_KEY, RoomKind, room_key
from ..domain.reminders import due, next_look
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


NEVER = 2**62  # remind_at of an item with no reminder to come


@dataclass(frozen=True, slots=True)
class Waiting:
    """An open vote or approval with a deadline, who it waits for, and how to set when it is
    looked at next."""

    deadline: datetime
    people: tuple[UserId, ...]
    remind_at: Callable[[int], Awaitable[None]]
    # What its deadline passing undecided causes (an approval's notice), None if nothing.
    missed: Callable[[], Awaitable[None]] | None = None


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
            "reminders", self._due, self._settle, key=lambda item: item, next_at=self._next_at
        )
        self._offsets_checked = False

    def feature(self) -> Feature:
        return Feature(
            name="reminders",
            timers=(self.timer,),
            queues=(Queue(QUEUE, self.store.reminders, self.store.reminders.due, self.deliver),),
        )

    # Working out what is due (the database only) ---------------------------------------------

    async def _due(self, now: int) -> list[str]:
        """The open votes and approvals whose reminders are to be looked at now: a round reads
        those only, however many items are open."""
        if not self.offsets:
            return []
        if not self._offsets_checked:
            async with self.store.transaction():
                if await self.store.reminders.offsets_changed(",".join(map(str, self.offsets))):
                    await self.store.votes.remind_all_now()
                    await self.store.approvals.remind_all_now()
            self._offsets_checked = True
        votes = await self.store.votes.reminding(now)
        approvals = await self.store.approvals.reminding(now)
        return [f"vote:{v.procurement_id}:{v.vote_id}" for v in votes] + [
            f"approval:{a.procurement_id}:{a.approval_id}" for a in approvals
        ]

    async def _settle(self, item: str) -> None:
        """Queues the reminders due now and sets when to look at the item next, both under the
        item's lock: a decision meanwhile waits, then has the item looked at again."""
        kind, procurement_id, item_id = item.split(":", 2)
        async with self.store.transaction():
            waiting = await (self._vote if kind == "vote" else self._approval)(
                procurement_id, item_id
            )
            if waiting is None:
                return
            now = datetime.now(UTC)
            if waiting.missed is not None and now >= waiting.deadline:
                await waiting.missed()
            sent = await self.store.reminders.sent(item)
            for user, offset in due(waiting.deadline, now, self.offsets, waiting.people, sent):
                await self.store.reminders.add(item, user, offset, now_ms())
            at = next_look(
                waiting.deadline, now, self.offsets, at_deadline=waiting.missed is not None
            )
            await waiting.remind_at(NEVER if at is None else int(at.timestamp() * 1000))

    async def _vote(self, procurement_id: str, vote_id: str) -> Waiting | None:
        key = VoteKey(procurement_id, vote_id)
        await self.store.votes.lock(key)
        vote = await self.store.votes.get(procurement_id, vote_id)
        if vote is None or vote.closed_at is not None:
            return None
        voting = vote_state(vote, await self.store.votes.ballots(vote))
        answered = {b.user for b in voting.counted_ballots()}
        people = tuple(v for v in voting.voters if v not in answered)
        return Waiting(voting.request.closes_at, people, partial(self.store.votes.remind_at, key))

    async def _approval(self, procurement_id: str, approval_id: str) -> Waiting | None:
        key = ApprovalKey(procurement_id, approval_id)
        await self.store.approvals.lock(key)
        approval = await self.store.approvals.get(procurement_id, approval_id)
        if approval is None or approval.outcome is not None:
            return None
        route = approval_state(approval, await self.store.approvals.decisions(approval))
        remind_at = partial(self.store.approvals.remind_at, key)
        if route.request.deadline is None:
            await remind_at(NEVER)
            return None
        missed = partial(self._report_missed, approval, route)
        return Waiting(route.request.deadline, route.current_approvers(), remind_at, missed)

    async def _next_at(self) -> int | None:
        times = [
            at
            for at in (
                await self.store.votes.next_reminding(),
                await self.store.approvals.next_reminding(),
            )
            if at is not None
        ]
        return min(times) if times else None

    async def _report_missed(self, approval: StoredApproval, state: ApprovalState) -> None:
        """An approval past its deadline without a decision: the organisation chat hears once."""
        if not is_overdue(state, datetime.now(UTC)):
            return
        org = await self.store.rooms.room_id_of(approval.procurement_id, ORG_KEY)
        if await self.store.approvals.set_overdue_noticed(approval) and org is not None:
            title = approval_title(state.request)
            card = phrase_card("overdue_approval", self.locale, title=title)
            item = f"approval:{approval.procurement_id}:{approval.approval_id}"
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
