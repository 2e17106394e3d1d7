"""How long suppliers wait for the organisation's answer in their chats: the waits, their
figures per chat, procurement and manager, the query a report is asked for by, and the report
as JSON and CSV (as a page: response_page).

A supplier's wait starts at the first message of one of the supplier's members after the
organisation last spoke in the chat, and ends at the next message of the organisation's side:
the manager, or any other of the buyer's people the snapshot names. Consecutive messages of the
supplier are one wait. Edits, notices and people neither side names (the bot, someone who has
left the procurement) neither start nor end one. A wait belongs to the period its first message
is in; its answer counts whenever it came, up to the report's time."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import Enum
from fractions import Fraction
from typing import TypeVar

from .errors import InvalidInput
from .ids import ProcurementId, RoomId, SupplierId, UserId
from .locale import Locale
from .reader import parse_date, parse_datetime
from .snapshot import Snapshot

T = TypeVar("T")
G = TypeVar("G", bound=str)
E = TypeVar("E", bound=Enum)

DEFAULT_UNANSWERED_AFTER_S = 4 * 3600
DEFAULT_PERIOD_DAYS = 30
MAX_PERIOD_DAYS = 366
MEDIAN = Fraction(1, 2)
P90 = Fraction(9, 10)
QUANTILE_METHOD = "nearest-rank"
_DAY_MS = 86_400_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The moments a report can name in UTC: 0001-01-01 to 9999-12-31, what a date holds.
_FIRST_MS = (datetime.min.replace(tzinfo=UTC) - _EPOCH) // timedelta(milliseconds=1)
_LAST_MS = (datetime.max.replace(tzinfo=UTC) - _EPOCH) // timedelta(milliseconds=1)


# Input -----------------------------------------------------------------------------------------


class Side(Enum):
    SUPPLIER = "supplier"
    ORGANISATION = "organisation"


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """Something a person wrote in a supplier chat: what starts or ends a wait."""

    room_id: RoomId
    sender: UserId
    ts: int  # origin_server_ts, ms
    seq: int  # the order the bridge stored the events in: orders messages of the same ms


@dataclass(frozen=True, slots=True)
class SupplierChat:
    """A supplier's chat with the organisation, and who speaks for each side in it."""

    room_id: RoomId
    procurement_id: ProcurementId
    procurement_number: str
    procurement_title: str
    supplier_id: SupplierId
    supplier_name: str
    manager: UserId
    supplier_side: frozenset[UserId]
    organisation_side: frozenset[UserId]

    def side_of(self, user: UserId) -> Side | None:
        if user in self.supplier_side:
            return Side.SUPPLIER
        if user in self.organisation_side:
            return Side.ORGANISATION
        return None


def chat_message(seq: int, event: Mapping[str, object]) -> ChatMessage | None:
    """The stored event as a message that can start or end a wait; None for anything else:
    another event type, an edit (the original counted already) or a notice (by Matrix
    convention an automated message, the bot's cards and replies among them)."""
    room_id, sender, ts = event.get("room_id"), event.get("sender"), event.get("origin_server_ts")
    if event.get("type") != "m.room.message" or not isinstance(room_id, str):
        return None
    if not isinstance(sender, str) or not isinstance(ts, int) or isinstance(ts, bool):
        return None
    content = event.get("content")
    if isinstance(content, Mapping) and (
        _is_edit(content) or content.get("msgtype") == "m.notice"
    ):
        return None
    return ChatMessage(RoomId(room_id), UserId(sender), ts, seq)


def _is_edit(content: Mapping[object, object]) -> bool:
    relation = content.get("m.relates_to")
    return isinstance(relation, Mapping) and relation.get("rel_type") == "m.replace"


def supplier_chat(
    room_id: RoomId, supplier_id: SupplierId, snapshot: Snapshot, bot: UserId | None = None
) -> SupplierChat:
    """The chat of `supplier_id` in the procurement as its latest snapshot describes it: the
    supplier's members on one side, the buyer's people on the other, the bot on neither."""
    supplier = snapshot.supplier(supplier_id)
    not_people = frozenset((bot,)) if bot is not None else frozenset()
    return SupplierChat(
        room_id=room_id,
        procurement_id=snapshot.id,
        procurement_number=snapshot.display_number,
        procurement_title=snapshot.title,
        supplier_id=supplier_id,
        supplier_name=supplier.name if supplier is not None else supplier_id,
        manager=snapshot.manager,
        supplier_side=frozenset(supplier.members if supplier is not None else ()) - not_people,
        organisation_side=snapshot.internal_people - not_people,
    )


