"""A card the bot posts: a plain-text body that reads well alone (mobile notifications show
only it) and the same card in the HTML subset Element renders, built within the size a Matrix
event allows, even when edited."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from html import escape

from .ids import UserId
from .locale import Locale
from .words import MONTHS_EN, WORDS


@dataclass(frozen=True, slots=True)
class Card:
    body: str  # plain text, the `body` of the event
    html: str  # `formatted_body` in org.matrix.custom.html


# A line of a card: its plain text and its HTML (already escaped).
Line = tuple[str, str]

# Matrix refuses an event over 65,536 bytes of canonical JSON, and the bot edits its cards in
# place: the edit carries the card twice (the "* " fallback and m.new_content). A card may so
# take 12,000 + 16,000 bytes as JSON strings (UTF-8, escapes counted), its edit about 56,300,
# under events.MAX_CONTENT_BYTES (60,000) which leaves the envelope its room. The HTML gets
# the larger share because its tags come on top of the very same text.
BODY_BYTES = 12_000
HTML_BYTES = 16_000
# A 60,000-character rejection comment is still one line: it must not crowd out the card.
LINE_CHARS = 1_000
CUT = "…"


def _json_bytes(text: str) -> int:
    """What `text` takes inside a JSON string: UTF-8, quotes and control characters escaped."""
    return len(json.dumps(text, ensure_ascii=False).encode("utf-8", "surrogatepass")) - 2


@dataclass(frozen=True, slots=True)
class _Size:
    """A card's share of the event, body and HTML apart, in `_json_bytes`."""

    body: int
    html: int

    def __add__(self, other: _Size) -> _Size:
        return _Size(self.body + other.body, self.html + other.html)

    def __sub__(self, other: _Size) -> _Size:
        return _Size(self.body - other.body, self.html - other.html)

    def within(self, room: _Size) -> bool:
        return self.body <= room.body and self.html <= room.html


def _size_of(body: Sequence[str], html: str) -> _Size:
    # Each body line is joined to the card by a newline, which JSON writes as two bytes.
    return _Size(sum(_json_bytes(line) + 2 for line in body), _json_bytes(html))


_CARD_ROOM = _Size(BODY_BYTES, HTML_BYTES)
# Kept back while listing items for what usually follows a list: the note under the
# documents, an approval's outcome and reason (a full line of Cyrillic is ~2 KB).
_TAIL_ROOM = _Size(3_000, 3_500)
# Always kept for the «…» that says that lines were left out.
_CUT_ROOM = _size_of([CUT], f"<p>{CUT}</p>")


def _fitting(start: _Size, sizes: Sequence[_Size], room: _Size) -> int:
    """How many of `sizes`, in order, fit into `room` after `start`."""
    used = start
    for count, size in enumerate(sizes):
        used += size
        if not used.within(room):
            return count
    return len(sizes) if start.within(room) else 0


class CardBuilder:
    """Collects a card block by block, so that body and HTML cannot drift apart, and keeps it
    within BODY_BYTES and HTML_BYTES, so that even its edit is an event Matrix accepts.

    Over the budget, a list shows the items that fit and «… и ещё N»; lines that do not fit
    are left out for a «…», and so is everything after them.
    """

    __slots__ = ("_body", "_full", "_html", "_left", "_locale")

    def __init__(self, title: str, locale: Locale) -> None:
        self._body: list[str] = []
        self._html: list[str] = []
        self._locale = locale
        self._left = _CARD_ROOM - _CUT_ROOM
        self._full = False
        self.section(title)

    def section(self, title: str) -> None:
        """A card of its own within this one (the live vote: its terms, then its progress)."""
        plain = _cut(title)
        self._add(["", plain] if self._body else [plain], f"<h4>{escape(plain)}</h4>")

    def lines(self, *lines: Line | None) -> None:
        if self._full:
            return
        present = [_cut_line(line) for line in lines if line is not None]
        if not present:
            return
        sizes = [_size_of([plain], f"{markup}<br>") for plain, markup in present]
        count = _fitting(_size_of([], "<p></p>"), sizes, self._left)
        if count:
            shown = present[:count]
            self._add(
                [plain for plain, _ in shown],
                "<p>" + "<br>".join(markup for _, markup in shown) + "</p>",
            )
        if count < len(present):
            self._overflow()

    def items(self, heading: str | None, items: Sequence[Line], *, latest: bool = False) -> None:
        """A list; what does not fit is counted in a last line («… и ещё N»), or with
        `latest` the newest (last) items are kept and the earlier ones counted first."""
        if self._full:
            return
        rows = [_cut_line(item) for item in items]
        body = [] if heading is None else [f"{heading}:"]
        html = "" if heading is None else f"<p><b>{escape(heading)}:</b></p>"
        sizes = [_size_of([f"• {plain}"], f"<li>{markup}</li>") for plain, markup in rows]
        if latest:
            sizes.reverse()
        count = _fitting(_size_of(body, html + "<ul></ul>"), sizes, self._left - _TAIL_ROOM)
        shown = rows[len(rows) - count :] if latest else rows[:count]
        left_out = ""
        if count < len(rows):
            key = "earlier_items" if latest else "more_items"
            left_out = word(self._locale, key).format(count=len(rows) - count)
        if latest and left_out:
            body.append(left_out)
            html += f"<p><i>{escape(left_out)}</i></p>"
        body.extend(f"• {plain}" for plain, _ in shown)
        if shown or count == len(rows):
            html += "<ul>" + "".join(f"<li>{markup}</li>" for _, markup in shown) + "</ul>"
        if left_out and not latest:
            body.append(left_out)
            html += f"<p><i>{escape(left_out)}</i></p>"
        self._add(body, html)

    def build(self) -> Card:
        return Card("\n".join(self._body), "".join(self._html))

    def _add(self, body: list[str], html: str) -> None:
        size = _size_of(body, html)
        if self._full or not size.within(self._left):
            self._overflow()
            return
        self._body.extend(body)
        self._html.append(html)
        self._left -= size

    def _overflow(self) -> None:
        # The room for this mark was never handed out (`_CUT_ROOM`).
        if not self._full:
            self._full = True
            self._body.append(CUT)
            self._html.append(f"<p>{CUT}</p>")


