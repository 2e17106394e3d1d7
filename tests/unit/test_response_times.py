"""Response times in supplier chats: what starts and ends a wait, the nearest-rank quantiles,
the figures per chat, procurement and manager over a period, and the JSON, CSV and query."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.domain.errors import InvalidInput
from bridge.domain.ids import ProcurementId, RoomId, SupplierId, UserId
from bridge.domain.locale import Locale
from bridge.domain.response_page import format_duration
from bridge.domain.response_times import (
    CSV_COLUMNS,
    DEFAULT_UNANSWERED_AFTER_S,
    MEDIAN,
    P90,
    ChatMessage,
    Figures,
    ReportFormat,
    SupplierChat,
    Wait,
    as_csv,
    as_json,
    chat_message,
    parse_report_query,
    quantile,
    report,
    rfc3339,
    seconds,
    supplier_chat,
    waits,
)
from bridge.domain.snapshot import parse_snapshot

MIN = 60_000
HOUR = 60 * MIN
DAY = 24 * HOUR
T0 = 1_740_787_200_000  # 2025-03-01T00:00:00Z

MANAGER = UserId("@manager:example.org")
OTHER_MANAGER = UserId("@other-manager:example.org")
TEAM = UserId("@team:example.org")
BOT = UserId("@procbot:example.org")
ALICE = UserId("@alice:torgprofi.example")
BOB = UserId("@bob:torgprofi.example")
CAROL = UserId("@carol:stalmet.example")
STRANGER = UserId("@left-long-ago:example.org")


def chat(
    room: str = "!torgprofi:hs",
    *,
    procurement: str = "P-1",
    number: str = "26908",
    supplier: str = "torgprofi",
    name: str = "ООО «ТоргПрофи»",
    members: Sequence[UserId] = (ALICE, BOB),
    manager: UserId = MANAGER,
) -> SupplierChat:
    return SupplierChat(
        room_id=RoomId(room),
        procurement_id=ProcurementId(procurement),
        procurement_number=number,
        procurement_title="Поставка арматуры",
        supplier_id=SupplierId(supplier),
        supplier_name=name,
        manager=manager,
        supplier_side=frozenset(members),
        organisation_side=frozenset((manager, TEAM)),
    )


TORGPROFI = chat()
STALMET = chat("!stalmet:hs", supplier="stalmet", name="АО «Сталь»", members=(CAROL,))


def timeline(room: SupplierChat, *said: tuple[int, UserId], start: int = T0) -> list[ChatMessage]:
    """Messages at `start` + the given milliseconds, stored in the order given."""
    return [
        ChatMessage(room.room_id, sender, start + at, seq)
        for seq, (at, sender) in enumerate(said, 1)
    ]


def spans(found: Sequence[Wait]) -> list[tuple[int, int | None]]:
    return [(w.since - T0, None if w.answered_at is None else w.answered_at - T0) for w in found]


# What starts and ends a wait ------------------------------------------------------------------


def test_a_question_and_its_answer_are_one_wait() -> None:
    found = waits(timeline(TORGPROFI, (0, ALICE), (10 * MIN, MANAGER)), TORGPROFI)
    assert spans(found) == [(0, 10 * MIN)]
    assert found[0].response_ms == 10 * MIN


def test_consecutive_supplier_messages_are_one_wait_from_the_first() -> None:
    said = timeline(TORGPROFI, (0, ALICE), (5 * MIN, BOB), (7 * MIN, ALICE), (30 * MIN, MANAGER))
    assert spans(waits(said, TORGPROFI)) == [(0, 30 * MIN)]


def test_only_the_first_answer_ends_a_wait() -> None:
    said = timeline(
        TORGPROFI,
        (0, ALICE),
        (10 * MIN, MANAGER),
        (11 * MIN, MANAGER),
        (20 * MIN, BOB),
        (50 * MIN, MANAGER),
    )
    assert spans(waits(said, TORGPROFI)) == [(0, 10 * MIN), (20 * MIN, 50 * MIN)]


def test_what_the_manager_says_first_is_no_answer() -> None:
    said = timeline(TORGPROFI, (0, MANAGER), (10 * MIN, ALICE), (25 * MIN, MANAGER))
    assert spans(waits(said, TORGPROFI)) == [(10 * MIN, 25 * MIN)]


def test_a_wait_nobody_answered_stays_open() -> None:
    said = timeline(TORGPROFI, (0, ALICE), (3 * MIN, BOB))
    assert spans(waits(said, TORGPROFI)) == [(0, None)]
    assert waits(said, TORGPROFI)[0].response_ms is None


def test_anyone_of_the_organisation_answers_for_it() -> None:
    said = timeline(TORGPROFI, (0, ALICE), (4 * MIN, TEAM), (9 * MIN, MANAGER))
    assert spans(waits(said, TORGPROFI)) == [(0, 4 * MIN)]


def test_the_bot_and_people_neither_side_names_are_not_heard() -> None:
    said = timeline(
        TORGPROFI,
        (0, BOT),
        (1 * MIN, ALICE),
        (2 * MIN, BOT),
        (3 * MIN, STRANGER),
        (4 * MIN, CAROL),  # another supplier's member, not of this chat
        (40 * MIN, MANAGER),
    )
    assert spans(waits(said, TORGPROFI)) == [(1 * MIN, 40 * MIN)]


def test_messages_are_taken_in_time_order_whatever_order_they_come_in() -> None:
    said = timeline(TORGPROFI, (30 * MIN, MANAGER), (0, ALICE), (60 * MIN, BOB))
    assert spans(waits(said, TORGPROFI)) == [(0, 30 * MIN), (60 * MIN, None)]


def test_messages_of_the_same_millisecond_go_in_their_order_of_arrival() -> None:
    answered = timeline(TORGPROFI, (0, ALICE), (0, MANAGER))
    assert spans(waits(answered, TORGPROFI)) == [(0, 0)]
    answer_first = timeline(TORGPROFI, (0, MANAGER), (0, ALICE))
    assert spans(waits(answer_first, TORGPROFI)) == [(0, None)]


def test_another_room_s_messages_are_not_this_chat_s() -> None:
    said = timeline(TORGPROFI, (0, ALICE)) + timeline(STALMET, (5 * MIN, MANAGER))
    assert spans(waits(said, TORGPROFI)) == [(0, None)]


# Which events are messages ---------------------------------------------------------------------


def event(content: dict[str, Any], sender: str = ALICE, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": "$e",
        "room_id": "!torgprofi:hs",
        "sender": sender,
        "type": "m.room.message",
        "origin_server_ts": T0,
        "content": content,
        **fields,
    }


TEXT = {"msgtype": "m.text", "body": "Когда поставка?"}


def test_a_text_file_reply_or_thread_message_is_a_message() -> None:
    assert chat_message(7, event(TEXT)) == ChatMessage(RoomId("!torgprofi:hs"), ALICE, T0, 7)
    file = {"msgtype": "m.file", "body": "КП.pdf", "url": "mxc://hs/x"}
    reply = {**TEXT, "m.relates_to": {"m.in_reply_to": {"event_id": "$q"}}}
    thread = {**TEXT, "m.relates_to": {"rel_type": "m.thread", "event_id": "$root"}}
    for content in (file, reply, thread):
        assert chat_message(1, event(content)) is not None


def test_an_edit_is_not_a_new_message() -> None:
    edit = {
        "msgtype": "m.text",
        "body": "* Когда отгрузка?",
        "m.new_content": {"msgtype": "m.text", "body": "Когда отгрузка?"},
        "m.relates_to": {"rel_type": "m.replace", "event_id": "$original"},
    }
    assert chat_message(1, event(edit)) is None


def test_notices_are_not_messages_whoever_sends_them() -> None:
    notice = {"msgtype": "m.notice", "body": "Системный помощник: чат создан"}
    assert chat_message(1, event(notice, sender=BOT)) is None
    assert chat_message(1, event(notice)) is None


def test_other_events_are_not_messages() -> None:
    assert chat_message(1, event({"key": "👍"}, type="m.reaction")) is None
    assert chat_message(1, event({"membership": "join"}, type="m.room.member")) is None
    assert chat_message(1, event(TEXT, origin_server_ts=None)) is None
    assert chat_message(1, event(TEXT, origin_server_ts=True)) is None


def test_a_message_that_arrived_redacted_is_still_a_message() -> None:
    assert chat_message(1, event({})) is not None


def test_a_chat_takes_its_sides_from_the_snapshot_and_never_the_bot() -> None:
    snapshot = parse_snapshot(
        {
            "id": "P-1",
            "version": 1,
            "number": "26908",
            "title": "Поставка арматуры",
            "stage": "offers",
            "manager": MANAGER,
            "team": [TEAM, BOT],
            "suppliers": [
                {"id": "torgprofi", "name": "ООО «ТоргПрофи»", "members": [ALICE, BOB]},
                {"id": "stalmet", "name": "АО «Сталь»", "members": [CAROL]},
            ],
        }
    )
    found = supplier_chat(RoomId("!t:hs"), SupplierId("torgprofi"), snapshot, BOT)
    assert found.supplier_side == {ALICE, BOB}
    assert found.organisation_side == {MANAGER, TEAM}
    assert (found.supplier_name, found.manager, found.procurement_number) == (
        "ООО «ТоргПрофи»",
        MANAGER,
        "26908",
    )
    gone = supplier_chat(RoomId("!g:hs"), SupplierId("removed"), snapshot, BOT)
    assert (gone.supplier_name, gone.supplier_side) == ("removed", frozenset())


# Quantiles -------------------------------------------------------------------------------------


def test_quantiles_are_by_nearest_rank() -> None:
    ten = list(range(10, 0, -1))
    assert quantile(ten, MEDIAN) == 5
    assert quantile(ten, P90) == 9
    assert quantile([20, 40], MEDIAN) == 20  # the lower middle, not 30
    assert quantile([20, 40], P90) == 40
    assert quantile([7], P90) == 7
    assert quantile([], MEDIAN) is None
    with pytest.raises(ValueError, match="fraction"):
        quantile([1], Fraction(0))


@given(
    st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=60),
    st.fractions(min_value=Fraction(1, 1000), max_value=1),
)
def test_a_quantile_has_at_least_its_share_at_or_below_it(values: list[int], p: Fraction) -> None:
    q = quantile(values, p)
    assert q in values
    needed = math.ceil(p * len(values))
    assert sum(1 for v in values if v <= q) >= needed
    assert sum(1 for v in values if v < q) < needed


# The report ------------------------------------------------------------------------------------


def answered_after(room: SupplierChat, minutes: Sequence[int], start: int) -> list[ChatMessage]:
    """One wait per entry, each answered after that many minutes, an hour apart."""
    said: list[tuple[int, UserId]] = []
    member = next(iter(sorted(room.supplier_side)))
    for i, wait in enumerate(minutes):
        said += [(i * 2 * DAY, member), (i * 2 * DAY + wait * MIN, room.manager)]
    return timeline(room, *said, start=start)


def test_figures_per_chat_procurement_and_manager() -> None:
    other = chat(
        "!other:hs",
        procurement="P-2",
        number="27001",
        supplier="beton",
        members=(CAROL,),
        manager=OTHER_MANAGER,
    )
    messages = (
        answered_after(TORGPROFI, range(1, 11), T0)
        + answered_after(STALMET, [20, 40], T0)
        + answered_after(other, [3], T0)
    )
    made = report(
        [TORGPROFI, STALMET, other],
        messages,
        from_ms=T0,
        to_ms=T0 + 30 * DAY,
        now_ms=T0 + 40 * DAY,
    )
    rooms = {r.chat.room_id: r.figures for r in made.rooms}
    assert rooms["!torgprofi:hs"] == Figures(10, 5 * MIN, 9 * MIN, 0, 0)
    assert rooms["!stalmet:hs"] == Figures(2, 20 * MIN, 40 * MIN, 0, 0)
    # 1..10, 20 and 40 minutes: the 6th and the 11th of twelve.
    procurements = {p.procurement_id: p.figures for p in made.procurements}
    assert procurements["P-1"] == Figures(12, 6 * MIN, 20 * MIN, 0, 0)
    assert procurements["P-2"] == Figures(1, 3 * MIN, 3 * MIN, 0, 0)
    assert [(m.manager, m.figures.answered) for m in made.managers] == [
        (MANAGER, 12),
        (OTHER_MANAGER, 1),
    ]
    assert made.total == Figures(13, 6 * MIN, 20 * MIN, 0, 0)
    assert [r.chat.supplier_name for r in made.rooms] == [
        "АО «Сталь»",
        "ООО «ТоргПрофи»",
        "ООО «ТоргПрофи»",
    ]


def test_a_wait_belongs_to_the_period_it_began_in() -> None:
    from_ms, to_ms = T0 + DAY, T0 + 2 * DAY
    said = timeline(
        TORGPROFI,
        (DAY - 2 * HOUR, ALICE),  # began before the period: not counted …
        (DAY + HOUR, BOB),  # … nor made a new wait by a message inside it
        (DAY + 2 * HOUR, MANAGER),
        (2 * DAY - HOUR, ALICE),  # began inside, answered the next morning: counted in full
        (2 * DAY + 9 * HOUR, MANAGER),
        (2 * DAY + 10 * HOUR, BOB),  # after the period
    )
    made = report([TORGPROFI], said, from_ms=from_ms, to_ms=to_ms, now_ms=T0 + 5 * DAY)
    assert made.total == Figures(1, 10 * HOUR, 10 * HOUR, 0, 0)


def test_what_came_after_the_report_s_time_is_not_seen() -> None:
    said = timeline(TORGPROFI, (0, ALICE), (5 * HOUR, MANAGER))
    made = report([TORGPROFI], said, from_ms=T0, to_ms=T0 + DAY, now_ms=T0 + 3 * HOUR)
    assert made.total == Figures(0, None, None, 0, 1)


def test_unanswered_waits_older_than_the_threshold_are_listed() -> None:
    said = timeline(TORGPROFI, (0, ALICE)) + timeline(STALMET, (3 * HOUR, CAROL))
    now = T0 + 6 * HOUR
    made = report(
        [TORGPROFI, STALMET],
        said,
        from_ms=T0,
        to_ms=T0 + DAY,
        now_ms=now,
        unanswered_after_s=DEFAULT_UNANSWERED_AFTER_S,
    )
    assert made.total == Figures(0, None, None, 1, 1)
    [late] = made.unanswered
    assert (late.chat.room_id, late.since, late.age_ms) == ("!torgprofi:hs", T0, 6 * HOUR)
    exactly = report(
        [STALMET], said, from_ms=T0, to_ms=T0 + DAY, now_ms=now, unanswered_after_s=3 * 3600
    )
    assert [u.age_ms for u in exactly.unanswered] == [3 * HOUR]


def test_unanswered_waits_come_oldest_first() -> None:
    said = timeline(STALMET, (0, CAROL)) + timeline(TORGPROFI, (HOUR, ALICE))
    made = report([TORGPROFI, STALMET], said, from_ms=T0, to_ms=T0 + DAY, now_ms=T0 + DAY)
    assert [u.chat.room_id for u in made.unanswered] == ["!stalmet:hs", "!torgprofi:hs"]


def test_a_period_without_waits_makes_an_empty_report() -> None:
    said = timeline(TORGPROFI, (0, MANAGER), (HOUR, BOT))
    made = report([TORGPROFI], said, from_ms=T0, to_ms=T0 + DAY, now_ms=T0 + DAY)
    assert made.total == Figures(0, None, None, 0, 0)
    assert (made.rooms, made.procurements, made.managers, made.unanswered) == ((), (), (), ())


def test_a_period_must_end_after_it_begins() -> None:
    with pytest.raises(ValueError, match="period"):
        report([], [], from_ms=T0, to_ms=T0, now_ms=T0)


# Whatever the timeline: the oracle and the partition of periods ---------------------------------

SENDERS = (ALICE, BOB, MANAGER, TEAM, BOT, STRANGER)
timelines = st.lists(
    st.tuples(st.integers(min_value=0, max_value=3 * HOUR), st.sampled_from(SENDERS)),
    max_size=40,
).map(lambda said: timeline(TORGPROFI, *said))


def oracle(messages: list[ChatMessage]) -> list[tuple[int, int | None]]:
    """The definition read literally: a supplier message whose previous heard message is not
    the supplier's begins a wait; the first organisation message after it ends it."""
    heard = [
        (m.ts, TORGPROFI.side_of(m.sender))
        for m in sorted(messages, key=lambda m: (m.ts, m.seq))
        if TORGPROFI.side_of(m.sender) is not None
    ]
    found = []
    for i, (ts, side) in enumerate(heard):
        if side is not None and side.value == "supplier" and (i == 0 or heard[i - 1][1] != side):
            answer = next(
                (t for t, s in heard[i + 1 :] if s is not None and s.value == "organisation"),
                None,
            )
            found.append((ts, answer))
    return found


