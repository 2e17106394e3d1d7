"""Commission votes: the card and the poll, ballots counted, closing and the result. Every
fact (a ballot, the close) is written with all it causes (card edits, the poll's end, the
callback) in one transaction; the Matrix side goes out through the outbox."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from ..db.outbox import Relation
from ..db.rooms import ManagedRoom
from ..db.store import Store
from ..db.votes import StoredVote, VoteKey
from ..db.webhooks import StoredWebhook
from ..domain import policy
from ..domain.answers import phrase_card
from ..domain.audit import Kind
from ..domain.card import Card
from ..domain.cards import live_vote_card, open_votes_card
from ..domain.commands import Command, ParsedCommand
from ..domain.errors import Refused
from ..domain.events import (
    card_content,
    parse_poll_response,
    vote_poll_content,
    vote_poll_end_content,
)
from ..domain.ids import EventId, UserId
from ..domain.locale import Locale
from ..domain.plan import COMMISSION_KEY, ORG_KEY
from ..domain.snapshot import Stage
from ..domain.vote import (
    CloseReason,
    VoteCancel,
    VoteRequest,
    VoteState,
    apply_answer,
    close,
    due_to_close,
    open_vote,
    parse_vote_cancel,
    parse_vote_request,
    tally,
    vote_completed_payload,
    vote_view,
)
from ..domain.webhooks import ParsedWebhook
from ..feature import Answer, Asker, Feature, JsonView, Scope
from ..retry import Permanent, Transient
from ..timer import ItemTimer
from ..worker import from_ms, now_ms
from .procurements import latest_snapshot

log = logging.getLogger("bridge.votes")

VOTE_PATH = "/api/v1/procurements/{id}/votes/{vote_id}"
BALLOT = "vote.ballot"  # an answer pressed under a reminder


def vote_state(vote: StoredVote, ballots: list[Any]) -> VoteState:
    """The vote replayed from what is stored: the same ballots in the same order, the close
    where it happened among them."""
    request = parse_vote_request(vote.request)
    state = open_vote(request, [UserId(v) for v in vote.voters])
    closed = False
    for ballot in ballots:
        if not closed and vote.closed_after is not None and ballot.seq > vote.closed_after:
            state, closed = _closed(state, vote), True
        state = apply_answer(state, UserId(ballot.user_id), ballot.answers, from_ms(ballot.ts))
    if not closed and vote.closed_at is not None:
        state = _closed(state, vote)
    return state


def _closed(state: VoteState, vote: StoredVote) -> VoteState:
    assert vote.closed_at is not None
    assert vote.close_reason is not None
    return close(
        state,
        CloseReason(vote.close_reason),
        from_ms(vote.closed_at),
        cancel_reason=vote.cancel_reason,
    )


class VoteKeeper:
    def __init__(self, store: Store, locale: Locale) -> None:
        self.store = store
        self.votes = store.votes
        self.rooms = store.rooms
        self.outbox = store.outbox
        self.callbacks = store.callbacks
        self.locale = locale
        # Ballots, deadlines and cancellations of one vote are applied one at a time.
        self._lock = asyncio.Lock()
        self.timer = ItemTimer(
            "votes",
            self.votes.due,
            self._settle,
            key=lambda vote: vote.key,
            next_at=self.votes.next_deadline,
        )

    def feature(self) -> Feature:
        return Feature(
            name="votes",
            webhooks={
                "vote.requested": self.vote_requested,
                "vote.cancelled": self.vote_cancelled,
            },
            admissions=(self.admit,),
            commands={Command.VOTE: self.on_command},
            listeners=(self.on_event,),
            routes=(JsonView(VOTE_PATH, self.view, Scope.READ),),
            timers=(self.timer,),
            actions={BALLOT: self.on_ballot_click},
        )

    # Webhooks -------------------------------------------------------------------------------

    async def admit(self, webhook: ParsedWebhook) -> None:
        """Refuses at once, with a clear answer, a vote the procurement cannot hold now (its
        chat is not open, or its quorum is more than its voters)."""
        if isinstance(webhook.value, VoteRequest):
            with contextlib.suppress(Transient):  # being created: the worker waits for it
                _, members = await self._commission_room(webhook.value.procurement_id)
                open_vote(webhook.value, members)
        elif isinstance(webhook.value, VoteCancel):
            await self._check_known(webhook.value)

    async def _check_known(self, cancel: VoteCancel) -> None:
        """A cancellation names a vote the bridge holds, or was asked for in a webhook not
        applied yet; any other could never be applied."""
        if await self._cancelled_vote(cancel) is not None:
            return
        for requested in await self.store.webhooks.pending_of_type("vote.requested"):
            same_procurement = cancel.procurement_id in (None, requested.get("procurement_id"))
            if requested.get("vote_id") == cancel.vote_id and same_procurement:
                return
        raise Refused(f"unknown vote {cancel.vote_id}", "ORG_PROCUREMENT_VOTE_UNKNOWN")

    async def _cancelled_vote(self, cancel: VoteCancel) -> StoredVote | None:
        procurement_id = cancel.procurement_id or await self.votes.procurement_of(cancel.vote_id)
        return await self.votes.get(procurement_id, cancel.vote_id) if procurement_id else None

    async def _commission_room(self, procurement_id: str) -> tuple[str, list[UserId]]:
        snapshot = await latest_snapshot(self.store, procurement_id)
        room_id = await self.rooms.room_id_of(procurement_id, COMMISSION_KEY)
        if snapshot.stage is not Stage.COMMISSION:
            state = "archived" if room_id else "not open"
            raise Refused(
                f"the commission chat of procurement {procurement_id} is {state} "
                f"(stage {snapshot.stage.value}): votes are held in stage commission",
                "ORG_PROCUREMENT_ROOM_ARCHIVED" if room_id else "ORG_PROCUREMENT_ROOM_NOT_OPEN",
            )
        if room_id is None:
            raise Transient(f"the commission chat of {procurement_id} is being created")
        states = await self.rooms.state_of([room_id])
        if policy.is_read_only(states[room_id].get(("m.room.power_levels", ""), {})):
            raise Refused(
                f"the commission chat of procurement {procurement_id} is archived",
                "ORG_PROCUREMENT_ROOM_ARCHIVED",
            )
        members = list(snapshot.commission.members) if snapshot.commission else []
        return room_id, members

    async def vote_requested(self, webhook: StoredWebhook) -> None:
        request = parse_vote_request(webhook.data)
        if await self.votes.get(request.procurement_id, request.vote_id) is None:
            try:
                room_id, members = await self._commission_room(request.procurement_id)
                state = open_vote(request, members)
            except Refused as e:
                raise Permanent(f"{e.errcode}: {e.error}") from e
        async with self.store.transaction():
            if await self.votes.get(request.procurement_id, request.vote_id) is None:
                await self.votes.create(
                    request.procurement_id,
                    request.vote_id,
                    room_id,
                    webhook.data,
                    list(state.voters),
                    _ms(request.closes_at),
                    now_ms(),
                )
            vote = await self._reload(VoteKey(request.procurement_id, request.vote_id))
            if vote.card_outbox_id is None:
                await self._post(vote)
        self.timer.wake()

    async def _post(self, vote: StoredVote) -> None:
        """The card, the poll under it, and the poll pinned."""
        state = vote_state(vote, [])
        key = f"vote:{vote.procurement_id}:{vote.vote_id}"
        now = now_ms()
        card_id = await self.outbox.enqueue(
            f"{key}:card", vote.room_id, "m.room.message", self._card(state), now
        )
        poll_id = await self.outbox.enqueue(
            f"{key}:poll",
            vote.room_id,
            "org.matrix.msc3381.poll.start",
            vote_poll_content(state, self.locale),
            now,
        )
        await self.outbox.enqueue_pin(f"{key}:pin", vote.room_id, poll_id, now, pin=True)
        await self.votes.set_outbox(vote, card_id, poll_id)

    async def vote_cancelled(self, webhook: StoredWebhook) -> None:
        cancel = parse_vote_cancel(webhook.data)
        vote = await self._cancelled_vote(cancel)
        if vote is None:
            raise Permanent(f"unknown vote {cancel.vote_id}")
        async with self._deciding(vote.key):
            await self.votes.close(vote, CloseReason.CANCELLED.value, now_ms(), cancel.reason)
            await self._settle_now(vote.key)

    def _card(self, state: VoteState) -> dict[str, Any]:
        return card_content(live_vote_card(state, self.locale))

    # Ballots --------------------------------------------------------------------------------

    async def on_event(self, room: ManagedRoom, event: dict[str, Any]) -> None:
        """A poll answer in the poll's own room: recorded once, counted by the rules."""
        parsed = parse_poll_response(event.get("content") or {})
        if parsed is None:
            return
        poll_event_id, answers = parsed
        vote = await self.votes.by_poll_event(poll_event_id)
        if vote is None or vote.room_id != room.room_id:
            return
        await self._ballot(vote, event, list(answers))

    async def on_ballot_click(self, asker: Asker, action: Mapping[str, Any]) -> Answer:
        """An answer pressed under a reminder in the voter's direct chat: counted like the
        poll's (only a voter's, only before the close)."""
        vote = await self.votes.get(str(action["procurement_id"]), str(action["vote_id"]))
        if vote is None or vote.closed_at is not None:
            return phrase_card("confirm_expired", self.locale)
        option = str(action["option"])
        await self._ballot(vote, asker.event, [option])
        label = next(
            (o.label for o in parse_vote_request(vote.request).options if o.id == option), option
        )
        return phrase_card("ballot_taken", self.locale, option=label)

    async def _ballot(self, vote: StoredVote, event: dict[str, Any], answers: list[str]) -> None:
        """One ballot, once per event, with the card's edit or the close it causes."""
        ts = event.get("origin_server_ts")
        async with self._deciding(vote.key):
            added = await self.votes.add_ballot(
                event["event_id"],
                vote,
                str(event["sender"]),
                answers,
                ts if isinstance(ts, int) else now_ms(),
            )
            if not added:
                return
            await self.store.audit.record(
                Kind.VOTE_BALLOT.value,
                {
                    "vote": vote.vote_id,
                    "voter": event["sender"],
                    "answers": answers,
                    "event_id": event["event_id"],
                },
                now=now_ms(),
                procurement=vote.procurement_id,
                room=vote.room_id,
                subject=vote.vote_id,
            )
            vote = await self._reload(vote.key)
            state = vote_state(vote, await self.votes.ballots(vote))
            if state.is_open and due_to_close(state, datetime.now(UTC)) is None:
                await self._edit_card(vote, state, f"ballot:{event['event_id']}")
                return
            await self._settle_now(vote.key)

    async def _reload(self, key: VoteKey) -> StoredVote:
        fresh = await self.votes.get(key.procurement_id, key.vote_id)
        assert fresh is not None
        return fresh

    async def _edit_card(self, vote: StoredVote, state: VoteState, why: str) -> None:
        assert vote.card_outbox_id is not None
        await self.outbox.enqueue_edit(
            f"vote:{vote.procurement_id}:{vote.vote_id}:edit:{why}",
            vote.room_id,
            self._card(state),
            vote.card_outbox_id,
            now_ms(),
        )

    # Keeping time ---------------------------------------------------------------------------

    async def _settle(self, vote: StoredVote) -> None:
        async with self._deciding(vote.key):
            await self._settle_now(vote.key)

    @asynccontextmanager
    async def _deciding(self, key: VoteKey) -> AsyncIterator[None]:
        """A vote's transaction: one at a time in this process and, by its row, across
        processes sharing the database."""
        async with self._lock, self.store.transaction():
            await self.votes.lock(key)
            yield

    async def _settle_now(self, key: VoteKey) -> None:
        """Whatever the vote's state asks for now, in the caller's transaction: posted, closed
        when due, and once closed finished (result, the poll's end, the callback)."""
        vote = await self._reload(key)
        if vote.finished:
            return
        if vote.card_outbox_id is None:
            await self._post(vote)
            vote = await self._reload(key)
        state = vote_state(vote, await self.votes.ballots(vote))
        if state.is_open:
            reason = due_to_close(state, datetime.now(UTC))
            if reason is None:
                return
            await self.votes.close(vote, reason.value, now_ms(), None)
            vote = await self._reload(key)
            state = vote_state(vote, await self.votes.ballots(vote))
        await self._finish(vote, state)

    async def _finish(self, vote: StoredVote, state: VoteState) -> None:
        assert vote.poll_outbox_id is not None
        key = f"vote:{vote.procurement_id}:{vote.vote_id}"
        now = now_ms()
        # In the room's order: unpinned, the poll's end, then the result on the card.
        await self.outbox.enqueue_pin(
            f"{key}:unpin", vote.room_id, vote.poll_outbox_id, now, pin=False
        )
        end = vote_poll_end_content(EventId(""), state, self.locale)
        del end["m.relates_to"]  # the sender relates it to the poll once that is out
        await self.outbox.enqueue(
            f"{key}:end",
            vote.room_id,
            "org.matrix.msc3381.poll.end",
            end,
            now,
            related_id=vote.poll_outbox_id,
            relation=Relation.REFERENCE,
        )
        await self._edit_card(vote, state, "final")
        result = vote_completed_payload(state)
        await self.store.audit.record(
            Kind.VOTE_RESULT.value,
            {"vote": vote.vote_id, **result},
            now=now,
            procurement=vote.procurement_id,
            room=vote.room_id,
            subject=vote.vote_id,
        )
        await self.callbacks.enqueue(
            f"vote.completed:{vote.procurement_id}:{vote.vote_id}",
            vote.procurement_id,
            "vote.completed",
            result,
            now,
        )
        await self._report_no_quorum(vote, state)
        await self.votes.set_finished(vote)
        log.info(
            "Vote %s of %s closed (%s)", vote.vote_id, vote.procurement_id, state.close_reason
        )

    async def _report_no_quorum(self, vote: StoredVote, state: VoteState) -> None:
        """A deadline passed without a quorum: the organisation chat hears of it."""
        if state.close_reason is not CloseReason.DEADLINE or tally(state).quorum_reached:
            return
        org = await self.rooms.room_id_of(vote.procurement_id, ORG_KEY)
        if org is None:
            return
        card = phrase_card("overdue_vote", self.locale, question=state.request.question)
        await self.outbox.enqueue(
            f"vote:{vote.procurement_id}:{vote.vote_id}:no-quorum",
            org,
            "m.room.message",
            card_content(card),
            now_ms(),
        )

    # Reading --------------------------------------------------------------------------------

    async def view(self, params: Mapping[str, str]) -> dict[str, Any] | None:
        vote = await self.votes.get(params["id"], params["vote_id"])
        if vote is None:
            return None
        state = vote_state(vote, await self.votes.ballots(vote))
        poll_event_id = (
            await self.outbox.event_id_of(vote.poll_outbox_id) if vote.poll_outbox_id else None
        )
        return {**vote_view(state), "room_id": vote.room_id, "poll_event_id": poll_event_id}

    async def on_command(self, asker: Asker, command: ParsedCommand) -> Card | None:
        room = asker.room
        if room is None or room.room_id is None:
            return None
        states = [
            vote_state(vote, await self.votes.ballots(vote))
            for vote in await self.votes.open_in_room(room.room_id)
        ]
        return open_votes_card(states, await self._names(room.room_id), self.locale)

    async def _names(self, room_id: str) -> dict[UserId, str]:
        return {UserId(k): name for k, name in (await self.rooms.display_names(room_id)).items()}


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)