def _cut(plain: str) -> str:
    return plain if len(plain) <= LINE_CHARS else plain[: LINE_CHARS - 1] + CUT


# Markup as the cards make it: tags, character references, and text escape() made safe.
_MARKUP = re.compile(r"<(/?)([a-zA-Z0-9]+)[^>]*>|&#?\w+;|[^<&]+|.", re.DOTALL)
_VOID_TAGS = frozenset({"br"})


def _cut_line(line: Line) -> Line:
    plain, markup = line
    return _cut(plain), _cut_markup(markup)


def _cut_markup(markup: str) -> str:
    """`markup` cut as `_cut` cuts its text: after the same number of visible characters,
    never inside a tag or a character reference, and with the tags it opened closed."""
    if len(markup) <= LINE_CHARS:  # the visible text is never longer than the markup
        return markup
    tokens = list(_MARKUP.finditer(markup))
    if sum(_visible_chars(token) for token in tokens) <= LINE_CHARS:
        return markup
    kept: list[str] = []
    open_tags: list[str] = []
    left = LINE_CHARS - 1
    for token in tokens:
        if token.group(2):
            _follow_tag(open_tags, token.group(2).lower(), closing=bool(token.group(1)))
        elif left == 0:
            break
        elif _visible_chars(token) > left:
            # Only a run of text can be longer: a character reference is one character.
            kept.append(token.group(0)[:left])
            break
        else:
            left -= _visible_chars(token)
        kept.append(token.group(0))
    return "".join(kept) + CUT + "".join(f"</{tag}>" for tag in reversed(open_tags))


def _visible_chars(token: re.Match[str]) -> int:
    text = token.group(0)
    if token.group(2):
        return 0
    return 1 if text.startswith("&") and len(text) > 1 else len(text)


def _follow_tag(open_tags: list[str], tag: str, *, closing: bool) -> None:
    # The cards' markup nests properly: a closing tag closes the innermost open one.
    if closing:
        if open_tags:
            open_tags.pop()
    elif tag not in _VOID_TAGS:
        open_tags.append(tag)


def text(plain: str) -> Line:
    return plain, escape(plain)


def bold(plain: str) -> Line:
    return plain, f"<b>{escape(plain)}</b>"


def field(label: str, value: str) -> Line:
    return f"{label}: {value}", f"<b>{escape(label)}:</b> {escape(value)}"


def italic(plain: str) -> Line:
    return plain, f"<i>{escape(plain)}</i>"


def word(locale: Locale, key: str) -> str:
    return WORDS[locale][key]


def format_date(value: date, locale: Locale = Locale.RU) -> str:
    """«12.05.2022» / "12 May 2022"."""
    if locale is Locale.RU:
        return value.strftime("%d.%m.%Y")
    return f"{value.day} {MONTHS_EN[value.month - 1]} {value.year}"


def format_datetime(value: datetime, locale: Locale = Locale.RU) -> str:
    """«15.04.2022 18:00 (UTC+03:00)»: in the offset the procurement system gave, said out
    loud, because commission members and suppliers sit in different time zones."""
    return f"{format_date(value.date(), locale)} {value:%H:%M} ({_utc_offset(value)})"


def _utc_offset(value: datetime) -> str:
    offset = value.utcoffset()
    if not offset:
        return "UTC"
    sign = "+" if offset >= timedelta(0) else "-"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def display_name(user: UserId, names: Mapping[UserId, str] | None) -> str:
    return (names or {}).get(user) or user


def link(label: str, url: str) -> Line:
    """A link people click (a matrix.to permalink); its address in the plain text after it."""
    return f"{label} — {url}", f'<a href="{escape(url, quote=True)}">{escape(label)}</a>'