# Waits -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Wait:
    """From a supplier's first message after the organisation last spoke to the next answer."""

    room_id: RoomId
    since: int  # ms
    answered_at: int | None = None

    @property
    def response_ms(self) -> int | None:
        return None if self.answered_at is None else self.answered_at - self.since


def waits(messages: Iterable[ChatMessage], chat: SupplierChat) -> list[Wait]:
    """The chat's waits, oldest first; the last one is unanswered if nobody answered it.
    Messages are taken in the order of their time, then of their arrival."""
    timeline = sorted(
        (m for m in messages if m.room_id == chat.room_id), key=lambda m: (m.ts, m.seq)
    )
    found: list[Wait] = []
    since: int | None = None
    for message in timeline:
        side = chat.side_of(message.sender)
        if side is Side.SUPPLIER and since is None:
            since = message.ts
        elif side is Side.ORGANISATION and since is not None:
            found.append(Wait(chat.room_id, since, message.ts))
            since = None
    if since is not None:
        found.append(Wait(chat.room_id, since))
    return found


def quantile(values: Iterable[int], p: Fraction) -> int | None:
    """The nearest-rank quantile: the smallest value that at least the fraction `p` of the
    values are at or below (the lower middle for a median of an even count); None of none.
    Always one of the values, computed in exact arithmetic."""
    if not 0 < p <= 1:
        raise ValueError(f"a quantile's fraction is in (0, 1], got {p}")
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[math.ceil(p * len(ordered)) - 1]


# The report ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Figures:
    """Of the waits begun in the period: how many were answered and how fast, how many are
    still open for at least the report's threshold (`unanswered`) or not yet (`waiting`)."""

    answered: int
    median_ms: int | None
    p90_ms: int | None
    unanswered: int
    waiting: int


@dataclass(frozen=True, slots=True)
class RoomFigures:
    chat: SupplierChat
    figures: Figures


@dataclass(frozen=True, slots=True)
class ProcurementFigures:
    procurement_id: ProcurementId
    number: str
    title: str
    manager: UserId
    figures: Figures

    @property
    def label(self) -> str:
        return f"{self.number} · {self.title}"


@dataclass(frozen=True, slots=True)
class ManagerFigures:
    manager: UserId
    figures: Figures


@dataclass(frozen=True, slots=True)
class UnansweredWait:
    chat: SupplierChat
    since: int  # ms
    age_ms: int


@dataclass(frozen=True, slots=True)
class Report:
    from_ms: int
    to_ms: int
    now_ms: int  # when the report was made: what was answered by then counts
    unanswered_after_s: int
    total: Figures
    managers: tuple[ManagerFigures, ...]
    procurements: tuple[ProcurementFigures, ...]
    rooms: tuple[RoomFigures, ...]
    unanswered: tuple[UnansweredWait, ...]  # oldest first


def report(
    chats: Iterable[SupplierChat],
    messages: Iterable[ChatMessage],
    *,
    from_ms: int,
    to_ms: int,
    now_ms: int,
    unanswered_after_s: int = DEFAULT_UNANSWERED_AFTER_S,
) -> Report:
    """The figures of the waits begun in [from_ms, to_ms), as known at `now_ms` (messages
    later than that are not seen). Chats with no such wait are left out."""
    if to_ms <= from_ms:
        raise ValueError("the period must end after it begins")
    if unanswered_after_s < 0:
        raise ValueError("the threshold of an unanswered wait cannot be negative")
    counted = _waits_begun_in(chats, messages, from_ms, to_ms, now_ms)
    measure = _Measure(now_ms, unanswered_after_s * 1000)
    return Report(
        from_ms=from_ms,
        to_ms=to_ms,
        now_ms=now_ms,
        unanswered_after_s=unanswered_after_s,
        total=measure.figures(counted),
        managers=_by_manager(counted, measure),
        procurements=_by_procurement(counted, measure),
        rooms=_by_room(counted, measure),
        unanswered=_unanswered(counted, measure),
    )


_Counted = Sequence[tuple[SupplierChat, Wait]]


def _waits_begun_in(
    chats: Iterable[SupplierChat],
    messages: Iterable[ChatMessage],
    from_ms: int,
    to_ms: int,
    now_ms: int,
) -> _Counted:
    timelines = _grouped((m for m in messages if m.ts < now_ms), lambda m: m.room_id)
    return [
        (chat, wait)
        for chat in {chat.room_id: chat for chat in chats}.values()
        for wait in waits(timelines.get(chat.room_id, ()), chat)
        if from_ms <= wait.since < to_ms
    ]


