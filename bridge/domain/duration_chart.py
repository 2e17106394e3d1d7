"""A horizontal bar chart of durations as inline SVG: per row a typical and a long duration
(a median inside its 90th percentile), on a scale of round time steps."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

SECOND = 1000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR

# Steps a person reads a time axis by; at most MAX_TICKS of them span the longest bar.
_STEPS = (
    SECOND,
    5 * SECOND,
    10 * SECOND,
    30 * SECOND,
    MINUTE,
    2 * MINUTE,
    5 * MINUTE,
    10 * MINUTE,
    15 * MINUTE,
    30 * MINUTE,
    HOUR,
    2 * HOUR,
    3 * HOUR,
    6 * HOUR,
    12 * HOUR,
    DAY,
    2 * DAY,
    7 * DAY,
    14 * DAY,
    30 * DAY,
)
MAX_TICKS = 6

_WIDTH = 960
_LABEL_RIGHT = 232  # labels end here, bars start a little after
_BAR_LEFT = 240
_BAR_WIDTH = 360  # the rest of the width is for the figures and the note after each bar
_TOP = 34  # the legend
_ROW = 30
_BAR = 16
_AXIS = 34
_LABEL_CHARS = 34
_MEDIAN_COLOUR = "#2f6db5"
_P90_COLOUR = "#a9c8ec"
_ALERT_COLOUR = "#b3261e"


@dataclass(frozen=True, slots=True)
class DurationBar:
    """One row: `median_ms` and `p90_ms` are None when there is nothing to measure; `note`
    is written after the figures (in the alert colour when `alert`)."""

    label: str
    median_ms: int | None
    p90_ms: int | None
    note: str = ""
    alert: bool = False


@dataclass(frozen=True, slots=True)
class ChartWords:
    title: str
    median: str
    p90: str


def nice_step(longest_ms: int) -> int:
    """The smallest round step of which at most MAX_TICKS cover `longest_ms`."""
    for step in _STEPS:
        if step * MAX_TICKS >= longest_ms:
            return step
    longest_step = _STEPS[-1]
    return longest_step * -(-longest_ms // (longest_step * MAX_TICKS))


def duration_chart(
    chart_id: str,
    rows: Sequence[DurationBar],
    words: ChartWords,
    duration: Callable[[int], str],
) -> str:
    """The chart as an `<svg>` element; every text in it is escaped. `chart_id` keeps the ids
    of several charts on one page apart."""
    longest = max((row.p90_ms or 0 for row in rows), default=0)
    step = nice_step(max(longest, 1))
    axis_end = step * max(1, -(-longest // step))
    height = _TOP + _ROW * len(rows) + _AXIS
    title_id = f"{chart_id}-title"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby="{title_id}" '
        f'width="{_WIDTH}" height="{height}" viewBox="0 0 {_WIDTH} {height}" '
        'font-family="system-ui, sans-serif" font-size="13">',
        f'<title id="{title_id}">{escape(words.title)}</title>',
        _legend(words),
        *_grid(axis_end, step, len(rows), duration),
        *(_row(i, row, axis_end, words, duration) for i, row in enumerate(rows)),
        "</svg>",
    ]
    return "\n".join(parts)


def _x(ms: int, axis_end: int) -> float:
    return _BAR_LEFT + _BAR_WIDTH * ms / axis_end


def _legend(words: ChartWords) -> str:
    return (
        f'<g><rect x="{_BAR_LEFT}" y="8" width="14" height="12" fill="{_MEDIAN_COLOUR}"/>'
        f'<text x="{_BAR_LEFT + 20}" y="19">{escape(words.median)}</text>'
        f'<rect x="{_BAR_LEFT + 160}" y="8" width="14" height="12" fill="{_P90_COLOUR}"/>'
        f'<text x="{_BAR_LEFT + 180}" y="19">{escape(words.p90)}</text></g>'
    )


def _grid(axis_end: int, step: int, rows: int, duration: Callable[[int], str]) -> list[str]:
    bottom = _TOP + _ROW * rows
    lines = []
    for tick in range(0, axis_end + 1, step):
        x = _x(tick, axis_end)
        lines.append(
            f'<line x1="{x:.1f}" y1="{_TOP - 4}" x2="{x:.1f}" y2="{bottom}" stroke="#d9d9d9"/>'
        )
        lines.append(
            f'<text x="{x:.1f}" y="{bottom + 18}" text-anchor="middle" fill="#555">'
            f"{escape(duration(tick)) if tick else '0'}</text>"
        )
    return lines


def _row(
    index: int,
    row: DurationBar,
    axis_end: int,
    words: ChartWords,
    duration: Callable[[int], str],
) -> str:
    top = _TOP + _ROW * index
    bar_y = top + (_ROW - _BAR) // 2
    text_y = bar_y + _BAR - 3
    label = row.label if len(row.label) <= _LABEL_CHARS else row.label[: _LABEL_CHARS - 1] + "…"
    parts = [
        f"<g><title>{escape(_tooltip(row, words, duration))}</title>",
        f'<text x="{_LABEL_RIGHT}" y="{text_y}" text-anchor="end">{escape(label)}</text>',
    ]
    text_x = _BAR_LEFT + 6.0
    figures = ""
    if row.median_ms is not None and row.p90_ms is not None:
        parts.append(_bar(row.p90_ms, axis_end, bar_y, _P90_COLOUR))
        parts.append(_bar(row.median_ms, axis_end, bar_y, _MEDIAN_COLOUR))
        text_x = _x(row.p90_ms, axis_end) + 6
        figures = f"{escape(duration(row.median_ms))} / {escape(duration(row.p90_ms))}"
    if row.note:
        colour = _ALERT_COLOUR if row.alert else "#555"
        gap = ' dx="12"' if figures else ""
        figures += f'<tspan{gap} fill="{colour}">{escape(row.note)}</tspan>'
    parts.append(f'<text x="{text_x:.1f}" y="{text_y}" fill="#222">{figures}</text>')
    parts.append("</g>")
    return "".join(parts)


def _bar(ms: int, axis_end: int, y: int, colour: str) -> str:
    # A response within the same second still gets a visible sliver.
    width = max(_x(ms, axis_end) - _BAR_LEFT, 1.5)
    return (
        f'<rect x="{_BAR_LEFT}" y="{y}" width="{width:.1f}" height="{_BAR}" rx="2" '
        f'fill="{colour}"/>'
    )


def _tooltip(row: DurationBar, words: ChartWords, duration: Callable[[int], str]) -> str:
    figures = [row.label]
    if row.median_ms is not None and row.p90_ms is not None:
        figures.append(f"{words.median}: {duration(row.median_ms)}")
        figures.append(f"{words.p90}: {duration(row.p90_ms)}")
    if row.note:
        figures.append(row.note)
    return " · ".join(figures)
