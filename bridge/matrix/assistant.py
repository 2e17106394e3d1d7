"""The assistant's own commands: `статус`, `мои задачи`, `поиск` and `ещё`; and the search index
kept up to date as events arrive."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from ..db.approvals import StoredApproval
from ..db.rooms import ManagedRoom
from ..db.search import Hit
from ..db.store import Store
from ..db.votes import StoredVote
from ..domain.answers import (
    Found,
    OpenApproval,
    OpenVote,
    ProcurementLine,
    RoomLink,
    RoomStatus,
    Task,
    button,
    phrase_card,
    procurements_card,
    search_card,
    status_card,
    tasks_card,
)
from ..domain.approval import ApprovalState
from ..domain.cards import turnout_line
from ..domain.commands import INTERNAL, Command, ParsedCommand, Place, parse_command
from ..domain.ids import UserId
from ..domain.incoming import mapping
from ..domain.locale import Locale
from ..domain.plan import ORG_KEY, RoomKind, room_key
from ..domain.search import PAGE, edited_event, searchable_text
from ..domain.words import STAGES
from ..feature import Answer, Asker, Button, Feature, Reply
from ..worker import from_ms, now_ms
from .approvals import approval_state, approval_title
from .people import People
from .votes import vote_state

log = logging.getLogger("bridge.assistant")

MORE = "search.more"
ASK_WORDS = "search.words"


def matrix_to(room_id: str, event_id: str | None = None) -> str:
    """The https://matrix.to link that opens a room (or an event in it) in the user's client."""
    link = "https://matrix.to/#/" + quote(room_id, safe="!:")
    return link + "/" + quote(event_id, safe="$") if event_id else link