@dataclass(frozen=True, slots=True)
class _Measure:
    now_ms: int
    threshold_ms: int

    def overdue(self, wait: Wait) -> bool:
        return wait.answered_at is None and self.now_ms - wait.since >= self.threshold_ms

    def figures(self, selected: _Counted) -> Figures:
        responses = [w.response_ms for _, w in selected if w.response_ms is not None]
        still_open = sum(1 for _, w in selected if w.answered_at is None)
        overdue = sum(1 for _, w in selected if self.overdue(w))
        return Figures(
            answered=len(responses),
            median_ms=quantile(responses, MEDIAN),
            p90_ms=quantile(responses, P90),
            unanswered=overdue,
            waiting=still_open - overdue,
        )


def _by_manager(counted: _Counted, measure: _Measure) -> tuple[ManagerFigures, ...]:
    groups = _grouped(counted, lambda c: c[0].manager)
    return tuple(
        ManagerFigures(manager, measure.figures(selected))
        for manager, selected in sorted(groups.items())
    )


def _by_procurement(counted: _Counted, measure: _Measure) -> tuple[ProcurementFigures, ...]:
    groups = _grouped(counted, lambda c: c[0].procurement_id).values()
    found = (_procurement_figures(s[0][0], measure.figures(s)) for s in groups)
    return tuple(sorted(found, key=lambda p: (p.number, p.procurement_id)))


def _by_room(counted: _Counted, measure: _Measure) -> tuple[RoomFigures, ...]:
    groups = _grouped(counted, lambda c: c[0].room_id).values()
    found = (RoomFigures(s[0][0], measure.figures(s)) for s in groups)
    return tuple(sorted(found, key=lambda r: _room_order(r.chat)))


def _unanswered(counted: _Counted, measure: _Measure) -> tuple[UnansweredWait, ...]:
    found = (
        UnansweredWait(chat, wait.since, measure.now_ms - wait.since)
        for chat, wait in counted
        if measure.overdue(wait)
    )
    return tuple(sorted(found, key=lambda u: (u.since, _room_order(u.chat))))


