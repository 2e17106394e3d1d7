"""Reminders before a deadline (оповещения): when each person who has not answered is reminded,
once per offset, and never twice for one window."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

DEFAULT_OFFSETS: tuple[int, ...] = (24 * 3600, 3600)
_DURATION = re.compile(r"^(\d{1,6})\s*([smhd]?)$")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_offsets(raw: object, key: str = "reminders.before") -> tuple[int, ...]:
    """`reminders.before`: durations like "24h", "90m", "2d" or seconds; [] turns reminders off.
    ValueError naming the key when one is not a duration."""
    if raw is None:
        return DEFAULT_OFFSETS
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        raise ValueError(f"{key}: a list of durations such as 24h or 1h")
    offsets = []
    for i, item in enumerate(raw):
        match = _DURATION.fullmatch(str(item).strip().lower())
        if match is None or int(match.group(1)) == 0:
            raise ValueError(f"{key}[{i}]: {item!r} is not a duration such as 24h, 90m or 2d")
        offsets.append(int(match.group(1)) * _UNIT[match.group(2)])
    return tuple(sorted(set(offsets), reverse=True))


def window(deadline: datetime, now: datetime, offsets: Sequence[int]) -> int | None:
    """The reminder window `now` is in: the smallest offset whose time has come before the
    deadline (a vote opened an hour before its deadline gets one reminder, not two)."""
    if now >= deadline:
        return None
    reached = [o for o in offsets if now >= deadline - timedelta(seconds=o)]
    return min(reached) if reached else None


def due(
    deadline: datetime,
    now: datetime,
    offsets: Sequence[int],
    waiting: Iterable[str],
    sent: set[tuple[str, int]],
) -> list[tuple[str, int]]:
    """(person, offset) of each reminder to send now: everyone still waiting, once per window."""
    offset = window(deadline, now, offsets)
    if offset is None:
        return []
    return [(person, offset) for person in waiting if (person, offset) not in sent]


def next_time(deadline: datetime, now: datetime, offsets: Sequence[int]) -> datetime | None:
    """When the next reminder window of this deadline opens, None if no other will."""
    coming = [deadline - timedelta(seconds=o) for o in offsets]
    later = [at for at in coming if now < at < deadline]
    return min(later) if later else None


def next_look(
    deadline: datetime, now: datetime, offsets: Sequence[int], *, at_deadline: bool
) -> datetime | None:
    """When an item's reminders are next to be looked at: the next window's opening, or its
    deadline when that is to be reported (an approval's); None when nothing more will come."""
    at = next_time(deadline, now, offsets)
    if at_deadline and now < deadline:
        at = deadline if at is None else min(at, deadline)
    return at
