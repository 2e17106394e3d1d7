"""Reconciliation: a procurement's room plan diffed against its rooms and applied."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from typing import Any, cast

import aiohttp
from mautrix.api import Method, Path
from mautrix.client import ClientAPI
from mautrix.errors import MatrixConnectionError, MatrixRequestError, MForbidden
from mautrix.types import EventType, RoomID, UserID
from prometheus_client import Counter

from .. import metrics
from ..db.procurements import ReconcileJob
from ..db.rooms import ManagedRoom, StateMap
from ..db.store import Store
from ..domain import policy
from ..domain.audit import Kind
from ..domain.cards import context_card
from ..domain.events import card_content
from ..domain.identity import retired_key, rooms_to_retire
from ..domain.ids import RoomId, RoomKey, SupplierId, UserId
from ..domain.locale import Locale
from ..domain.plan import ApprovalRoomInput, Plan, RoomSpec, plan_rooms
from ..domain.reconcile import (
    CreateRoom,
    Effect,
    Invite,
    Kick,
    ObservedRoom,
    SetAccessRules,
    SetAvatar,
    SetContext,
    SetName,
    SetPowerLevels,
    SetSpaceChild,
    SetSpaceParent,
    SetTopic,
    diff,
    phases,
    room_of,
    rooms_needed,
)
from ..domain.search import CONTEXT_CARD
from ..domain.snapshot import Snapshot, parse_snapshot
from ..retry import Failure, Transient, classify
from ..worker import now_ms

log = logging.getLogger("bridge.reconciler")

REFUSED = Counter(
    "bridge_reconcile_refusals_total",
    "Changes to managed rooms the homeserver refused (the rest of the pass went on)",
    ["effect"],
    registry=metrics.REGISTRY,
)

CREATION_ID = "org.procurement.creation_id"
# How long a createRoom whose answer was lost is waited for before it is sent again.
CREATION_GRACE_MS = 30_000
MEMBER = "m.room.member"
State = tuple[str, str, dict[str, Any]]  # (event type, state key, content)
ApprovalSource = Callable[[str], Awaitable[Sequence[ApprovalRoomInput]]]
AvatarSource = Callable[[], Awaitable[Mapping[str, str]]]


class Reconciler:
    def __init__(
        self,
        client: ClientAPI,
        store: Store,
        *,
        domain: str,
        locale: Locale,
        federate: bool,
        approvals: ApprovalSource,
        avatars: AvatarSource,
        concurrency: int = 1,
    ) -> None:
        self.client = client
        self.store = store
        self.procurements = store.procurements
        self.rooms = store.rooms
        self.outbox = store.outbox
        self.refused = store.refused
        self.domain = domain
        self.locale = locale
        self.federate = federate
        self.approvals = approvals
        self.avatars = avatars
        self.bot = UserId(str(client.mxid))
        # Passes of several procurements run side by side (the queue's concurrency); together
        # they have at most this many changes under way at the homeserver.
        self.concurrency = max(1, concurrency)
        self.slots = asyncio.Semaphore(self.concurrency)
        # Called once a room has been created (something may have waited for it).
        self.after_creation: list[Callable[[], None]] = []

    async def reconcile(self, job: ReconcileJob) -> None:
        """One pass for a procurement: every change is tried on its own; what the homeserver
        refuses is recorded and the rest goes on; what failed for now is tried again."""
        stored = await self.procurements.get(job.procurement_id)
        if stored is None:
            return
        snapshot = parse_snapshot(json.loads(stored.snapshot))
        managed = await self._retire(snapshot)
        bound = {key: room.room_id for key, room in managed.items() if room.room_id}
        states = await self.rooms.state_of(bound.values())
        known = frozenset(RoomKey(key) for key in bound)
        plan = plan_rooms(snapshot, await self.approvals(stored.id), known, self.locale)
        keys_by_room = {room_id: RoomKey(key) for key, room_id in bound.items()}
        observed = [
            observe(RoomKey(key), RoomId(room_id), states[room_id], keys_by_room, self.bot)
            for key, room_id in bound.items()
        ]
        avatars = await self.avatars()
        effects = diff(plan, observed, bot=self.bot, avatars=avatars)
        # Bound by the echo of its m.room.create, with no membership of the bot since: the
        # homeserver stopped in the middle of creating it.
        cut_short = [
            key for key, room_id in bound.items() if (MEMBER, self.bot) not in states[room_id]
        ]
        if effects or cut_short:
            log.info("Procurement %s: applying %d changes", stored.id, len(effects))
            await _Pass(self, plan, managed, bound, effects, avatars, cut_short).run()

    async def _retire(self, snapshot: Snapshot) -> dict[str, ManagedRoom]:
        """The procurement's rooms, after moving off their keys those the snapshot would hand
        to another party (domain.identity)."""
        rooms = {room.key: room for room in await self.rooms.of_procurement(snapshot.id)}
        parties = {key: SupplierId(r.party) if r.party else None for key, r in rooms.items()}
        retiring = rooms_to_retire(snapshot, parties)
        if not retiring:
            return rooms
        async with self.store.transaction():
            taken = set(rooms)
            for key in retiring:
                new_key = retired_key(key, taken)
                taken.add(new_key)
                await self.rooms.retire(snapshot.id, key, new_key)
                log.info(
                    "Procurement %s: room %s (%s) retired as %s: its party is no longer %s",
                    snapshot.id,
                    key,
                    rooms[key].room_id,
                    new_key,
                    rooms[key].party,
                )
        return {room.key: room for room in await self.rooms.of_procurement(snapshot.id)}

    async def request(self, procurement_id: str) -> None:
        await self.procurements.request_reconcile(procurement_id, now_ms())


class _Pass:
    """Applies one diff, each change on its own. Room creation takes the room's invites and
    parent along, so a new room costs one createRoom call plus one m.space.child event in each
    space that lists it.

    The changes run in two phases (domain.reconcile.phases): everything that takes access away,
    then, once that is through, everything that gives it. In each phase the rooms' lanes run
    side by side, at most `Reconciler.concurrency` changes at once across all passes; a lane
    that needs a room another lane creates (a parent space, a listed child) waits for it."""

    def __init__(
        self,
        owner: Reconciler,
        plan: Plan,
        managed: dict[str, ManagedRoom],
        bound: dict[str, str],
        effects: list[Effect],
        avatars: Mapping[str, str],
        cut_short: Sequence[str] = (),
    ) -> None:
        self.o = owner
        self.avatars = avatars
        self.cut_short = cut_short
        self.plan = plan
        self.managed = managed
        self.room_ids = dict(bound)
        self.effects = effects
        creating = {e.spec.key for e in effects if isinstance(e, CreateRoom)}
        self.folded_invites: dict[str, list[UserId]] = {}
        for e in effects:
            if isinstance(e, Invite) and e.key in creating:
                self.folded_invites.setdefault(e.key, []).append(e.user)
        self.foreign: set[str] = set()
        # Rooms this pass creates, each set once its creation has been tried (made or not).
        self.creations: dict[str, asyncio.Event] = {}
        self.created: set[str] = set()
        self.waiting: list[str] = []  # changes to try again: failed for now, or not possible yet
        self.refused: set[tuple[str, str]] = set()  # refusals on record, cleared once through

    async def run(self) -> None:
        self.foreign = self.foreign_rooms()
        self.refused = await self.o.refused.of_procurement(self.plan.procurement_id)
        self.creations = {
            e.spec.key: asyncio.Event()
            for e in self.effects
            if isinstance(e, CreateRoom) and e.spec.key not in self.foreign
        }
        await self.side_by_side(self.rejoin(key) for key in self.cut_short)
        taking, giving = phases(self.effects)
        await self.side_by_side(self.lane(lane) for lane in taking.lanes)
        await self.side_by_side(self.lane(lane) for lane in giving.lanes)
        if self.waiting:
            raise Transient(
                f"{len(self.waiting)} of {len(self.effects)} changes wait: {self.waiting[0]}"
            )

    async def side_by_side(self, work: Iterable[Coroutine[Any, Any, None]]) -> None:
        """Runs lanes concurrently and returns once every one is through. A failure outside
        the changes themselves (the store) ends the pass, after the other lanes: the next
        phase never starts on a half-applied one."""
        outcomes = await asyncio.gather(*work, return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    async def lane(self, effects: Sequence[Effect]) -> None:
        try:
            for effect in effects:
                await self.step(effect)
        finally:
            # Whatever happened, nobody waits for this lane's room for ever.
            for effect in effects:
                if isinstance(effect, CreateRoom) and effect.spec.key in self.creations:
                    self.creations[effect.spec.key].set()

    async def step(self, effect: Effect) -> None:
        key = room_of(effect)
        if key in self.foreign:
            self.waiting.append(f"{_describe(effect)}: bound to another party")
            return
        for needed in rooms_needed(effect):
            if needed != key and needed in self.creations:
                await self.creations[needed].wait()
        match effect:
            case CreateRoom(spec=spec):
                try:
                    if not self.can_apply(effect):
                        self.waiting.append(
                            f"{_describe(effect)} {key}: its parent space is not created yet"
                        )
                    elif await self.attempt(effect, self.create(spec)):
                        self.created.add(key)
                finally:
                    self.creations[key].set()
            case Invite() if key in self.created:
                pass  # invited by createRoom
            case SetSpaceParent(present=True) if key in self.created:
                pass  # set by createRoom's initial_state
            case _ if not self.can_apply(effect):
                self.waiting.append(f"{_describe(effect)}: its room is not created yet")
            case _:
                await self.attempt(effect, self.apply(effect))

    async def rejoin(self, key: str) -> None:
        """Takes the bot's place in a room whose creation the homeserver cut short: the room
        has only its m.room.create, which lets its creator join. The pass's changes then give
        it its policy, context and people, as to any room that drifted."""
        what = "join the room cut short"
        try:
            async with self.o.slots:
                await self.o.client.join_room_by_id(self.rid(key))
        except Exception as e:
            if classify(e) is Failure.PERMANENT:
                log.warning(
                    "Procurement %s, %s: %s refused: %s", self.plan.procurement_id, key, what, e
                )
                await self.o.refused.record(self.plan.procurement_id, key, what, str(e), now_ms())
            else:
                self.waiting.append(f"{what} {key}: {type(e).__name__}: {e}")
            return
        await self.o.rooms.set_state(
            self.room_ids[key], MEMBER, self.o.bot, {"membership": "join"}
        )
        if (key, what) in self.refused:
            await self.o.refused.clear(self.plan.procurement_id, key, what)
        log.info(
            "Procurement %s: joined %s, whose creation was cut short",
            self.plan.procurement_id,
            key,
        )

    def foreign_rooms(self) -> set[str]:
        """Planned keys whose existing room is bound to another supplier. The retirement before
        planning makes this empty; checked again here because a miss would leak a history."""
        foreign: set[str] = set()
        for spec in self.plan.specs:
            row = self.managed.get(spec.key)
            if row is not None and spec.supplier_id is not None and row.party != spec.supplier_id:
                log.error(
                    "Room %s of %s is bound to %s, planned for %s: left alone",
                    spec.key,
                    self.plan.procurement_id,
                    row.party,
                    spec.supplier_id,
                )
                foreign.add(spec.key)
        return foreign

    def can_apply(self, effect: Effect) -> bool:
        """Whether every room the change needs exists."""
        return all(key in self.room_ids for key in rooms_needed(effect))

    async def attempt(self, effect: Effect, change: Coroutine[Any, Any, None]) -> bool:
        """Applies one change, in one of the reconciler's slots; a refusal is recorded and a
        passing failure remembered, and either way the pass goes on. True if it went through."""
        o, key, what = self.o, room_of(effect), _describe(effect)
        try:
            async with o.slots:
                await change
        except Exception as e:
            await self.failed(effect, e)
            return False
        finally:
            change.close()  # never started when stopped while waiting for a slot
        if (key, what) in self.refused:  # refused once, through now
            await o.refused.clear(self.plan.procurement_id, key, what)
        if isinstance(effect, Kick | Invite | SetPowerLevels | SetAccessRules):
            await self.on_record(effect, key, what)
        return True

    async def failed(self, effect: Effect, error: Exception) -> None:
        """A refusal is recorded; a failure that may pass is remembered for the next try."""
        o, key, what = self.o, room_of(effect), _describe(effect)
        failure = classify(error)
        if failure is Failure.PERMANENT:
            REFUSED.labels(type(effect).__name__).inc()
            log.warning(
                "Procurement %s, %s: the homeserver refused %s: %s",
                self.plan.procurement_id,
                key,
                what,
                error,
            )
            await o.refused.record(self.plan.procurement_id, key, what, str(error), now_ms())
            return
        if failure is Failure.UNEXPECTED:
            log.exception("Procurement %s, %s: %s failed", self.plan.procurement_id, key, what)
        self.waiting.append(f"{what} in {key}: {type(error).__name__}: {error}")

    async def on_record(self, effect: Effect, key: str, what: str) -> None:
        """Who was let in or taken out, and a room's rules restored, on the audit log."""
        await self.o.store.audit.record(
            Kind.ENFORCEMENT.value,
            {
                "effect": type(effect).__name__,
                "room_key": key,
                "target": getattr(effect, "user", None),
                "detail": what,
            },
            now=now_ms(),
            procurement=self.plan.procurement_id,
            room=self.room_ids.get(key),
            subject=self.room_ids.get(key),
        )

    def rid(self, key: str) -> RoomID:
        return RoomID(self.room_ids[key])

    # Creation ------------------------------------------------------------------------------

    async def create(self, spec: RoomSpec) -> None:
        o = self.o
        # Read afresh: the echo of an interrupted creation may have bound it since the plan.
        row = await o.rooms.intend(
            self.plan.procurement_id, spec.key, spec.is_space, spec.supplier_id
        )
        if row.room_id is not None:
            self.room_ids[spec.key] = row.room_id
            await o.request(self.plan.procurement_id)  # planned without it: plan again
            return
        if row.create_tried and await self.recover(row):
            return
        if row.create_tried and now_ms() - (row.create_tried_at or 0) < CREATION_GRACE_MS:
            # The homeserver may still be creating it (the bridge stopped mid-request): its
            # m.room.create, naming the creation id, will bind it. Never make a room twice.
            raise Transient(f"the creation of {spec.key} may still be under way")
        await o.rooms.mark_create_tried(row.creation_id, now_ms())
        parent = None if spec.parent is None else self.parent_state(spec.parent)
        invites = sorted(self.folded_invites.get(spec.key, []))
        body = create_room_body(
            spec,
            bot=o.bot,
            federate=o.federate,
            creation_id=row.creation_id,
            parent=parent,
            avatar=self.avatars.get(spec.avatar),
            invites=invites,
        )
        # Never retried blindly: a lost answer is found by recover(), not created again.
        try:
            resp = await o.client.api.request(Method.POST, Path.v3.createRoom, body, retry_count=0)
        except MatrixConnectionError as e:
            if isinstance(e.__cause__, aiohttp.ClientConnectorError):
                # Never connected: the homeserver did not see it, nothing to wait for.
                await o.rooms.mark_create_untried(row.creation_id)
            raise
        room_id = resp["room_id"]
        now = now_ms()
        await o.rooms.bind(row.creation_id, room_id, now)
        self.room_ids[spec.key] = room_id
        states: list[State] = [
            (
                "m.room.create",
                "",
                {**body["creation_content"], "room_version": policy.ROOM_VERSION},
            ),
            ("m.room.power_levels", "", body["power_level_content_override"]),
            ("m.room.name", "", {"name": spec.name}),
            ("m.room.topic", "", {"topic": spec.topic}),
            (MEMBER, o.bot, {"membership": "join"}),
            *((e["type"], e["state_key"], e["content"]) for e in body["initial_state"]),
            *((MEMBER, user, {"membership": "invite"}) for user in invites),
        ]
        await o.rooms.set_states(room_id, states)
        log.info("Created %s %s for procurement %s", spec.key, room_id, self.plan.procurement_id)
        for notify in o.after_creation:
            notify()
        if not spec.is_space:
            await self.post_context_card(room_id, spec)

    async def recover(self, row: ManagedRoom) -> bool:
        """Finds a room an earlier, interrupted creation made; True if found and bound."""
        o = self.o
        joined = await o.client.get_joined_rooms()
        known = await o.rooms.all_room_ids()
        for room_id in joined:
            if room_id in known:
                continue
            try:
                create = await o.client.get_state_event(room_id, EventType.ROOM_CREATE)
            except MatrixRequestError:
                continue
            if create.serialize().get(CREATION_ID) == row.creation_id:
                await o.rooms.bind(row.creation_id, room_id, now_ms())
                self.room_ids[row.key] = room_id
                await self.refresh_state(room_id)
                # This pass was planned without the room; plan again with it.
                await o.request(self.plan.procurement_id)
                log.info("Found room %s of an interrupted creation of %s", room_id, row.key)
                return True
        return False

    async def refresh_state(self, room_id: str) -> None:
        events = await self.o.client.api.request(Method.GET, Path.v3.rooms[room_id].state)
        await self.o.rooms.set_state_events(room_id, events)

    async def post_context_card(self, room_id: str, spec: RoomSpec) -> None:
        await self.o.outbox.enqueue(
            f"context:{room_id}",
            room_id,
            "m.room.message",
            context_card_content(spec, self.o.locale),
            now_ms(),
        )

    def parent_state(self, parent_key: str) -> State:
        return space_parent_state(self.room_ids[parent_key], self.o.domain)

    # Changes to existing rooms --------------------------------------------------------------

    async def apply(self, effect: Effect) -> None:
        o = self.o
        match effect:
            case SetPowerLevels(key=key, archived=archived):
                version = await self.room_version(key)
                content = policy.power_levels(bot=o.bot, room_version=version, archived=archived)
                await self.send_state(key, "m.room.power_levels", "", content)
            case SetAccessRules(key=key):
                for event_type, state_key, content in access_states():
                    await self.send_state(key, event_type, state_key, content)
            case SetName(key=key, name=name):
                await self.send_state(key, "m.room.name", "", {"name": name})
            case SetTopic(key=key, topic=topic):
                await self.send_state(key, "m.room.topic", "", {"topic": topic})
            case SetAvatar(key=key, url=url):
                await self.send_state(key, "m.room.avatar", "", {"url": url})
            case SetContext(key=key, context=context):
                await self.send_state(key, policy.CONTEXT_EVENT_TYPE, "", dict(context))
            case Invite(key=key, user=user):
                await self.invite(key, user)
            case Kick(key=key, user=user, reason=reason):
                await self.kick(key, user, reason)
            case SetSpaceParent(key=key, parent_key=parent_key, present=present):
                event_type, state_key, content = self.parent_state(parent_key)
                await self.send_state(key, event_type, state_key, content if present else {})
            case SetSpaceChild(space_key=space, child_key=child, present=present, order=order):
                child_content = space_child_content(o.domain, order) if present else {}
                await self.send_state(space, "m.space.child", self.room_ids[child], child_content)
            case CreateRoom():  # pragma: no cover - handled by run()
                raise AssertionError("creation goes through create()")

    async def room_version(self, key: str) -> str:
        states = await self.o.rooms.state_of([self.room_ids[key]])
        create = states[self.room_ids[key]].get(("m.room.create", ""), {})
        return str(create.get("room_version", "1"))

    async def send_state(
        self, key: str, event_type: str, state_key: str, content: dict[str, Any]
    ) -> None:
        room_id = self.rid(key)
        await self.o.client.send_state_event(
            room_id,
            EventType.find(event_type, EventType.Class.STATE),
            content,  # type: ignore[arg-type]  # raw JSON is accepted
            state_key,
        )
        await self.o.rooms.set_state(room_id, event_type, state_key, content)

    async def invite(self, key: str, user: UserId) -> None:
        room_id = self.rid(key)
        try:
            await self.o.client.invite_user(room_id, UserID(user))
        except MForbidden as e:
            # Already in the room is the state we want; anything else is a real refusal.
            if "already in the room" not in str(e.message):
                raise
            await self.o.rooms.set_state(room_id, MEMBER, user, {"membership": "join"})
            return
        await self.o.rooms.set_state(room_id, MEMBER, user, {"membership": "invite"})

    async def kick(self, key: str, user: UserId, reason: str) -> None:
        room_id = self.rid(key)
        try:
            await self.o.client.kick_user(room_id, UserID(user), reason=reason)
        except MForbidden as e:
            # Not in the room (left meanwhile): that is what the kick was for.
            if "not in the room" not in str(e.message) and "not joined" not in str(e.message):
                raise
        await self.o.rooms.set_state(room_id, MEMBER, user, {"membership": "leave"})


