"""The room policy: power levels, access rules, creation content and drift."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.domain.ids import UserId
from bridge.domain.policy import (
    LOCKED,
    LOCKED_EVENT_TYPES,
    ROOM_VERSION,
    access_drift,
    check_power_levels,
    creation_content,
    creator_is_privileged,
    initial_state,
    is_read_only,
    power_levels,
    power_levels_drift,
)

BOT = UserId("@procbot:corp.example")


def test_the_default_room_version_is_12() -> None:
    assert ROOM_VERSION == "12"


@pytest.mark.parametrize(
    ("version", "privileged"),
    [
        ("12", True),
        ("13", True),
        ("org.matrix.hydra.11", True),
        ("11", False),
        ("10", False),
        ("1", False),
        ("org.matrix.msc3757.11", False),
        ("", False),
        ("١٢", False),  # Arabic-Indic digits are not a room version
    ],
)
def test_which_room_versions_give_the_creator_unlimited_power(
    version: str, privileged: bool
) -> None:
    assert creator_is_privileged(version) is privileged


def test_power_levels_in_room_version_12_leave_the_creator_out_of_users() -> None:
    levels = power_levels(bot=BOT, room_version="12", archived=False)
    assert levels == {
        "users": {},
        "users_default": 0,
        "events": dict.fromkeys(LOCKED_EVENT_TYPES, 150),
        "events_default": 0,
        "state_default": 150,
        "invite": 150,
        "kick": 150,
        "ban": 150,
        "redact": 150,
        "notifications": {"room": 150},
    }


def test_power_levels_in_older_versions_list_the_bot_above_the_locked_level() -> None:
    levels = power_levels(bot=BOT, room_version="10", archived=False)
    # At 100 the bot could no longer change what it locked at 150.
    assert levels["users"] == {BOT: LOCKED}
    assert LOCKED == 150


def test_an_archive_lets_nobody_post() -> None:
    assert power_levels(bot=BOT, room_version="12", archived=True)["events_default"] == 150


def test_every_sensitive_event_type_is_locked() -> None:
    events = power_levels(bot=BOT, room_version="12", archived=False)["events"]
    assert isinstance(events, dict)
    for event_type in [
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
    ]:
        assert events[event_type] == 150
    assert "m.room.message" not in events


def test_power_levels_are_fresh_values_each_time() -> None:
    first = power_levels(bot=BOT, room_version="12", archived=False)
    events = first["events"]
    assert isinstance(events, dict)
    events["m.room.redaction"] = 0
    assert power_levels(bot=BOT, room_version="12", archived=False) != first


def test_the_planned_levels_do_not_drift_from_themselves() -> None:
    for version in ("12", "10"):
        for archived in (False, True):
            levels = power_levels(bot=BOT, room_version=version, archived=archived)
            assert not power_levels_drift(copy.deepcopy(levels), levels)


@pytest.mark.parametrize(
    "change",
    [
        lambda pl: pl["users"].update({"@admin:corp.example": 100}),
        lambda pl: pl["events"].update({"m.room.redaction": 0}),
        lambda pl: pl["events"].pop("m.room.tombstone"),
        lambda pl: pl["events"].update({"m.room.message": 0}),
        lambda pl: pl.update(events_default=150),
        lambda pl: pl.update(redact=50),
        lambda pl: pl.pop("kick"),
        lambda pl: pl.update(notifications={}),
        lambda pl: pl.update(users_default=True),
        lambda pl: pl.update(users_default=False),
    ],
)
def test_any_change_to_a_field_we_set_is_drift(change: object) -> None:
    expected = power_levels(bot=BOT, room_version="12", archived=False)
    current = copy.deepcopy(expected)
    change(current)  # type: ignore[operator]
    assert power_levels_drift(current, expected)


def test_levels_written_as_strings_in_old_rooms_compare_as_numbers() -> None:
    expected = power_levels(bot=BOT, room_version="10", archived=False)
    current = copy.deepcopy(expected)
    current["users"] = {BOT: "150"}
    current["kick"] = "150"
    assert not power_levels_drift(current, expected)


def test_fields_we_do_not_set_are_not_drift() -> None:
    expected = power_levels(bot=BOT, room_version="12", archived=False)
    current = copy.deepcopy(expected) | {"historical": 100}
    assert not power_levels_drift(current, expected)


def test_check_power_levels_reports_the_archive_state_and_whether_it_is_intact() -> None:
    for archived in (False, True):
        levels = power_levels(bot=BOT, room_version="12", archived=archived)
        check = check_power_levels(levels, bot=BOT, room_version="12")
        assert (check.archived, check.intact) == (archived, True)
        assert is_read_only(levels) is archived

    tampered = power_levels(bot=BOT, room_version="12", archived=True)
    tampered["users"] = {"@admin:corp.example": 150}
    check = check_power_levels(tampered, bot=BOT, room_version="12")
    assert (check.archived, check.intact) == (True, False)

    # The same levels are not intact in an old room, where the bot must be listed.
    v12 = power_levels(bot=BOT, room_version="12", archived=False)
    assert not check_power_levels(v12, bot=BOT, room_version="10").intact


def test_read_only_needs_a_numeric_events_default_at_the_locked_level() -> None:
    assert not is_read_only({})
    assert not is_read_only({"events_default": 100})
    assert is_read_only({"events_default": "150"})
    assert not is_read_only({"events_default": "lots"})


def test_initial_state_sets_the_access_rules() -> None:
    assert initial_state() == [
        {"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "invite"}},
        {"type": "m.room.guest_access", "state_key": "", "content": {"guest_access": "forbidden"}},
        {
            "type": "m.room.history_visibility",
            "state_key": "",
            "content": {"history_visibility": "shared"},
        },
    ]


def _state() -> dict[str, dict[str, object] | None]:
    return {
        str(event["type"]): dict(event["content"])  # type: ignore[call-overload]
        for event in initial_state()
    }


def test_the_initial_access_state_does_not_drift() -> None:
    assert not access_drift(_state())


@pytest.mark.parametrize(
    ("event_type", "content"),
    [
        ("m.room.join_rules", {"join_rule": "public"}),
        ("m.room.join_rules", {"join_rule": "knock"}),
        ("m.room.join_rules", {"join_rule": "restricted", "allow": []}),
        ("m.room.guest_access", {"guest_access": "can_join"}),
        ("m.room.history_visibility", {"history_visibility": "world_readable"}),
        ("m.room.history_visibility", {}),
        ("m.room.join_rules", None),
    ],
)
def test_changed_or_missing_access_rules_are_drift(
    event_type: str, content: dict[str, object] | None
) -> None:
    state = _state()
    state[event_type] = content
    assert access_drift(state)


def test_creation_content() -> None:
    assert creation_content(federate=False, is_space=False) == {"m.federate": False}
    assert creation_content(federate=True, is_space=True) == {
        "m.federate": True,
        "type": "m.space",
    }


json_leaves = st.none() | st.booleans() | st.integers() | st.text("@:a15-", max_size=5)
power_level_contents = st.dictionaries(
    st.sampled_from(["users", "events", "events_default", "kick", "redact", "notifications"]),
    json_leaves | st.dictionaries(st.text("@:a.b", max_size=5), json_leaves, max_size=3),
)


@given(power_level_contents, st.sampled_from(["1", "10", "11", "12"]))
def test_checking_any_power_levels_content_never_fails(
    current: dict[str, object], version: str
) -> None:
    check = check_power_levels(current, bot=BOT, room_version=version)
    assert not check.intact  # nothing random is exactly the policy