def _grouped(items: Iterable[T], key: Callable[[T], G]) -> dict[G, list[T]]:
    """The items by key, in the order each key first came."""
    groups: dict[G, list[T]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return groups


def _procurement_figures(chat: SupplierChat, figures: Figures) -> ProcurementFigures:
    return ProcurementFigures(
        chat.procurement_id, chat.procurement_number, chat.procurement_title, chat.manager, figures
    )


def _room_order(chat: SupplierChat) -> tuple[str, str, str, str]:
    return (chat.procurement_number, chat.procurement_id, chat.supplier_name, chat.room_id)


# The request for a report ----------------------------------------------------------------------


class ReportFormat(Enum):
    JSON = "json"
    CSV = "csv"
    HTML = "html"


@dataclass(frozen=True, slots=True)
class ReportQuery:
    from_ms: int
    to_ms: int
    unanswered_after_s: int
    format: ReportFormat
    locale: Locale


def parse_report_query(
    query: Mapping[str, str], now_ms: int, default_locale: Locale
) -> ReportQuery:
    """`from`, `to` (RFC 3339 with an offset, or a date: that day's 00:00 UTC; `to` is
    excluded), `unanswered_after` (seconds), `format` and `lang`. Without `to` the period
    ends now, without `from` it is the DEFAULT_PERIOD_DAYS before `to`. A bad parameter raises
    InvalidInput naming it."""
    to_ms = _moment_param(query, "to") if "to" in query else now_ms
    from_ms = (
        _moment_param(query, "from") if "from" in query else to_ms - DEFAULT_PERIOD_DAYS * _DAY_MS
    )
    if to_ms > _LAST_MS:
        raise InvalidInput("to", "must be before the year 10000 in UTC", "M_INVALID_PARAM")
    if from_ms < _FIRST_MS:
        # Without `from`, the period before `to` is what reaches back too far.
        path = "from" if "from" in query else "to"
        raise InvalidInput(path, "the period must start in the year 1 or later", "M_INVALID_PARAM")
    if from_ms >= to_ms:
        raise InvalidInput("from", "must be before `to`", "M_INVALID_PARAM")
    if to_ms - from_ms > MAX_PERIOD_DAYS * _DAY_MS:
        raise InvalidInput(
            "to", f"a report covers at most {MAX_PERIOD_DAYS} days", "M_INVALID_PARAM"
        )
    return ReportQuery(
        from_ms=from_ms,
        to_ms=to_ms,
        unanswered_after_s=_seconds_param(query, "unanswered_after"),
        format=_choice(query, "format", ReportFormat, ReportFormat.JSON),
        locale=_choice(query, "lang", Locale, default_locale),
    )


def _moment_param(query: Mapping[str, str], name: str) -> int:
    text = query[name].strip()
    try:
        if len(text) == len("2025-03-01"):
            day = parse_date(text, name)
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
        else:
            moment = parse_datetime(text, name)
    except InvalidInput as e:
        raise InvalidInput(e.path, e.error, "M_INVALID_PARAM") from None
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def _seconds_param(query: Mapping[str, str], name: str) -> int:
    text = query.get(name)
    if text is None:
        return DEFAULT_UNANSWERED_AFTER_S
    if not text.isascii() or not text.isdigit() or not 0 < int(text) <= MAX_PERIOD_DAYS * 86400:
        raise InvalidInput(
            name,
            f"{text!r} is not a number of seconds between 1 and {MAX_PERIOD_DAYS * 86400}",
            "M_INVALID_PARAM",
        )
    return int(text)


def _choice(query: Mapping[str, str], name: str, choices: type[E], default: E) -> E:
    text = query.get(name)
    if text is None:
        return default
    try:
        return choices(text)
    except ValueError:
        allowed = ", ".join(str(c.value) for c in choices)
        raise InvalidInput(name, f"{text!r} is none of {allowed}", "M_INVALID_PARAM") from None


# JSON and CSV ----------------------------------------------------------------------------------


def utc(ms: int) -> datetime:
    """A time in milliseconds since the epoch, exactly (no float on the way)."""
    return _EPOCH + timedelta(milliseconds=ms)


def rfc3339(ms: int) -> str:
    """A moment in UTC, with milliseconds only when it has them."""
    return utc(ms).isoformat(timespec="milliseconds" if ms % 1000 else "seconds")


def seconds(ms: int | None) -> Decimal | None:
    """Milliseconds as exact seconds, without trailing zeros (`Decimal("12.5")`)."""
    if ms is None:
        return None
    whole, millis = divmod(ms, 1000)
    return Decimal(ms).scaleb(-3).normalize() if millis else Decimal(whole)


def as_json(report: Report) -> dict[str, object]:
    return {
        "from": rfc3339(report.from_ms),
        "to": rfc3339(report.to_ms),
        "generated_at": rfc3339(report.now_ms),
        "unanswered_after_s": report.unanswered_after_s,
        "quantiles": QUANTILE_METHOD,
        "total": _figures_json(report.total),
        "managers": [{"manager": m.manager, **_figures_json(m.figures)} for m in report.managers],
        "procurements": [
            {
                "procurement": p.procurement_id,
                "number": p.number,
                "title": p.title,
                "manager": p.manager,
                **_figures_json(p.figures),
            }
            for p in report.procurements
        ],
        "rooms": [{**_chat_json(r.chat), **_figures_json(r.figures)} for r in report.rooms],
        "unanswered": [
            {
                **_chat_json(u.chat),
                "since": rfc3339(u.since),
                "age_s": _json_seconds(u.age_ms),
            }
            for u in report.unanswered
        ],
    }


def _json_seconds(ms: int | None) -> float | int | None:
    exact = seconds(ms)
    if exact is None:
        return None
    return int(exact) if exact == exact.to_integral_value() else float(exact)


def _figures_json(figures: Figures) -> dict[str, object]:
    return {
        "answered": figures.answered,
        "median_s": _json_seconds(figures.median_ms),
        "p90_s": _json_seconds(figures.p90_ms),
        "unanswered": figures.unanswered,
        "waiting": figures.waiting,
    }


def _chat_json(chat: SupplierChat) -> dict[str, object]:
    return {
        "procurement": chat.procurement_id,
        "number": chat.procurement_number,
        "supplier_id": chat.supplier_id,
        "supplier": chat.supplier_name,
        "room_id": chat.room_id,
        "manager": chat.manager,
    }


CSV_COLUMNS = (
    "procurement",
    "number",
    "supplier_id",
    "supplier",
    "room_id",
    "manager",
    "answered",
    "median_s",
    "p90_s",
    "unanswered",
    "waiting",
)


def as_csv(report: Report) -> str:
    """One row per supplier chat (RFC 4180, CRLF line ends)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for room in report.rooms:
        chat, figures = room.chat, room.figures
        writer.writerow(
            (
                chat.procurement_id,
                _csv_text(chat.procurement_number),
                chat.supplier_id,
                _csv_text(chat.supplier_name),
                chat.room_id,
                chat.manager,
                figures.answered,
                _csv_seconds(figures.median_ms),
                _csv_seconds(figures.p90_ms),
                figures.unanswered,
                figures.waiting,
            )
        )
    return out.getvalue()


def _csv_seconds(ms: int | None) -> str:
    exact = seconds(ms)
    return "" if exact is None else f"{exact:f}"


def _csv_text(text: str) -> str:
    # Names come from the procurement system; a spreadsheet would run one that starts like a
    # formula. Ids and Matrix ids stay exact for the programs that read them: their grammars
    # admit no function call.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