def _describe(effect: Effect) -> str:
    """The change in a few words, the same each time (refusals are kept once per change)."""
    match effect:
        case CreateRoom():
            return "create the room"
        case Invite(user=user):
            return f"invite {user}"
        case Kick(user=user):
            return f"remove {user}"
        case SetPowerLevels(archived=archived):
            return "lock as an archive" if archived else "restore power levels"
        case SetSpaceChild(child_key=child, present=present):
            return f"{'list' if present else 'unlist'} {child} in the space"
        case SetSpaceParent(parent_key=parent, present=present):
            return f"{'set' if present else 'clear'} the parent space {parent}"
        case _:
            return type(effect).__name__


def observe(
    key: RoomKey,
    room_id: RoomId,
    state: StateMap,
    keys_by_room: dict[str, RoomKey],
    bot: UserId,
) -> ObservedRoom:
    """What the diff needs of a room, from its recorded state."""

    def content(event_type: str, state_key: str = "") -> dict[str, Any] | None:
        return state.get((event_type, state_key))

    version = str((content("m.room.create") or {}).get("room_version", "1"))
    levels = policy.check_power_levels(
        content("m.room.power_levels") or {}, bot=bot, room_version=version
    )
    access = {rule: content(rule) for rule, _, _ in policy.ACCESS_RULES}
    members = frozenset(
        UserId(state_key)
        for (event_type, state_key), c in state.items()
        if event_type == MEMBER and c.get("membership") in ("join", "invite")
    )
    parents = frozenset(
        keys_by_room[state_key]
        for (event_type, state_key), c in state.items()
        if event_type == "m.space.parent" and c.get("via") and state_key in keys_by_room
    )
    children = {
        keys_by_room[state_key]: c.get("order")
        for (event_type, state_key), c in state.items()
        if event_type == "m.space.child" and c.get("via") and state_key in keys_by_room
    }
    return ObservedRoom(
        key=key,
        room_id=room_id,
        name=(content("m.room.name") or {}).get("name"),
        topic=(content("m.room.topic") or {}).get("topic"),
        avatar=(content("m.room.avatar") or {}).get("url"),
        context=content(policy.CONTEXT_EVENT_TYPE),
        members=members,
        archived=levels.archived,
        power_levels_ok=levels.intact,
        access_ok=not policy.access_drift(access),
        parents=parents,
        children=children,
    )


