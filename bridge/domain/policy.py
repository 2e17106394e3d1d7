"""The policy of every managed room (DESIGN §3): power levels, access rules, creation content."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from .ids import UserId

ROOM_VERSION = "12"

# Above the 100 that a server admin can grant with Synapse's make_room_admin (DESIGN §3).
LOCKED = 150

# `events` replaces the whole default map, so it lists every sensitive type, not only changes.
LOCKED_EVENT_TYPES: tuple[str, ...] = (
    "m.room.redaction",
    "m.room.power_levels",
    "m.room.tombstone",
    "m.room.name",
    "m.room.topic",
    "m.room.avatar",
    "m.room.canonical_alias",
    "m.room.history_visibility",
    "m.room.join_rules",
    "m.room.guest_access",
    "m.room.encryption",
    "m.room.server_acl",
    "m.room.pinned_events",
    "m.room.third_party_invite",
    "m.space.child",
    "m.space.parent",
    "im.vector.modular.widgets",
    "org.procurement.context",
)

CONTEXT_EVENT_TYPE = "org.procurement.context"

# What each access state event must say: (event type, content field, value).
ACCESS_RULES: tuple[tuple[str, str, str], ...] = (
    ("m.room.join_rules", "join_rule", "invite"),
    ("m.room.guest_access", "guest_access", "forbidden"),
    ("m.room.history_visibility", "history_visibility", "shared"),
)

# Versions from 12 on (and their prerelease) give the creator unlimited power (MSC4289).
_PRIVILEGED_CREATOR_PRERELEASES = frozenset({"org.matrix.hydra.11"})
_INTEGER = re.compile(r"-?[0-9]{1,20}")


def creator_is_privileged(room_version: str) -> bool:
    """Whether the room's creator is above all power levels and must not be in `users`."""
    if _INTEGER.fullmatch(room_version):
        return int(room_version) >= 12
    return room_version in _PRIVILEGED_CREATOR_PRERELEASES


def power_levels(*, bot: UserId, room_version: str, archived: bool) -> dict[str, object]:
    """The `m.room.power_levels` content: the bot holds all power, everyone else 0.

    In older room versions the bot is listed at LOCKED: at 100 it would lock itself out of
    everything set to 150. `notifications.room` is LOCKED too, so only the bot can @room.
    An archive also sets `events_default` to LOCKED: nobody posts, reacts or answers polls.
    """
    return {
        "users": {} if creator_is_privileged(room_version) else {bot: LOCKED},
        "users_default": 0,
        "events": dict.fromkeys(LOCKED_EVENT_TYPES, LOCKED),
        "events_default": LOCKED if archived else 0,
        "state_default": LOCKED,
        "invite": LOCKED,
        "kick": LOCKED,
        "ban": LOCKED,
        "redact": LOCKED,
        "notifications": {"room": LOCKED},
    }


def power_levels_drift(current: Mapping[str, object], expected: Mapping[str, object]) -> bool:
    """Whether any field that `expected` sets differs in `current`.

    A missing field counts as drift: restoring it is harmless, guessing a default is not.
    Levels given as numeric strings (allowed in old room versions) compare as numbers.
    """
    return any(_normal(current.get(key)) != _normal(value) for key, value in expected.items())


def is_read_only(current: Mapping[str, object]) -> bool:
    """Whether these power levels make the room an archive (nobody but the bot posts)."""
    level = _normal(current.get("events_default", 0))
    return isinstance(level, int) and level >= LOCKED


@dataclass(frozen=True, slots=True)
class PowerLevelsCheck:
    archived: bool  # the levels make the room read-only
    intact: bool  # the levels are exactly the policy for that archived state


def check_power_levels(
    current: Mapping[str, object], *, bot: UserId, room_version: str
) -> PowerLevelsCheck:
    """What the matrix layer reports as `ObservedRoom.archived` and `.power_levels_ok`."""
    archived = is_read_only(current)
    expected = power_levels(bot=bot, room_version=room_version, archived=archived)
    return PowerLevelsCheck(archived=archived, intact=not power_levels_drift(current, expected))


def initial_state() -> list[dict[str, object]]:
    """The access rules as `createRoom` `initial_state` entries.

    They override the preset (`private_chat` alone would let guests join).
    """
    return [
        {"type": event_type, "state_key": "", "content": {field: value}}
        for event_type, field, value in ACCESS_RULES
    ]


def access_drift(state: Mapping[str, Mapping[str, object] | None]) -> bool:
    """Whether join rules, guest access or history visibility differ from the policy.

    `state` maps each type of ACCESS_RULES to its current content (None when absent).
    """
    for event_type, field, value in ACCESS_RULES:
        content = state.get(event_type)
        if content is None or content.get(field) != value:
            return True
    return False


def creation_content(*, federate: bool, is_space: bool) -> dict[str, object]:
    """The `createRoom` `creation_content`; `m.federate` cannot change after creation."""
    content: dict[str, object] = {"m.federate": federate}
    if is_space:
        content["type"] = "m.space"
    return content


def _normal(value: object) -> object:
    if isinstance(value, bool):
        return ("bool", value)  # JSON true is not the level 1
    if isinstance(value, str) and _INTEGER.fullmatch(value):
        return int(value)
    if isinstance(value, Mapping):
        return {key: _normal(item) for key, item in value.items()}
    return value
