"""The response-time report as a page people read: a self-contained HTML document (no external
styles, scripts or pictures) with inline SVG charts of the slowest first, then the tables."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from urllib.parse import quote

from .duration_chart import ChartWords, DurationBar, duration_chart
from .locale import Locale
from .response_times import Figures, Report, utc
from .text import REPLACEMENT, clean_text

# Bidi embeddings, overrides and isolates would make a name read as something else.
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
_MAX_SHOWN = 300
CHART_ROWS = 25  # a chart is looked at, not read: past this only the slowest are drawn

_UNITS = {Locale.RU: ("д", "ч", "мин", "с"), Locale.EN: ("d", "h", "min", "s")}


def format_duration(ms: int, locale: Locale) -> str:
    """A duration to the second, in its two largest units: «2 ч 05 мин», «45 s»."""
    d, h, m, s = _UNITS[locale]
    total = (ms + 500) // 1000
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} {d} {hours} {h}" if hours else f"{days} {d}"
    if hours:
        return f"{hours} {h} {minutes:02d} {m}" if minutes else f"{hours} {h}"
    if minutes:
        return f"{minutes} {m} {secs:02d} {s}" if secs else f"{minutes} {m}"
    return f"{secs} {s}"


_PAGE_WORDS: dict[Locale, dict[str, str]] = {
    Locale.RU: {
        "title": "Скорость ответов поставщикам",
        "period": "Период",
        "generated": "Отчёт составлен",
        "definition": "Ожидание начинается с первого сообщения поставщика после ответа "
        "организации и заканчивается первым сообщением менеджера или другого сотрудника "
        "организации в этом чате. Подряд идущие сообщения поставщика — одно ожидание; правки "
        "и сообщения помощника не считаются. В период попадают ожидания, начавшиеся в нём; "
        "ответ учитывается, когда бы он ни пришёл до составления отчёта.",
        "quantiles": "Медиана и 90-й процентиль считаются по отвеченным ожиданиям методом "
        "ближайшего ранга: 90-й процентиль — время, за которое получили ответ не меньше 90 % "
        "ожиданий.",
        "by_manager": "По менеджерам",
        "by_procurement": "По закупкам",
        "by_room": "По чатам с поставщиками",
        "unanswered_title": "Без ответа дольше {threshold}",
        "manager": "Менеджер",
        "procurement": "Закупка",
        "supplier": "Поставщик",
        "answered": "Отвечено",
        "median": "Медиана",
        "p90": "90-й процентиль",
        "unanswered": "Без ответа",
        "waiting": "Ждут, меньше {threshold}",
        "since": "Ждёт с",
        "age": "Ждёт",
        "empty": "В этот период поставщики не ждали ответа: ожиданий нет.",
        "all_answered": "Нет ожиданий без ответа дольше {threshold}.",
        "no_answers": "нет ответов",
        "unanswered_note": "без ответа: {count}",
        "chart_managers": "Время ответа по менеджерам: медиана и 90-й процентиль",
        "chart_procurements": "Время ответа по закупкам: медиана и 90-й процентиль",
        "chart_slowest": "На графике — {shown} самых медленных из {total}; все — в таблице.",
    },
    Locale.EN: {
        "title": "Response times to suppliers",
        "period": "Period",
        "generated": "Report made",
        "definition": "A wait starts at a supplier's first message after the organisation "
        "last answered and ends at the next message of the manager or another of the "
        "organisation's people in that chat. Consecutive messages of the supplier are one "
        "wait; edits and the assistant's messages do not count. A period holds the waits that "
        "began in it; an answer counts whenever it came before the report was made.",
        "quantiles": "Median and 90th percentile are of the answered waits, by nearest rank: "
        "the 90th percentile is the time within which at least 90 % of the waits were "
        "answered.",
        "by_manager": "By manager",
        "by_procurement": "By procurement",
        "by_room": "By supplier chat",
        "unanswered_title": "Unanswered for more than {threshold}",
        "manager": "Manager",
        "procurement": "Procurement",
        "supplier": "Supplier",
        "answered": "Answered",
        "median": "Median",
        "p90": "90th percentile",
        "unanswered": "Unanswered",
        "waiting": "Waiting, under {threshold}",
        "since": "Waiting since",
        "age": "Waiting for",
        "empty": "No supplier waited for an answer in this period.",
        "all_answered": "No wait has gone unanswered for more than {threshold}.",
        "no_answers": "no answers",
        "unanswered_note": "unanswered: {count}",
        "chart_managers": "Response time by manager: median and 90th percentile",
        "chart_procurements": "Response time by procurement: median and 90th percentile",
        "chart_slowest": "The chart shows the {shown} slowest of {total}; the table has all.",
    },
}

_STYLE = """
body { font-family: system-ui, sans-serif; color: #222; margin: 2rem auto; max-width: 60rem;
       padding: 0 1rem; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; }