def create_room_body(
    spec: RoomSpec,
    *,
    bot: UserId,
    federate: bool,
    creation_id: str,
    parent: State | None,
    avatar: str | None,
    invites: Sequence[UserId],
) -> dict[str, Any]:
    """The createRoom request of a planned room: its policy, context, parent space, picture and
    first members in one call."""
    initial: list[State] = [*access_states(), (policy.CONTEXT_EVENT_TYPE, "", dict(spec.context))]
    if parent is not None:
        initial.append(parent)
    if avatar is not None:
        initial.append(("m.room.avatar", "", {"url": avatar}))
    return {
        "room_version": policy.ROOM_VERSION,
        "preset": "private_chat",
        "name": spec.name,
        "topic": spec.topic,
        "creation_content": {
            **policy.creation_content(federate=federate, is_space=spec.is_space),
            CREATION_ID: creation_id,
        },
        "initial_state": [
            {"type": kind, "state_key": key, "content": content} for kind, key, content in initial
        ],
        "power_level_content_override": policy.power_levels(
            bot=bot, room_version=policy.ROOM_VERSION, archived=spec.archived
        ),
        "invite": list(invites),
    }


def context_card_content(spec: RoomSpec, locale: Locale) -> dict[str, Any]:
    """The bot's first message in a new room: what the room is about."""
    context = spec.context
    site = context.get("object")
    url = context.get("url")
    card = context_card(
        procurement_number=str(context["number"]),
        title=str(context["title"]),
        room_kind=str(context["kind"]),
        locale=locale,
        room_subject=spec.subject,
        object_name=site.get("name") if isinstance(site, dict) else None,
        stage=str(context["stage"]),
        url=url if isinstance(url, str) else None,
    )
    return {**card_content(card), CONTEXT_CARD: True}


def space_parent_state(parent_room_id: str, domain: str) -> State:
    return ("m.space.parent", parent_room_id, {"via": [domain], "canonical": True})


def space_child_content(domain: str, order: str | None) -> dict[str, Any]:
    return {"via": [domain]} | ({"order": order} if order else {})


def access_states() -> list[State]:
    """The policy's join rule, guest access and history visibility as state events."""
    return [
        (str(event["type"]), str(event["state_key"]), cast(dict[str, Any], event["content"]))
        for event in policy.initial_state()
    ]
