"""Reminders before a deadline: the configured offsets, the window a moment is in, who is due a
reminder now, and when the next window opens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.domain.reminders import (
    DEFAULT_OFFSETS,
    due,
    next_look,
    next_time,
    parse_offsets,
    window,
)

MSK = timezone(timedelta(hours=3))
DEADLINE = datetime(2026, 4, 15, 18, 0, tzinfo=MSK)
DAY, HOUR, MINUTE = 86_400, 3_600, 60
OFFSETS = (DAY, HOUR)
PEOPLE = ("@petrov:corp.example", "@kononov:corp.example")


def before(seconds: float) -> datetime:
    return DEADLINE - timedelta(seconds=seconds)


# --- the configuration -------------------------------------------------------------------


def test_by_default_a_day_and_an_hour_before() -> None:
    assert parse_offsets(None) == DEFAULT_OFFSETS == (DAY, HOUR)


def test_an_empty_list_turns_reminders_off() -> None:
    assert parse_offsets([]) == ()
    assert parse_offsets(()) == ()


@pytest.mark.parametrize(
    ("raw", "offsets"),
    [
        (["24h", "1h"], (DAY, HOUR)),
        (["1h", "24h"], (DAY, HOUR)),
        (["2d"], (2 * DAY,)),
        (["90m"], (90 * MINUTE,)),
        (["45s"], (45,)),
        (["3600"], (HOUR,)),
        ([3600], (HOUR,)),
        ([" 24H ", "1 h", "15M", "1D"], (DAY, HOUR, 15 * MINUTE)),
        (["999999d"], (999_999 * DAY,)),
        (("30m",), (30 * MINUTE,)),
    ],
)
def test_durations_are_read_in_seconds(raw: object, offsets: tuple[int, ...]) -> None:
    assert parse_offsets(raw) == offsets


def test_offsets_come_largest_first_without_repeats() -> None:
    assert parse_offsets(["1h", "60m", "3600", "1d", "24h", "5m"]) == (DAY, HOUR, 5 * MINUTE)


@pytest.mark.parametrize(
    ("raw", "index"),
    [
        (["0h"], 0),
        (["0"], 0),
        (["24h", "-1h"], 1),
        (["1.5h"], 0),
        (["1w"], 0),
        (["h"], 0),
        ([""], 0),
        (["24h1h"], 0),
        (["1hh"], 0),
        (["1 000s"], 0),
        (["1000000s"], 0),  # more than six digits
        (["сутки"], 0),
        (["1ч"], 0),
        (["24h", "1h", True], 2),
        (["24h", None], 1),
        ([1.5], 0),
        ([["1h"]], 0),
        ([{"h": 1}], 0),
        (["1h\x00"], 0),
        (["1" * 10_000], 0),
    ],
)
def test_a_bad_duration_is_refused_naming_its_place(raw: list[object], index: int) -> None:
    with pytest.raises(ValueError, match=rf"^reminders\.before\[{index}\]: .* is not a duration"):
        parse_offsets(raw)


@pytest.mark.parametrize("raw", ["24h", "", 3600, {"24h": 1}, {"a"}, True])
def test_anything_but_a_list_is_refused(raw: object) -> None:
    with pytest.raises(ValueError, match=r"^reminders\.before: a list of durations"):
        parse_offsets(raw)


def test_the_errors_name_the_key_they_are_given() -> None:
    with pytest.raises(ValueError, match=r"^votes\.remind\[0\]: "):
        parse_offsets(["soon"], "votes.remind")
    with pytest.raises(ValueError, match=r"^votes\.remind: "):
        parse_offsets("1h", "votes.remind")


# --- the window a moment is in -----------------------------------------------------------


def test_before_the_first_offset_there_is_no_window() -> None:
    assert window(DEADLINE, before(3 * DAY), OFFSETS) is None
    assert window(DEADLINE, before(DAY + 1), OFFSETS) is None


def test_the_window_is_the_smallest_offset_reached() -> None:
    assert window(DEADLINE, before(DAY), OFFSETS) == DAY  # its moment included
    assert window(DEADLINE, before(DAY - 1), OFFSETS) == DAY
    assert window(DEADLINE, before(HOUR + 1), OFFSETS) == DAY
    assert window(DEADLINE, before(HOUR), OFFSETS) == HOUR
    assert window(DEADLINE, before(1), OFFSETS) == HOUR


def test_at_and_after_the_deadline_there_is_no_window() -> None:
    assert window(DEADLINE, DEADLINE, OFFSETS) is None
    assert window(DEADLINE, DEADLINE + timedelta(microseconds=1), OFFSETS) is None
    assert window(DEADLINE, DEADLINE + timedelta(days=30), OFFSETS) is None


def test_without_offsets_there_is_never_a_window() -> None:
    for seconds in (3 * DAY, DAY, HOUR, 1):
        assert window(DEADLINE, before(seconds), ()) is None
        assert due(DEADLINE, before(seconds), (), PEOPLE, set()) == []
        assert next_time(DEADLINE, before(seconds), ()) is None


def test_time_zones_do_not_matter() -> None:
    in_utc = before(HOUR / 2).astimezone(UTC)
    assert window(DEADLINE, in_utc, OFFSETS) == HOUR
    assert window(DEADLINE.astimezone(UTC), before(HOUR / 2), OFFSETS) == HOUR


def test_offsets_need_not_be_sorted() -> None:
    assert window(DEADLINE, before(HOUR / 2), (HOUR, DAY)) == HOUR
    assert next_time(DEADLINE, before(2 * DAY), (HOUR, DAY)) == before(DAY)


# --- who is due a reminder now -------------------------------------------------------------


def test_everyone_still_waiting_is_reminded_once_a_day_before() -> None:
    now = before(DAY - MINUTE)
    assert due(DEADLINE, now, OFFSETS, PEOPLE, set()) == [(PEOPLE[0], DAY), (PEOPLE[1], DAY)]
    sent = {(PEOPLE[0], DAY)}
    assert due(DEADLINE, now, OFFSETS, PEOPLE, sent) == [(PEOPLE[1], DAY)]
    sent.add((PEOPLE[1], DAY))
    assert due(DEADLINE, before(2 * HOUR), OFFSETS, PEOPLE, sent) == []


def test_an_hour_before_comes_a_second_reminder() -> None:
    sent = {(person, DAY) for person in PEOPLE}
    assert due(DEADLINE, before(HOUR), OFFSETS, PEOPLE, sent) == [
        (PEOPLE[0], HOUR),
        (PEOPLE[1], HOUR),
    ]


def test_who_has_answered_is_not_reminded() -> None:
    assert due(DEADLINE, before(HOUR), OFFSETS, [PEOPLE[1]], set()) == [(PEOPLE[1], HOUR)]
    assert due(DEADLINE, before(HOUR), OFFSETS, [], set()) == []


def test_nobody_is_reminded_at_or_after_the_deadline() -> None:
    assert due(DEADLINE, DEADLINE, OFFSETS, PEOPLE, set()) == []
    assert due(DEADLINE, DEADLINE + timedelta(hours=5), OFFSETS, PEOPLE, set()) == []


def test_nobody_is_reminded_before_the_first_window() -> None:
    assert due(DEADLINE, before(2 * DAY), OFFSETS, PEOPLE, set()) == []


def test_a_vote_opened_an_hour_before_gets_one_reminder_not_two() -> None:
    # Opened 30 minutes before its deadline: the day's window has passed unseen, only the
    # hour's is open. One reminder goes out, and no other ever will.
    opened = before(30 * MINUTE)
    assert due(DEADLINE, opened, OFFSETS, PEOPLE, set()) == [(p, HOUR) for p in PEOPLE]
    assert next_time(DEADLINE, opened, OFFSETS) is None


def test_a_vote_opened_two_hours_before_is_reminded_now_and_at_the_hour() -> None:
    opened = before(2 * HOUR)
    assert due(DEADLINE, opened, OFFSETS, PEOPLE[:1], set()) == [(PEOPLE[0], DAY)]
    assert next_time(DEADLINE, opened, OFFSETS) == before(HOUR)


def test_a_reminder_is_never_sent_twice_for_one_window() -> None:
    sent: set[tuple[str, int]] = set()
    for minutes in range(0, 120, 5):
        for reminder in due(DEADLINE, before(2 * HOUR - minutes * MINUTE), OFFSETS, PEOPLE, sent):
            assert reminder not in sent
            sent.add(reminder)
    assert sent == {(p, o) for p in PEOPLE for o in OFFSETS}


def test_the_order_of_the_waiting_is_kept() -> None:
    waiting = [f"@m{i}:corp.example" for i in range(20)]
    assert [p for p, _ in due(DEADLINE, before(HOUR), OFFSETS, waiting, set())] == waiting


# --- when to look again ----------------------------------------------------------------------


def test_the_next_window_is_the_nearest_one_to_come() -> None:
    assert next_time(DEADLINE, before(3 * DAY), OFFSETS) == before(DAY)
    assert next_time(DEADLINE, before(DAY), OFFSETS) == before(HOUR)
    assert next_time(DEADLINE, before(5 * HOUR), OFFSETS) == before(HOUR)
    assert next_time(DEADLINE, before(HOUR), OFFSETS) is None
    assert next_time(DEADLINE, DEADLINE, OFFSETS) is None
    assert next_time(DEADLINE, DEADLINE + timedelta(days=1), OFFSETS) is None


def test_an_offset_longer_than_the_time_left_has_no_next_time() -> None:
    assert next_time(DEADLINE, before(HOUR / 2), (30 * DAY, 7 * DAY)) is None
    assert window(DEADLINE, before(HOUR / 2), (30 * DAY, 7 * DAY)) == 7 * DAY


# --- the rules, for any schedule ------------------------------------------------------------


offset_lists = st.lists(
    st.integers(min_value=1, max_value=10 * DAY), min_size=0, max_size=5, unique=True
)


@given(
    offset_lists,
    st.integers(min_value=-DAY, max_value=12 * DAY),
    st.lists(st.integers(min_value=1, max_value=DAY), max_size=20),
)
def test_each_window_reminds_once_and_never_after_the_deadline(
    offsets: list[int], created_before: int, steps: list[int]
) -> None:
    """The worker looks at the creation, at each `next_time`, and at arbitrary other moments:
    nobody gets two reminders for one offset, none at or after the deadline, and the windows
    reminded are the one open at the creation and every one opening after it."""
    created = before(created_before)
    now = created
    sent: set[tuple[str, int]] = set()
    moments = iter(steps)
    while now < DEADLINE + timedelta(days=1):
        for reminder in due(DEADLINE, now, offsets, PEOPLE, sent):
            assert reminder not in sent
            assert now < DEADLINE
            assert now >= DEADLINE - timedelta(seconds=reminder[1])
            sent.add(reminder)
        following = next_time(DEADLINE, now, offsets)
        step = next(moments, None)
        if following is not None:
            assert now < following < DEADLINE
            assert window(DEADLINE, following, offsets) != window(DEADLINE, now, offsets)
        if step is not None and (following is None or now + timedelta(seconds=step) < following):
            now += timedelta(seconds=step)
        elif following is not None:
            now = following
        else:
            break
    opening_later = {o for o in offsets if before(o) > created}
    open_at_creation = window(DEADLINE, created, offsets)
    expected = opening_later | ({open_at_creation} if open_at_creation is not None else set())
    if created >= DEADLINE:
        expected = set()
    assert sent == {(p, o) for p in PEOPLE for o in expected}


# --- when an item is looked at next -----------------------------------------------------------


def test_a_vote_is_looked_at_when_each_window_opens_and_then_never() -> None:
    assert next_look(DEADLINE, before(2 * DAY), OFFSETS, at_deadline=False) == before(DAY)
    assert next_look(DEADLINE, before(DAY), OFFSETS, at_deadline=False) == before(HOUR)
    assert next_look(DEADLINE, before(HOUR), OFFSETS, at_deadline=False) is None


def test_an_approval_is_looked_at_its_deadline_too_to_report_it_missed() -> None:
    assert next_look(DEADLINE, before(DAY), OFFSETS, at_deadline=True) == before(HOUR)
    assert next_look(DEADLINE, before(HOUR), OFFSETS, at_deadline=True) == DEADLINE
    assert next_look(DEADLINE, before(HOUR), (), at_deadline=True) == DEADLINE
    assert next_look(DEADLINE, DEADLINE, OFFSETS, at_deadline=True) is None