@given(timelines)
def test_waits_follow_the_definition(messages: list[ChatMessage]) -> None:
    found = waits(messages, TORGPROFI)
    assert [(w.since, w.answered_at) for w in found] == oracle(messages)
    assert all(w.response_ms is None or w.response_ms >= 0 for w in found)
    assert all(w.answered_at is not None for w in found[:-1])


@given(timelines, st.integers(min_value=0, max_value=3 * HOUR))
def test_two_adjacent_periods_count_each_wait_once(messages: list[ChatMessage], cut: int) -> None:
    start, end, now = T0, T0 + 3 * HOUR + 1, T0 + 4 * HOUR

    def total(from_ms: int, to_ms: int) -> Figures:
        return report([TORGPROFI], messages, from_ms=from_ms, to_ms=to_ms, now_ms=now).total

    whole = total(start, end)
    if start < T0 + cut < end and cut > 0:
        first, second = total(start, T0 + cut), total(T0 + cut, end)
        assert first.answered + second.answered == whole.answered
        assert first.unanswered + second.unanswered == whole.unanswered
        assert first.waiting + second.waiting == whole.waiting
    assert whole.answered + whole.unanswered + whole.waiting == len(waits(messages, TORGPROFI))


# JSON and CSV ----------------------------------------------------------------------------------