class Assistant:
    def __init__(
        self, store: Store, people: People, locale: Locale, bot: str, bot_name: str
    ) -> None:
        self.store = store
        self.people = people
        self.locale = locale
        self.bot = bot
        self.bot_name = bot_name

    def feature(self) -> Feature:
        return Feature(
            name="assistant",
            commands={
                Command.STATUS: self.status,
                Command.TASKS: self.tasks,
                Command.SEARCH: self.search,
                Command.MORE: self.more,
            },
            actions={MORE: self.on_more},
            dialogs={ASK_WORDS: self.on_words},
            recorders=(self.record,),
        )

    # статус ---------------------------------------------------------------------------------

    async def status(self, asker: Asker, _: ParsedCommand) -> Answer:
        if asker.room is None:
            return procurements_card(await self._procurement_lines(asker.user), self.locale)
        room = asker.room
        snapshot = await self.people.snapshot(room.procurement_id)
        if snapshot is None:
            return None
        internal = bool(asker.roles & INTERNAL)
        votes = await self._open_votes(room, internal)
        approvals = await self._open_approvals(room, internal)
        stages = await self.store.procurements.stages(room.procurement_id)
        since = stages.get(snapshot.stage.value)
        status = RoomStatus(
            number=snapshot.display_number,
            title=snapshot.title,
            stage=STAGES[self.locale].get(snapshot.stage.value, snapshot.stage.value),
            stage_since=from_ms(since) if since else None,
            votes=tuple(votes),
            approvals=tuple(approvals),
            documents_pending=await self._documents_on_their_way(room),
            rooms=tuple(await self._other_rooms(asker.user, room)),
            show_people=internal,
        )
        names = await self._names(room.room_id or "")
        return status_card(status, names, self.locale)

    async def _open_votes(self, room: ManagedRoom, internal: bool) -> list[OpenVote]:
        """The room's open votes; the organisation chat sees the procurement's (internal)."""
        if room.key == ORG_KEY and internal:
            stored = await self.store.votes.open_of_procurement(room.procurement_id)
        else:
            stored = await self.store.votes.open_in_room(room.room_id or "")
        votes = []
        for vote in stored:
            state = vote_state(vote, await self.store.votes.ballots(vote))
            answered = {b.user for b in state.counted_ballots()}
            missing = tuple(v for v in state.voters if v not in answered)
            votes.append(
                OpenVote(
                    state.request.question,
                    turnout_line(state, self.locale),
                    state.request.closes_at,
                    missing,
                )
            )
        return votes

    async def _open_approvals(self, room: ManagedRoom, internal: bool) -> list[OpenApproval]:
        if not internal:
            return []  # approvals are the buyer's people's
        approvals = await self.store.approvals.of_procurement(room.procurement_id)
        here = room.key == ORG_KEY or room.key.startswith(f"{RoomKind.APPROVAL.value}:")
        found = []
        for approval in approvals:
            in_room = room.key in (ORG_KEY, room_key(RoomKind.APPROVAL, approval.approval_id))
            if not here or not in_room or approval.outcome is not None:
                continue
            state = await self._approval_state(approval)
            found.append(
                OpenApproval(
                    approval_title(state.request),
                    state.current_approvers(),
                    approval.awaiting_document,
                )
            )
        return found

    async def _approval_state(self, approval: StoredApproval) -> ApprovalState:
        return approval_state(approval, await self.store.approvals.decisions(approval))

    async def _documents_on_their_way(self, room: ManagedRoom) -> int:
        count = 0
        for body in await self.store.fetches.waiting_bodies(room.procurement_id):
            data = json.loads(body).get("data") or {}
            target = data.get("room") or room_key(RoomKind.APPROVAL, str(data.get("approval_id")))
            count += target == room.key
        return count

    async def _other_rooms(self, user: str, here: ManagedRoom) -> list[RoomLink]:
        """Links to the asker's other rooms of the procurement (never a room they are not in)."""
        links = []
        for room in await self.store.rooms.joined_by(user):
            if room.procurement_id == here.procurement_id and room.room_id != here.room_id:
                links.append(
                    RoomLink(
                        await self._room_name(room.room_id or ""), matrix_to(room.room_id or "")
                    )
                )
        return links

    async def _procurement_lines(self, user: str) -> list[ProcurementLine]:
        lines = []
        rooms = await self.store.rooms.joined_by(user)
        for procurement_id in dict.fromkeys(room.procurement_id for room in rooms):
            snapshot = await self.people.snapshot(procurement_id)
            if snapshot is None:
                continue
            theirs = [room for room in rooms if room.procurement_id == procurement_id]
            first = next((r for r in theirs if r.key == ORG_KEY), theirs[0])
            waiting = len(await self._tasks_in(procurement_id, user))
            lines.append(
                ProcurementLine(
                    snapshot.display_number,
                    snapshot.title,
                    STAGES[self.locale].get(snapshot.stage.value, snapshot.stage.value),
                    waiting,
                    matrix_to(first.room_id or ""),
                )
            )
        return lines

    # мои задачи ------------------------------------------------------------------------------

    async def tasks(self, asker: Asker, _: ParsedCommand) -> Answer:
        found: list[Task] = []
        for procurement_id in await self.people.procurements_of(asker.user):
            found += await self._tasks_in(procurement_id, asker.user)
        found.sort(key=lambda t: t.deadline.timestamp() if t.deadline else float("inf"))
        return tasks_card(found, self.locale)

    async def _tasks_in(self, procurement_id: str, user: str) -> list[Task]:
        snapshot = await self.people.snapshot(procurement_id)
        number = snapshot.display_number if snapshot else procurement_id
        tasks = [
            task
            for vote in await self.store.votes.open_of_procurement(procurement_id)
            if (task := await self._vote_task(vote, user, number)) is not None
        ]
        for approval in await self.store.approvals.of_procurement(procurement_id):
            if approval.outcome is None and not approval.awaiting_document:
                task = await self._approval_task(approval, user, number)
                if task is not None:
                    tasks.append(task)
        return tasks

    async def _vote_task(self, vote: StoredVote, user: str, number: str) -> Task | None:
        state = vote_state(vote, await self.store.votes.ballots(vote))
        answered = {b.user for b in state.counted_ballots()}
        if UserId(user) not in state.voters or UserId(user) in answered:
            return None
        poll = (
            await self.store.outbox.event_id_of(vote.poll_outbox_id)
            if vote.poll_outbox_id
            else None
        )
        url = matrix_to(vote.room_id, poll)
        return Task("vote", state.request.question, number, state.request.closes_at, url)

    async def _approval_task(
        self, approval: StoredApproval, user: str, number: str
    ) -> Task | None:
        state = await self._approval_state(approval)
        if UserId(user) not in state.current_approvers():
            return None
        room_id = await self.store.rooms.room_id_of(
            approval.procurement_id, room_key(RoomKind.APPROVAL, approval.approval_id)
        )
        card = (
            await self.store.outbox.event_id_of(approval.card_outbox_id)
            if approval.card_outbox_id
            else None
        )
        url = matrix_to(room_id or "", card)
        return Task("approval", approval_title(state.request), number, state.request.deadline, url)

    # поиск ----------------------------------------------------------------------------------

    async def search(self, asker: Asker, command: ParsedCommand) -> Answer:
        if not command.argument.strip():
            await self.store.dialogs.put(asker.room_id, asker.user, ASK_WORDS, {}, now_ms())
            return phrase_card("search_ask", self.locale)
        return await self._page(asker, command.argument.strip(), 0)

    async def on_words(self, asker: Asker, text: str, _: Mapping[str, Any]) -> Answer:
        await self.store.dialogs.end(asker.room_id, asker.user)
        return await self._page(asker, text.strip(), 0)

    async def more(self, asker: Asker, _: ParsedCommand) -> Answer:
        last = await self.store.search.last(asker.user, asker.room_id)
        if last is None:
            return phrase_card("search_no_session", self.locale)
        return await self._page(asker, *last)

    async def on_more(self, asker: Asker, _: Mapping[str, Any]) -> Answer:
        return await self.more(asker, ParsedCommand(Command.MORE, ""))

    async def _page(self, asker: Asker, query: str, shown: int) -> Answer:
        """Up to a page of hits after the `shown` ones. In a room, only that room's messages:
        the answer is seen by everyone there. In a direct chat, every room the person is in
        now — membership is checked at the time of the search, never before."""
        if asker.place is Place.DIRECT:
            rooms = [r.room_id or "" for r in await self.store.rooms.joined_by(asker.user)]
        else:
            rooms = [asker.room_id] if await self._joined(asker.user, asker.room_id) else []
        hits = await self.store.search.search(rooms, query, shown, PAGE + 1)
        more = len(hits) > PAGE
        hits = hits[:PAGE]
        await self.store.search.remember(
            asker.user, asker.room_id, query, shown + len(hits), now_ms()
        )
        found = [await self._found(hit) for hit in hits]
        card = search_card(query, found, shown, more, self.locale)
        if not more:
            return card
        return Reply(card, (Button(button(self.locale, "more"), {"kind": MORE}, asker.user),))

    async def _joined(self, user: str, room_id: str) -> bool:
        return any(room.room_id == room_id for room in await self.store.rooms.joined_by(user))

    async def _found(self, hit: Hit) -> Found:
        names = await self._names(hit.room_id)
        sender = self.bot_name if hit.sender == self.bot else hit.sender
        return Found(
            names.get(UserId(hit.sender), sender),
            from_ms(hit.ts),
            await self._room_name(hit.room_id),
            hit.body,
            matrix_to(hit.room_id, hit.event_id),
        )

    # The index ------------------------------------------------------------------------------

    async def record(self, room: ManagedRoom, event: dict[str, Any]) -> None:
        """Keeps the search index as the room is: what is written, edited, and redacted."""
        if room.room_id is None or room.is_space:
            return
        if event.get("type") == "m.room.redaction" and isinstance(event.get("redacts"), str):
            await self.store.search.remove(str(event["redacts"]))
            return
        text = searchable_text(event)
        if text is None or self._own_reply(event) or _to_the_bot(event, text):
            return
        sender = str(event.get("sender", ""))
        edited = edited_event(event)
        if edited is not None:
            await self.store.search.replace(edited, sender, text)
            return
        ts = event.get("origin_server_ts")
        await self.store.search.add(
            event["event_id"], room.room_id, sender, ts if isinstance(ts, int) else now_ms(), text
        )

    def _own_reply(self, event: dict[str, Any]) -> bool:
        """The bot's answers to people (search results among them) are not searched again."""
        relation = mapping(mapping(event.get("content")).get("m.relates_to"))
        return event.get("sender") == self.bot and "m.in_reply_to" in relation

    # Names ----------------------------------------------------------------------------------

    async def _names(self, room_id: str) -> dict[UserId, str]:
        return {UserId(k): v for k, v in (await self.store.rooms.display_names(room_id)).items()}

    async def _room_name(self, room_id: str) -> str:
        state = (await self.store.rooms.state_of([room_id]))[room_id]
        name = (state.get(("m.room.name", "")) or {}).get("name")
        return str(name) if name else room_id


def _to_the_bot(event: dict[str, Any], text: str) -> bool:
    """A command typed to the bot («поиск бегемот») is not what the room discussed: searching
    would find the searches."""
    content = event.get("content") or {}
    return content.get("msgtype") == "m.text" and parse_command(text) is not None
