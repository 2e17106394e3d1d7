"""The response-time report as a page: standalone, escaped, with its chart, in both languages."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from xml.etree import ElementTree

import pytest

from bridge.domain.duration_chart import (
    DAY,
    HOUR,
    MAX_TICKS,
    MINUTE,
    ChartWords,
    DurationBar,
    duration_chart,
    nice_step,
)
from bridge.domain.locale import Locale
from bridge.domain.response_page import CHART_ROWS, as_html
from bridge.domain.response_times import Report, report

from .test_response_times import (
    ALICE,
    CAROL,
    MANAGER,
    STALMET,
    T0,
    TORGPROFI,
    answered_after,
    chat,
    timeline,
)

SLY_NAME = '<script>alert("x")</script> & «Ко»'


def busy_report() -> Report:
    sly = chat("!sly:hs", procurement="P-9", number="<b>9</b>", name=SLY_NAME, members=(CAROL,))
    messages = (
        answered_after(TORGPROFI, [1, 2, 3, 5, 8, 13, 21, 34, 55, 89], T0)
        + answered_after(sly, [20, 140], T0)
        + timeline(STALMET, (2 * DAY, CAROL))
    )
    return report(
        [TORGPROFI, STALMET, sly], messages, from_ms=T0, to_ms=T0 + 30 * DAY, now_ms=T0 + 30 * DAY
    )


def empty_report() -> Report:
    return report([TORGPROFI], [], from_ms=T0, to_ms=T0 + DAY, now_ms=T0 + DAY)


class Tags(HTMLParser):
    """The page's tags and text, as a browser would read them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += attrs

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parsed(page: str) -> Tags:
    tags = Tags()
    tags.feed(page)
    tags.close()
    return tags


def svgs(page: str) -> list[str]:
    return re.findall(r"<svg.*?</svg>", page, re.S)


@pytest.mark.parametrize("locale", list(Locale))
def test_the_page_escapes_every_name(locale: Locale) -> None:
    page = as_html(busy_report(), locale)
    tags = parsed(page)
    assert "script" not in tags.tags
    text = "".join(tags.text)
    assert SLY_NAME in text
    assert "<b>9</b>" in text  # the procurement's number, as text
    assert "&lt;script&gt;" in page


@pytest.mark.parametrize("locale", list(Locale))
def test_the_page_stands_alone(locale: Locale) -> None:
    page = as_html(busy_report(), locale)
    tags = parsed(page)
    assert not {"script", "link", "img", "iframe", "object"} & set(tags.tags)
    # Links only lead to the chats in Matrix; nothing is loaded from anywhere.
    sources = [value for name, value in tags.attributes if name in ("src", "srcset")]
    assert sources == []
    hrefs = [value for name, value in tags.attributes if name == "href"]
    assert hrefs
    assert all(h is not None and h.startswith("https://matrix.to/#/") for h in hrefs)
    assert page.startswith("<!DOCTYPE html>")
    assert f'<html lang="{locale.value}">' in page


def test_the_page_charts_managers_and_procurements_in_well_formed_svg() -> None:
    page = as_html(busy_report(), Locale.RU)
    charts = svgs(page)
    assert len(charts) == 2
    for chart in charts:
        root = ElementTree.fromstring(chart)  # noqa: S314 - our own output
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
        assert root.get("role") == "img"
    assert "@manager:example.org" in charts[0]
    assert "26908 · Поставка арматуры" in charts[1]


def test_the_page_speaks_the_locale() -> None:
    russian = as_html(busy_report(), Locale.RU)
    english = as_html(busy_report(), Locale.EN)
    assert "Скорость ответов поставщикам" in russian
    assert "Медиана" in russian
    assert "90-й процентиль" in russian
    assert "Без ответа дольше 4 ч" in russian
    assert "Response times to suppliers" in english
    assert "Unanswered for more than 4 h" in english
    assert "Медиана" not in english


def test_the_page_lists_the_unanswered_waits() -> None:
    page = as_html(busy_report(), Locale.RU)
    text = "".join(parsed(page).text)
    assert "АО «Сталь»" in text
    assert "2025-03-03 00:00 UTC" in text
    assert "28 д" in text


@pytest.mark.parametrize("locale", list(Locale))
def test_an_empty_report_is_a_page_that_says_so(locale: Locale) -> None:
    page = as_html(empty_report(), locale)
    assert svgs(page) == []
    text = "".join(parsed(page).text)
    assert ("ожиданий нет" if locale is Locale.RU else "No supplier waited") in text
    assert page.rstrip().endswith("</html>")


def test_a_bidi_override_in_a_name_cannot_turn_it_around() -> None:
    tricky = chat(name="ООО \u202eИФОРПГРОТ")
    made = report(
        [tricky],
        timeline(tricky, (0, ALICE), (MINUTE, MANAGER)),
        from_ms=T0,
        to_ms=T0 + DAY,
        now_ms=T0 + DAY,
    )
    assert "\u202e" not in as_html(made, Locale.RU)


def test_a_chart_draws_only_the_slowest_of_many() -> None:
    many = [
        chat(f"!r{i}:hs", procurement=f"P-{i}", number=f"{i:03d}", members=(ALICE,))
        for i in range(CHART_ROWS + 5)
    ]
    messages = [m for i, c in enumerate(many) for m in answered_after(c, [i + 1], T0)]
    made = report(many, messages, from_ms=T0, to_ms=T0 + DAY, now_ms=T0 + DAY)
    page = as_html(made, Locale.EN)
    procurements_chart = svgs(page)[1]
    assert procurements_chart.count("<g><title>") == CHART_ROWS
    assert f"{CHART_ROWS + 4:03d} · " in procurements_chart  # the slowest
    assert "000 · " not in procurements_chart  # the fastest
    assert f"the {CHART_ROWS} slowest of {CHART_ROWS + 5}" in page
    assert page.count("<tr>") >= 2 * (CHART_ROWS + 5)


# The chart -------------------------------------------------------------------------------------


def test_the_scale_uses_round_steps() -> None:
    assert nice_step(1) == 1000
    assert nice_step(40 * MINUTE) == 10 * MINUTE
    assert nice_step(6 * HOUR + 40 * MINUTE) == 2 * HOUR
    assert nice_step(400 * DAY) == 90 * DAY
    for longest in (1, 59_999, 3 * HOUR, 29 * DAY, 1000 * DAY):
        assert nice_step(longest) * MAX_TICKS >= longest


def test_the_chart_escapes_labels_and_draws_what_it_has() -> None:
    words = ChartWords(title="<t>", median="m&", p90='p"')
    chart = duration_chart(
        "c",
        [
            DurationBar("<a>", 10 * MINUTE, 50 * MINUTE),
            DurationBar("nobody", None, None, note="<none>", alert=True),
        ],
        words,
        lambda ms: f"{ms // MINUTE} min",
    )
    root = ElementTree.fromstring(chart)  # noqa: S314 - our own output
    texts = ["".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "<a>" in texts
    assert "<none>" in texts
    assert "10 min / 50 min" in texts
    bars = list(root.iter("{http://www.w3.org/2000/svg}rect"))
    assert len(bars) == 2 + 2  # the legend's two, and the one row with figures


def test_a_chart_without_rows_is_still_an_svg() -> None:
    chart = duration_chart("c", [], ChartWords("t", "m", "p"), str)
    assert ElementTree.fromstring(chart).tag == "{http://www.w3.org/2000/svg}svg"  # noqa: S314