def small_report() -> Any:
    said = timeline(
        TORGPROFI, (0, ALICE), (1500, MANAGER), (HOUR, BOB), (HOUR + 5 * MIN, MANAGER)
    ) + timeline(STALMET, (0, CAROL))
    return report(
        [TORGPROFI, STALMET], said, from_ms=T0, to_ms=T0 + DAY, now_ms=T0 + 5 * HOUR + 250
    )


def test_json_gives_seconds_and_rfc3339_times() -> None:
    made = as_json(small_report())
    assert made["from"] == "2025-03-01T00:00:00+00:00"
    assert made["generated_at"] == "2025-03-01T05:00:00.250+00:00"
    assert made["quantiles"] == "nearest-rank"
    assert made["total"] == {
        "answered": 2,
        "median_s": 1.5,
        "p90_s": 300,
        "unanswered": 1,
        "waiting": 0,
    }
    assert made["unanswered"] == [
        {
            "procurement": "P-1",
            "number": "26908",
            "supplier_id": "stalmet",
            "supplier": "АО «Сталь»",
            "room_id": "!stalmet:hs",
            "manager": MANAGER,
            "since": "2025-03-01T00:00:00+00:00",
            "age_s": 18000.25,
        }
    ]
    assert [r["supplier_id"] for r in made["rooms"]] == ["stalmet", "torgprofi"]


