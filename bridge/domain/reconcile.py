"""The diff from what Matrix holds to the plan: effects as data, applied by `matrix/`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from .ids import RoomId, RoomKey, UserId
from .locale import Locale
from .plan import Plan, RoomSpec


@dataclass(frozen=True, slots=True)
class ObservedRoom:
    """What the matrix layer knows of one managed room, from its DB and the room state."""

    key: RoomKey
    room_id: RoomId
    name: str | None
    topic: str | None
    context: Mapping[str, object] | None  # org.procurement.context content
    members: frozenset[UserId]  # joined or invited (the bot may be included or not)
    archived: bool  # policy.check_power_levels(...).archived
    power_levels_ok: bool  # policy.check_power_levels(...).intact
    access_ok: bool  # not policy.access_drift(...)
    parents: frozenset[RoomKey] = frozenset()  # m.space.parent state naming managed spaces
    children: Mapping[RoomKey, str | None] = field(default_factory=dict)  # m.space.child → order
    avatar: str | None = None  # m.room.avatar url


@dataclass(frozen=True, slots=True)
class CreateRoom:
    """Create the room with its name, topic, context and policy (archived per the spec).

    Members and space relations are not part of it: the effects that follow add them.
    """

    spec: RoomSpec


@dataclass(frozen=True, slots=True)
class SetPowerLevels:
    """Send policy.power_levels(..., archived=archived)."""

    key: RoomKey
    archived: bool


@dataclass(frozen=True, slots=True)
class SetAccessRules:
    """Send policy.initial_state() again: join rules, guest access, history visibility."""

    key: RoomKey


@dataclass(frozen=True, slots=True)
class SetName:
    key: RoomKey
    name: str


@dataclass(frozen=True, slots=True)
class SetTopic:
    key: RoomKey
    topic: str


@dataclass(frozen=True, slots=True)
class SetAvatar:
    key: RoomKey
    url: str


@dataclass(frozen=True, slots=True)
class SetContext:
    key: RoomKey
    context: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class Kick:
    key: RoomKey
    user: UserId
    reason: str


@dataclass(frozen=True, slots=True)
class Invite:
    key: RoomKey
    user: UserId


@dataclass(frozen=True, slots=True)
class SetSpaceParent:
    """Add (or with present=False empty) the room's m.space.parent naming `parent_key`."""

    key: RoomKey
    parent_key: RoomKey
    present: bool


@dataclass(frozen=True, slots=True)
class SetSpaceChild:
    """Add (or with present=False empty) the space's m.space.child naming `child_key`."""

    space_key: RoomKey
    child_key: RoomKey
    present: bool
    order: str | None


Effect = (
    CreateRoom
    | SetPowerLevels
    | SetAccessRules
    | SetName
    | SetTopic
    | SetAvatar
    | SetContext
    | Kick
    | Invite
    | SetSpaceParent
    | SetSpaceChild
)

_KICK_REASON = {
    Locale.RU: "Не участник этого чата по данным системы закупок",
    Locale.EN: "Not a participant of this chat according to the procurement system",
}


def diff(
    plan: Plan,
    observed: Iterable[ObservedRoom],
    *,
    bot: UserId,
    avatars: Mapping[str, str] | None = None,
) -> list[Effect]:
    """The effects that bring Matrix to the plan, in the order to apply them.

    `avatars` maps RoomSpec.avatar to the picture's mxc URI; a kind without one is left as it
    is (pictures are cosmetic: their absence never holds anything up).

    Access is taken away before any is given, across the whole plan: policy is locked
    (archives, drifted power levels and join rules) and people are kicked first, then rooms
    leave the spaces that no longer list them; only then are missing rooms created (spaces
    before rooms), names fixed, people invited and rooms added to their spaces. A pass cut
    short anywhere has never granted what a later step was to take away. Nothing is emitted for
    a room that matches, and no room is ever removed.
    """
    seen = {room.key: room for room in observed}
    locks: list[Effect] = []
    kicks: list[Effect] = []
    detach: list[Effect] = []
    creates: list[Effect] = []
    fixes: list[Effect] = []
    invites: list[Effect] = []
    attach: list[Effect] = []
    for spec in plan.specs:
        room = seen.get(spec.key)
        members: frozenset[UserId] = frozenset()
        if room is None:
            creates.append(CreateRoom(spec))
        else:
            locks.extend(_lock_effects(spec, room))
            members = room.members
            kicks.extend(
                Kick(spec.key, user, _KICK_REASON[plan.locale])
                for user in sorted(members - spec.members - {bot})
            )
            fixes.extend(_name_effects(spec, room, (avatars or {}).get(spec.avatar)))
        invites.extend(Invite(spec.key, user) for user in sorted(spec.members - members - {bot}))
    for spec in plan.specs:
        for effect in _parent_effects(spec, seen.get(spec.key)):
            (attach if effect.present else detach).append(effect)
    orders = {spec.key: spec.order for spec in plan.specs}
    for space in plan.spaces:
        wanted = plan.children.get(space.key, ())
        for child in _child_effects(space.key, wanted, orders, seen.get(space.key)):
            (attach if child.present else detach).append(child)
    return locks + kicks + detach + creates + fixes + invites + attach