h2 { font-size: 1.2rem; margin-top: 2.2rem; }
.note { color: #555; font-size: .9rem; }
.totals { display: flex; gap: 1rem; flex-wrap: wrap; margin: 1.2rem 0; }
.totals div { border: 1px solid #ddd; border-radius: 6px; padding: .5rem .9rem; }
.totals b { display: block; font-size: 1.3rem; }
.alert { color: #b3261e; }
table { border-collapse: collapse; width: 100%; margin-top: .8rem; font-size: .92rem; }
th, td { border-bottom: 1px solid #e3e3e3; padding: .35rem .5rem; text-align: left; }
th { background: #f5f6f8; }
td.n, th.n { text-align: right; white-space: nowrap; }
svg { max-width: 100%; height: auto; }
"""


@dataclass(frozen=True, slots=True)
class _Link:
    text: str
    href: str


_Cell = str | int | _Link
_ALERT = ' class="alert"'


def as_html(report: Report, locale: Locale) -> str:
    """A page that stands alone (no external styles, scripts or pictures), every name escaped."""
    words = _PAGE_WORDS[locale]
    threshold = format_duration(report.unanswered_after_s * 1000, locale)
    period = f"{_moment(report.from_ms)} — {_moment(report.to_ms)}"
    parts = [
        f"<h1>{escape(words['title'])}</h1>",
        f"<p>{escape(words['period'])}: {escape(period)}</p>",
        f'<p class="note">{escape(words["definition"])}</p>',
        _totals(report.total, words, threshold, locale),
    ]
    if report.rooms:
        parts += _managers_section(report, words, threshold, locale)
        parts += _procurements_section(report, words, threshold, locale)
        parts += _rooms_section(report, words, threshold, locale)
    else:
        parts.append(f"<p>{escape(words['empty'])}</p>")
    parts += _unanswered_section(report, words, threshold, locale)
    parts.append(
        f'<p class="note">{escape(words["quantiles"])}<br>'
        f"{escape(words['generated'])}: {escape(_moment(report.now_ms))}</p>"
    )
    return (
        f'<!DOCTYPE html>\n<html lang="{locale.value}">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(words['title'])} · {escape(period)}</title>\n"
        f"<style>{_STYLE}</style>\n</head>\n<body>\n" + "\n".join(parts) + "\n</body>\n</html>\n"
    )


def _moment(ms: int) -> str:
    return utc(ms).strftime("%Y-%m-%d %H:%M UTC")


def _totals(figures: Figures, words: Mapping[str, str], threshold: str, locale: Locale) -> str:
    boxes = [
        (words["answered"], str(figures.answered), ""),
        (words["median"], _duration_or_dash(figures.median_ms, locale), ""),
        (words["p90"], _duration_or_dash(figures.p90_ms, locale), ""),
        (words["unanswered"], str(figures.unanswered), _ALERT if figures.unanswered else ""),
        (words["waiting"].format(threshold=threshold), str(figures.waiting), ""),
    ]
    return (
        '<div class="totals">'
        + "".join(
            f"<div{css}><b>{escape(value)}</b>{escape(label)}</div>" for label, value, css in boxes
        )
        + "</div>"
    )


def _duration_or_dash(ms: int | None, locale: Locale) -> str:
    return "—" if ms is None else format_duration(ms, locale)


def _managers_section(
    report: Report, words: Mapping[str, str], threshold: str, locale: Locale
) -> list[str]:
    rows = [(m.manager, m.figures) for m in report.managers]
    return [
        f"<h2>{escape(words['by_manager'])}</h2>",
        _chart("managers", words["chart_managers"], rows, words, locale),
        _table(
            [words["manager"], *_figure_headers(words, threshold)],
            [[manager, *_figure_cells(figures, locale)] for manager, figures in rows],
        ),
    ]


def _procurements_section(
    report: Report, words: Mapping[str, str], threshold: str, locale: Locale
) -> list[str]:
    rows = [(p.label, p.figures) for p in report.procurements]
    return [
        f"<h2>{escape(words['by_procurement'])}</h2>",
        _chart("procurements", words["chart_procurements"], rows, words, locale),
        _table(
            [words["procurement"], words["manager"], *_figure_headers(words, threshold)],
            [[p.label, p.manager, *_figure_cells(p.figures, locale)] for p in report.procurements],
        ),
    ]


def _rooms_section(
    report: Report, words: Mapping[str, str], threshold: str, locale: Locale
) -> list[str]:
    return [
        f"<h2>{escape(words['by_room'])}</h2>",
        _table(
            [
                words["procurement"],
                words["supplier"],
                words["manager"],
                *_figure_headers(words, threshold),
            ],
            [
                [
                    r.chat.procurement_number,
                    _Link(r.chat.supplier_name, matrix_to(r.chat.room_id)),
                    r.chat.manager,
                    *_figure_cells(r.figures, locale),
                ]
                for r in report.rooms
            ],
        ),
    ]


def _unanswered_section(
    report: Report, words: Mapping[str, str], threshold: str, locale: Locale
) -> list[str]:
    title = f"<h2>{escape(words['unanswered_title'].format(threshold=threshold))}</h2>"
    if not report.unanswered:
        return [title, f"<p>{escape(words['all_answered'].format(threshold=threshold))}</p>"]
    return [
        title,
        _table(
            [
                words["procurement"],
                words["supplier"],
                words["manager"],
                words["since"],
                words["age"],
            ],
            [
                [
                    u.chat.procurement_number,
                    _Link(u.chat.supplier_name, matrix_to(u.chat.room_id)),
                    u.chat.manager,
                    _moment(u.since),
                    format_duration(u.age_ms, locale),
                ]
                for u in report.unanswered
            ],
            figure_columns=1,
        ),
    ]


def matrix_to(room_id: str) -> str:
    """The link that opens the room in the reader's Matrix client."""
    return "https://matrix.to/#/" + quote(room_id, safe="!:")


def _figure_headers(words: Mapping[str, str], threshold: str) -> list[str]:
    return [
        words["answered"],
        words["median"],
        words["p90"],
        words["unanswered"],
        words["waiting"].format(threshold=threshold),
    ]


def _figure_cells(figures: Figures, locale: Locale) -> list[_Cell]:
    return [
        figures.answered,
        _duration_or_dash(figures.median_ms, locale),
        _duration_or_dash(figures.p90_ms, locale),
        figures.unanswered,
        figures.waiting,
    ]


def _table(
    headers: Sequence[str], rows: Iterable[Sequence[_Cell]], figure_columns: int = 5
) -> str:
    """A table whose last `figure_columns` columns are right-aligned figures."""
    figures_from = len(headers) - figure_columns

    def css(index: int) -> str:
        return ' class="n"' if index >= figures_from else ""

    head = "".join(f"<th{css(i)}>{escape(h)}</th>" for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(f"<td{css(i)}>{_cell(c)}</td>" for i, c in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(cell: _Cell) -> str:
    if isinstance(cell, _Link):
        return f'<a href="{escape(cell.href)}">{escape(_shown(cell.text))}</a>'
    return escape(_shown(str(cell)))


def _shown(text: str) -> str:
    """A name from the procurement system as it may be shown: on one line, without control
    characters, and without the bidi controls that would make it read as something else
    («ООО‮ИФОРПГРОТ»)."""
    return _BIDI.sub(REPLACEMENT, clean_text(text, _MAX_SHOWN, single_line=True))


def _chart(
    chart_id: str,
    title: str,
    rows: Sequence[tuple[str, Figures]],
    words: Mapping[str, str],
    locale: Locale,
) -> str:
    """The slowest first: bars of the median inside the 90th percentile, and the unanswered;
    past CHART_ROWS only the slowest are drawn (the table below has them all)."""
    slowest = sorted(rows, key=lambda r: _slowest_first(r[1]))
    bars = [
        DurationBar(
            label=_shown(label),
            median_ms=figures.median_ms,
            p90_ms=figures.p90_ms,
            note=_bar_note(figures, words),
            alert=figures.unanswered > 0,
        )
        for label, figures in slowest[:CHART_ROWS]
    ]
    chart_words = ChartWords(title=title, median=words["median"], p90=words["p90"])
    chart = duration_chart(chart_id, bars, chart_words, lambda ms: format_duration(ms, locale))
    if len(rows) <= CHART_ROWS:
        return chart
    shown = words["chart_slowest"].format(shown=CHART_ROWS, total=len(rows))
    return f'{chart}\n<p class="note">{escape(shown)}</p>'


def _slowest_first(figures: Figures) -> tuple[bool, int, int]:
    # Nobody answered at all: worse than any time.
    return (figures.p90_ms is not None, -(figures.p90_ms or 0), -figures.unanswered)


def _bar_note(figures: Figures, words: Mapping[str, str]) -> str:
    notes = [] if figures.answered else [words["no_answers"]]
    if figures.unanswered:
        notes.append(words["unanswered_note"].format(count=figures.unanswered))
    return ", ".join(notes)