def test_csv_has_one_row_per_chat() -> None:
    rows = list(csv.reader(io.StringIO(as_csv(small_report()))))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert rows[1:] == [
        ["P-1", "26908", "stalmet", "АО «Сталь»", "!stalmet:hs", MANAGER, "0", "", "", "1", "0"],
        [
            "P-1",
            "26908",
            "torgprofi",
            "ООО «ТоргПрофи»",
            "!torgprofi:hs",
            MANAGER,
            "2",
            "1.5",
            "300",
            "0",
            "0",
        ],
    ]


def test_csv_keeps_a_name_from_being_run_as_a_formula() -> None:
    sly = chat(name='=HYPERLINK("http://evil.example","ТоргПрофи")')
    made = report([sly], timeline(sly, (0, ALICE)), from_ms=T0, to_ms=T0 + DAY, now_ms=T0 + DAY)
    [row] = list(csv.DictReader(io.StringIO(as_csv(made))))
    assert row["supplier"].startswith("'=")


def test_seconds_are_exact() -> None:
    assert seconds(1500) == 1.5
    assert str(seconds(60_000)) == "60"
    assert str(seconds(1)) == "0.001"
    assert seconds(None) is None
    assert rfc3339(T0 + 7) == "2025-03-01T00:00:00.007+00:00"