def _lock_effects(spec: RoomSpec, room: ObservedRoom) -> list[Effect]:
    effects: list[Effect] = []
    if room.archived != spec.archived or not room.power_levels_ok:
        effects.append(SetPowerLevels(spec.key, spec.archived))
    if not room.access_ok:
        effects.append(SetAccessRules(spec.key))
    return effects


def _name_effects(spec: RoomSpec, room: ObservedRoom, avatar: str | None) -> list[Effect]:
    effects: list[Effect] = []
    if room.name != spec.name:
        effects.append(SetName(spec.key, spec.name))
    if room.topic != spec.topic:
        effects.append(SetTopic(spec.key, spec.topic))
    if avatar is not None and room.avatar != avatar:
        effects.append(SetAvatar(spec.key, avatar))
    if room.context != spec.context:
        effects.append(SetContext(spec.key, spec.context))
    return effects


def _parent_effects(spec: RoomSpec, room: ObservedRoom | None) -> list[SetSpaceParent]:
    parents = room.parents if room is not None else frozenset()
    effects: list[SetSpaceParent] = [
        SetSpaceParent(spec.key, old, present=False)
        for old in sorted(parents)
        if old != spec.parent
    ]
    if spec.parent is not None and spec.parent not in parents:
        effects.append(SetSpaceParent(spec.key, spec.parent, present=True))
    return effects


def _child_effects(
    space_key: RoomKey,
    wanted: tuple[RoomKey, ...],
    orders: Mapping[RoomKey, str],
    room: ObservedRoom | None,
) -> list[SetSpaceChild]:
    children: Mapping[RoomKey, str | None] = room.children if room is not None else {}
    effects: list[SetSpaceChild] = [
        SetSpaceChild(space_key, old, present=False, order=None)
        for old in sorted(set(children) - set(wanted))
    ]
    effects.extend(
        SetSpaceChild(space_key, key, present=True, order=orders[key])
        for key in wanted
        if key not in children or children[key] != orders[key]
    )
    return effects


def room_of(effect: Effect) -> RoomKey:
    """The room an effect changes: the new room of a creation, the space of a listing."""
    match effect:
        case CreateRoom(spec=spec):
            return spec.key
        case SetSpaceChild(space_key=space):
            return space
        case _:
            return effect.key


def takes_access_away(effect: Effect) -> bool:
    """Whether the effect takes access away (or locks a room's policy back) rather than giving
    any: what diff() puts first."""
    if isinstance(effect, SetSpaceParent | SetSpaceChild):
        return not effect.present
    return isinstance(effect, SetPowerLevels | SetAccessRules | Kick)


def rooms_needed(effect: Effect) -> tuple[RoomKey, ...]:
    """The rooms that must exist before the effect can be applied: the room it changes and the
    space or child it names; for a creation, the parent space its m.space.parent names."""
    match effect:
        case CreateRoom(spec=spec):
            return () if spec.parent is None else (spec.parent,)
        case SetSpaceChild(space_key=space, child_key=child):
            return (space, child)
        case SetSpaceParent(key=key, parent_key=parent):
            return (key, parent)
        case _:
            return (effect.key,)


@dataclass(frozen=True, slots=True)
class Phase:
    """Effects that may be applied side by side: one lane per room, each lane in the diff's
    order (a room's creation first, its listings of other rooms last)."""

    lanes: tuple[tuple[Effect, ...], ...]


def phases(effects: Sequence[Effect]) -> tuple[Phase, Phase]:
    """The diff cut for concurrent application: what takes access away, then what gives it.

    The second phase starts only once the first is through, so access is still taken away
    before any is given however the lanes interleave. Inside the second phase a lane may have
    to wait for rooms that other lanes create (rooms_needed): a room for its parent space, a
    listing for its child.
    """
    taking: dict[RoomKey, list[Effect]] = {}
    giving: dict[RoomKey, list[Effect]] = {}
    for effect in effects:
        lanes = taking if takes_access_away(effect) else giving
        lanes.setdefault(room_of(effect), []).append(effect)
    return (
        Phase(tuple(tuple(lane) for lane in taking.values())),
        Phase(tuple(tuple(lane) for lane in giving.values())),
    )
