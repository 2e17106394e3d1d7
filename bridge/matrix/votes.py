"""Commission votes in Matrix: the card and the poll, ballots counted, closing and the result."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import Any

from mautrix.client import ClientAPI
from mautrix.types import EventType, RoomID

from ..db.callbacks import CallbackOutbox
from ..db.outbox import MatrixOutbox
from ..db.procurements import Procurements
from ..db.rooms import ManagedRoom, Rooms
from ..db.votes import StoredVote, Votes
from ..db.webhooks import StoredWebhook, WebhookInbox
from ..domain import policy
from ..domain.cards import Card, live_vote_card, open_votes_card
from ..domain.commands import Command, ParsedCommand
from ..domain.errors import Refused
from ..domain.events import (
    card_content,
    parse_poll_response,
    pinned_events_content,
    vote_poll_content,
    vote_poll_end_content,
)
from ..domain.ids import EventId, UserId
from ..domain.locale import Locale
from ..domain.plan import COMMISSION_KEY
from ..domain.snapshot import Stage
from ..domain.vote import (
    CloseReason,
    VoteRequest,
    VoteState,
    apply_answer,
    close,
    due_to_close,
    open_vote,
    parse_vote_cancel,
    parse_vote_request,
    vote_completed_payload,
    vote_view,
)
from ..domain.webhooks import ParsedWebhook
from ..worker import Permanent, from_ms, now_ms
from .ticker import Ticker
from .webhooks import latest_snapshot

log = logging.getLogger("bridge.votes")

PINNED = "m.room.pinned_events"


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
    def __init__(
        self,
        client: ClientAPI,
        votes: Votes,
        procurements: Procurements,
        rooms: Rooms,
        outbox: MatrixOutbox,
        callbacks: CallbackOutbox,
        webhooks: WebhookInbox,
        locale: Locale,
    ) -> None:
        self.client = client
        self.webhooks = webhooks
        self.votes = votes
        self.procurements = procurements
        self.rooms = rooms
        self.outbox = outbox
        self.callbacks = callbacks
        self.locale = locale
        # Ballots, deadlines and cancellations of one vote are applied one at a time.
        self._lock = asyncio.Lock()
        self.ticker = Ticker("vote-keeper", self._tick)

    # Webhooks -------------------------------------------------------------------------------

    async def admit(self, webhook: ParsedWebhook) -> None:
        """Refuses at once, with a clear answer, a vote the procurement cannot hold now."""
        if isinstance(webhook.value, VoteRequest):
            with contextlib.suppress(RoomPending):  # being created: the worker waits for it
                await self._commission_room(webhook.value.procurement_id)

    async def _commission_room(self, procurement_id: str) -> tuple[str, list[UserId]]:
        snapshot = await latest_snapshot(self.procurements, self.webhooks, procurement_id)
        room_id = await self.rooms.room_id_of(procurement_id, COMMISSION_KEY)
        if snapshot.stage is not Stage.COMMISSION:
            state = "archived" if room_id else "not open"
            raise Refused(
                f"the commission chat of procurement {procurement_id} is {state} "
                f"(stage {snapshot.stage.value}): votes are held in stage commission",
                "ORG_PROCUREMENT_ROOM_ARCHIVED" if room_id else "ORG_PROCUREMENT_ROOM_NOT_OPEN",
            )
        if room_id is None:
            # Being created right now: the worker waits for it.
            raise RoomPending(f"the commission chat of {procurement_id} is being created")
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
        vote = await self.votes.get(request.procurement_id, request.vote_id)
        if vote is None:
            try:
                room_id, members = await self._commission_room(request.procurement_id)
                state = open_vote(request, members)
            except RoomPending as e:
                raise RuntimeError(str(e)) from e  # retried: the room will be there
            except Refused as e:
                raise Permanent(f"{e.errcode}: {e.error}") from e
            await self.votes.create(
                request.procurement_id,
                request.vote_id,
                room_id,
                webhook.data,
                list(state.voters),
                now_ms(),
            )
            vote = await self.votes.get(request.procurement_id, request.vote_id)
            assert vote is not None
        await self._post(vote)

    async def _post(self, vote: StoredVote) -> None:
        """The card first, then the poll under it; each once, however often this runs."""
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
        await self.votes.set_outbox(vote, card_id, poll_id)
        self.ticker.wake()

    async def vote_cancelled(self, webhook: StoredWebhook) -> None:
        cancel = parse_vote_cancel(webhook.data)
        procurement_id = cancel.procurement_id or await self._procurement_of(cancel.vote_id)
        vote = await self.votes.get(procurement_id, cancel.vote_id) if procurement_id else None
        if vote is None:
            raise Permanent(f"unknown vote {cancel.vote_id}")
        async with self._lock:
            await self.votes.close(vote, CloseReason.CANCELLED.value, now_ms(), cancel.reason)
        self.ticker.wake()

    async def _procurement_of(self, vote_id: str) -> str | None:
        found: str | None = await self.votes.db.fetchval(
            "SELECT procurement_id FROM vote WHERE vote_id=$1", vote_id
        )
        return found

    def _card(self, state: VoteState) -> dict[str, Any]:
        return card_content(live_vote_card(state, self.locale))

    # Ballots --------------------------------------------------------------------------------

    async def on_event(self, room: ManagedRoom, event: dict[str, Any]) -> None:
        """A poll answer in a managed room: recorded once, counted by the rules."""
        parsed = parse_poll_response(event.get("content") or {})
        if parsed is None:
            return
        poll_event_id, answers = parsed
        vote = await self.votes.by_poll_event(poll_event_id)
        if vote is None or vote.room_id != room.room_id:
            return
        async with self._lock:
            ts = event.get("origin_server_ts")
            ts = ts if isinstance(ts, int) else now_ms()
            added = await self.votes.add_ballot(
                event["event_id"], vote, str(event["sender"]), list(answers), ts
            )
            if not added:
                return
            vote = await self._reload(vote)
            state = vote_state(vote, await self.votes.ballots(vote))
            if state.is_open:
                await self._edit_card(vote, state, f"ballot:{event['event_id']}")
            await self._settle(vote, state)

    async def _reload(self, vote: StoredVote) -> StoredVote:
        fresh = await self.votes.get(vote.procurement_id, vote.vote_id)
        assert fresh is not None
        return fresh

    async def _edit_card(self, vote: StoredVote, state: VoteState, why: str) -> None:
        assert vote.card_outbox_id is not None
        await self.outbox.enqueue(
            f"vote:{vote.procurement_id}:{vote.vote_id}:edit:{why}",
            vote.room_id,
            "m.room.message",
            self._card(state),
            now_ms(),
            edit_of=vote.card_outbox_id,
        )

    # Keeping time ---------------------------------------------------------------------------

    async def _tick(self) -> bool:
        """Settles every vote that is not finished; True while there are any."""
        pending = await self.votes.unfinished()
        for vote in pending:
            async with self._lock:
                vote = await self._reload(vote)
                await self._settle(vote, vote_state(vote, await self.votes.ballots(vote)))
        return bool(pending)

    async def _settle(self, vote: StoredVote, state: VoteState) -> None:
        """Whatever the vote's state asks for now: pin, close, report. Each step once."""
        if vote.finished or vote.poll_outbox_id is None:
            return
        poll_event_id = await self.outbox.event_id_of(vote.poll_outbox_id)
        if poll_event_id is None:
            return  # the poll is not posted yet; it is pinned and closed once it is
        if state.is_open:
            if not vote.pinned:
                await self._pin(vote.room_id, poll_event_id, True)
                await self.votes.set_flag(vote, "pinned")
            reason = due_to_close(state, datetime.now(UTC))
            if reason is None:
                return
            await self.votes.close(vote, reason.value, now_ms(), None)
            vote = await self._reload(vote)
            state = vote_state(vote, await self.votes.ballots(vote))
        await self._finish(vote, state, EventId(poll_event_id))

    async def _finish(self, vote: StoredVote, state: VoteState, poll_event_id: EventId) -> None:
        key = f"vote:{vote.procurement_id}:{vote.vote_id}"
        now = now_ms()
        await self.outbox.enqueue(
            f"{key}:end",
            vote.room_id,
            "org.matrix.msc3381.poll.end",
            vote_poll_end_content(poll_event_id, state, self.locale),
            now,
        )
        await self._edit_card(vote, state, "final")
        await self._pin(vote.room_id, poll_event_id, False)
        await self.callbacks.enqueue(
            f"vote.completed:{vote.procurement_id}:{vote.vote_id}",
            vote.procurement_id,
            "vote.completed",
            vote_completed_payload(state),
            now,
        )
        await self.votes.set_flag(vote, "finished")
        log.info(
            "Vote %s of %s closed (%s)", vote.vote_id, vote.procurement_id, state.close_reason
        )

    async def _pin(self, room_id: str, event_id: str, pinned: bool) -> None:
        states = await self.rooms.state_of([room_id])
        current = list(states[room_id].get((PINNED, ""), {}).get("pinned", []))
        wanted = [e for e in current if e != event_id] + ([event_id] if pinned else [])
        if wanted == current:
            return
        content = pinned_events_content([EventId(e) for e in wanted])
        await self.client.send_state_event(
            RoomID(room_id),
            EventType.find(PINNED, EventType.Class.STATE),
            content,  # type: ignore[arg-type]  # raw JSON is accepted
        )
        await self.rooms.set_state(room_id, PINNED, "", content)

    # Reading --------------------------------------------------------------------------------

    async def view(self, procurement_id: str, vote_id: str) -> dict[str, Any] | None:
        vote = await self.votes.get(procurement_id, vote_id)
        if vote is None:
            return None
        state = vote_state(vote, await self.votes.ballots(vote))
        poll_event_id = (
            await self.outbox.event_id_of(vote.poll_outbox_id) if vote.poll_outbox_id else None
        )
        return {**vote_view(state), "room_id": vote.room_id, "poll_event_id": poll_event_id}

    async def on_command(
        self, room: ManagedRoom, event: dict[str, Any], command: ParsedCommand
    ) -> Card | None:
        if command.command is not Command.VOTE or room.room_id is None:
            return None
        states = [
            vote_state(vote, await self.votes.ballots(vote))
            for vote in await self.votes.open_in_room(room.room_id)
        ]
        return open_votes_card(states, await self._names(room.room_id), self.locale)

    async def _names(self, room_id: str) -> dict[UserId, str]:
        return {UserId(k): name for k, name in (await self.rooms.display_names(room_id)).items()}


class RoomPending(Exception):
    """The room a webhook needs is still being created."""