def test_durations_read_in_their_two_largest_units() -> None:
    assert format_duration(400, Locale.RU) == "0 с"
    assert format_duration(45_000, Locale.EN) == "45 s"
    assert format_duration(3 * MIN + 20_000, Locale.RU) == "3 мин 20 с"
    assert format_duration(2 * HOUR + 5 * MIN, Locale.RU) == "2 ч 05 мин"
    assert format_duration(4 * HOUR, Locale.EN) == "4 h"
    assert format_duration(3 * DAY + 4 * HOUR + 59 * MIN, Locale.RU) == "3 д 4 ч"


# The query -------------------------------------------------------------------------------------


def test_the_query_takes_dates_and_rfc3339_times() -> None:
    query = parse_report_query(
        {"from": "2025-03-01", "to": "2025-03-01T12:00:00+03:00", "format": "csv"},
        now_ms=T0 + 40 * DAY,
        default_locale=Locale.RU,
    )
    assert (query.from_ms, query.to_ms) == (T0, T0 + 9 * HOUR)
    assert query.format is ReportFormat.CSV
    assert query.unanswered_after_s == DEFAULT_UNANSWERED_AFTER_S
    assert query.locale is Locale.RU


def test_the_query_defaults_to_the_last_thirty_days_as_json() -> None:
    now = T0 + 40 * DAY
    query = parse_report_query({"lang": "en"}, now_ms=now, default_locale=Locale.RU)
    assert (query.from_ms, query.to_ms) == (now - 30 * DAY, now)
    assert (query.format, query.locale) == (ReportFormat.JSON, Locale.EN)


@pytest.mark.parametrize(
    ("params", "path"),
    [
        ({"from": "2025-03-02", "to": "2025-03-01"}, "from"),
        ({"from": "2025-03-01T00:00:00"}, "from"),  # no offset
        ({"to": "1 марта"}, "to"),
        ({"from": "2024-01-01", "to": "2025-03-01"}, "to"),  # more than a year
        ({"unanswered_after": "4h"}, "unanswered_after"),
        ({"unanswered_after": "0"}, "unanswered_after"),
        ({"unanswered_after": "٣"}, "unanswered_after"),
        ({"format": "xlsx"}, "format"),
        ({"lang": "de"}, "lang"),
        # Periods no date can name (the reports failed with a 500 writing them out).
        ({"to": "0001-01-02"}, "to"),  # its 30 days start before the year 1
        ({"from": "0001-01-01T00:00:00+01:00", "to": "0001-01-02"}, "from"),
        ({"from": "9999-12-31", "to": "9999-12-31T23:59:59-23:59"}, "to"),  # 10000 in UTC
    ],
)
def test_a_bad_query_names_its_parameter(params: dict[str, str], path: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_report_query(params, now_ms=T0 + 40 * DAY, default_locale=Locale.RU)
    assert (refused.value.path, refused.value.errcode) == (path, "M_INVALID_PARAM")
