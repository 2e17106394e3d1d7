"""What the bot posts, in Russian and English: a plain-text body that reads well alone
(mobile notifications show only it) and the same card in the HTML subset Element renders."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from html import escape
from urllib.parse import urlsplit

from .approval import (
    ApprovalMode,
    ApprovalRefused,
    ApprovalState,
    Outcome,
    RefusalCode,
    Step,
    StepStatus,
)
from .errors import InvalidInput, Refused
from .ids import UserId
from .locale import Locale
from .money import days, file_size, format_money, voted_of
from .registry import RegisteredDocument, Sighting
from .vote import CloseReason, VoteState, VoteSubject, tally
from .words import HELP, MONTHS_EN, REFUSALS, ROOM_KINDS, STAGES, SUBJECT_KINDS, WORDS


@dataclass(frozen=True, slots=True)
class Card:
    body: str  # plain text, the `body` of the event
    html: str  # `formatted_body` in org.matrix.custom.html


# A line of a card: its plain text and its HTML (already escaped).
_Line = tuple[str, str]

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


class _CardBuilder:
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

    def lines(self, *lines: _Line | None) -> None:
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

    def items(self, heading: str | None, items: Sequence[_Line], *, latest: bool = False) -> None:
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
            left_out = _w(self._locale, key).format(count=len(rows) - count)
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


def _cut_line(line: _Line) -> _Line:
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


def _text(plain: str) -> _Line:
    return plain, escape(plain)


def _bold(plain: str) -> _Line:
    return plain, f"<b>{escape(plain)}</b>"


def _field(label: str, value: str) -> _Line:
    return f"{label}: {value}", f"<b>{escape(label)}:</b> {escape(value)}"


def _italic(plain: str) -> _Line:
    return plain, f"<i>{escape(plain)}</i>"


def _w(locale: Locale, key: str) -> str:
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


def _name(user: UserId, names: Mapping[UserId, str] | None) -> str:
    return (names or {}).get(user) or user


# --- votes -----------------------------------------------------------------------------


def voting_card(state: VoteState, locale: Locale = Locale.RU) -> Card:
    """The seed's voting card: what is voted on, the terms, the rules of this vote."""
    card = _CardBuilder(_terms_title(state, locale), locale)
    _write_terms(card, state, locale)
    return card.build()


def _terms_title(state: VoteState, locale: Locale) -> str:
    return f"{_w(locale, 'vote')}: {state.request.question}"


def _write_terms(card: _CardBuilder, state: VoteState, locale: Locale) -> None:
    request = state.request
    if request.subject is not None:
        card.lines(*_subject_lines(request.subject, locale))
    card.lines(
        _field(_w(locale, "options"), " · ".join(o.label for o in request.options)),
        _field(
            _w(locale, "quorum"), f"{request.quorum} · {_w(locale, 'voters')}: {len(state.voters)}"
        ),
        _field(_w(locale, "until"), format_datetime(request.closes_at, locale)),
        _italic(_w(locale, "secret" if not request.disclosed else "open")),
    )
    card.lines(_text(_w(locale, "how_to_vote")))


def _subject_lines(subject: VoteSubject, locale: Locale) -> list[_Line | None]:
    kind = SUBJECT_KINDS[locale].get(subject.kind or "", subject.kind or "")
    heading = " ".join(part for part in (kind, subject.number or "") if part)
    document = subject.document
    document_text = None
    if document is not None:
        document_text = document.info.filename
        if document.size is not None:
            document_text += f" ({file_size(document.size, locale)})"
    return [
        _bold(heading) if heading else None,
        _field(_w(locale, "supplier"), subject.supplier) if subject.supplier else None,
        (
            _field(_w(locale, "delivery_term"), days(subject.delivery_term_days, locale))
            if subject.delivery_term_days is not None
            else None
        ),
        (
            _field(_w(locale, "delivery_date"), format_date(subject.delivery_date, locale))
            if subject.delivery_date is not None
            else None
        ),
        (
            _field(
                _w(locale, "cost_without_vat"),
                format_money(subject.cost_without_vat, subject.currency, locale),
            )
            if subject.cost_without_vat is not None
            else None
        ),
        (
            _field(
                _w(locale, "cost_with_vat"),
                format_money(subject.cost_with_vat, subject.currency, locale),
            )
            if subject.cost_with_vat is not None
            else None
        ),
        _field(_w(locale, "document"), document_text) if document_text else None,
    ]


def turnout_line(state: VoteState, locale: Locale = Locale.RU) -> str:
    """«Проголосовало 6 из 10 · кворум 6 — набран»; never who has not voted yet."""
    result = tally(state)
    quorum = _w(locale, "quorum_line").format(
        quorum=result.quorum,
        state=_w(locale, "reached" if result.quorum_reached else "not_reached"),
    )
    return f"{voted_of(result.turnout, result.voters, locale)} · {quorum}"


def vote_status_card(state: VoteState, locale: Locale = Locale.RU) -> Card:
    """The progress of a vote, for the pinned card and the «голосование» command."""
    if not state.is_open:
        return vote_result_card(state, locale)
    card = _CardBuilder(_progress_title(state, locale), locale)
    _write_progress(card, state, locale)
    return card.build()


def _progress_title(state: VoteState, locale: Locale) -> str:
    return f"{_w(locale, 'vote_running')}: {state.request.question}"


def _write_progress(card: _CardBuilder, state: VoteState, locale: Locale) -> None:
    card.lines(
        _text(turnout_line(state, locale)),
        _field(_w(locale, "until"), format_datetime(state.request.closes_at, locale)),
    )


def vote_result_card(state: VoteState, locale: Locale = Locale.RU) -> Card:
    """The result: per option, turnout and quorum, outcome, and how the vote closed."""
    card = _CardBuilder(_result_title(state, locale), locale)
    _write_result(card, state, locale)
    return card.build()


def _result_title(state: VoteState, locale: Locale) -> str:
    cancelled = state.close_reason is CloseReason.CANCELLED
    title = _w(locale, "vote_cancelled" if cancelled else "vote_done")
    return f"{title}: {state.request.question}"


def _write_result(card: _CardBuilder, state: VoteState, locale: Locale) -> None:
    request = state.request
    result = tally(state)
    cancelled = state.close_reason is CloseReason.CANCELLED
    card.items(
        _w(locale, "results"),
        [_text(f"{c.option.label} — {c.count}") for c in result.counts],
    )
    if result.outcome is not None:
        winner = request.option(result.outcome)
        outcome = winner.label if winner is not None else result.outcome
    else:
        outcome = _w(locale, "no_quorum" if not result.quorum_reached else "tie")
    closed = None
    if state.close_reason is not None and state.closed_at is not None:
        how = _w(locale, f"closed_{state.close_reason.value}")
        closed = _field(_w(locale, "closed"), f"{how}, {format_datetime(state.closed_at, locale)}")
    card.lines(
        _text(turnout_line(state, locale)),
        None if cancelled else _field(_w(locale, "outcome"), outcome),
        closed,
        _field(_w(locale, "reason"), state.cancel_reason) if state.cancel_reason else None,
    )


def live_vote_card(state: VoteState, locale: Locale = Locale.RU) -> Card:
    """The voting card as posted and then kept current by edits: the terms, then the progress
    while open («Проголосовало 6 из 10 · кворум 6 — набран»), the result once closed.

    One card, not two glued together, so that terms and progress share one budget."""
    card = _CardBuilder(_terms_title(state, locale), locale)
    _write_terms(card, state, locale)
    if state.is_open:
        card.section(_progress_title(state, locale))
        _write_progress(card, state, locale)
    else:
        card.section(_result_title(state, locale))
        _write_result(card, state, locale)
    return card.build()


def open_votes_card(
    states: Sequence[VoteState],
    names: Mapping[UserId, str] | None = None,
    locale: Locale = Locale.RU,
) -> Card:
    """The «голосование» command: open votes, their progress and who has not answered yet."""
    if not states:
        return _CardBuilder(_w(locale, "no_open_votes"), locale).build()
    card = _CardBuilder(_w(locale, "open_votes"), locale)
    for state in states:
        answered = {b.user for b in state.counted_ballots()}
        waiting = [_name(user, names) for user in state.voters if user not in answered]
        card.lines(
            _bold(state.request.question),
            _text(turnout_line(state, locale)),
            _field(_w(locale, "until"), format_datetime(state.request.closes_at, locale)),
            _field(_w(locale, "not_answered"), ", ".join(waiting)) if waiting else None,
        )
    return card.build()


# --- approvals -------------------------------------------------------------------------


def approval_card(
    state: ApprovalState,
    locale: Locale = Locale.RU,
    names: Mapping[UserId, str] | None = None,
) -> Card:
    """The «Вынесение на согласование» form as a card, edited in place as the route moves.

    `names` maps approvers to display names («Коновалов А.С.»); MXIDs are shown otherwise.
    """
    request = state.request
    info = request.document.info
    what = " ".join(
        part for part in (info.type, f"№ {info.number}" if info.number else None) if part
    )
    card = _CardBuilder(f"{_w(locale, 'approval')}: {what or info.filename}", locale)
    card.lines(
        _field(_w(locale, "series"), info.series) if info.series else None,
        (
            _field(_w(locale, "valid_until"), format_date(info.valid_until, locale))
            if info.valid_until is not None
            else None
        ),
        _field(_w(locale, "file"), info.filename),
        _field(_w(locale, "mode"), _w(locale, request.mode.value)),
        _field(_w(locale, "group"), request.group) if request.group else None,
        _text(_w(locale, "signature_required")) if request.require_signature else None,
        (
            _field(_w(locale, "deadline"), format_datetime(request.deadline, locale))
            if request.deadline is not None
            else None
        ),
    )
    current = state.current_approvers()
    numbered = request.mode is ApprovalMode.SEQUENTIAL
    card.items(
        _w(locale, "participants"),
        [
            _step_line(step, i, numbered, step.approver in current, state.is_open, locale, names)
            for i, step in enumerate(state.steps)
        ],
    )
    if state.is_open:
        card.lines(
            _field(_w(locale, "current"), ", ".join(_name(u, names) for u in current)),
            _italic(_w(locale, "how_to_decide")),
        )
    else:
        assert state.outcome is not None
        card.lines(
            _field(_w(locale, "outcome"), _w(locale, f"outcome_{state.outcome.value}")),
            _reason_line(state, locale),
        )
    return card.build()


def _step_line(
    step: Step,
    index: int,
    numbered: bool,
    is_current: bool,
    route_open: bool,
    locale: Locale,
    names: Mapping[UserId, str] | None,
) -> _Line:
    if step.status is StepStatus.APPROVED:
        mark, state = "✅", _w(locale, "approved")
    elif step.status is StepStatus.REJECTED:
        mark, state = "❌", _w(locale, "rejected")
    elif is_current:
        mark, state = "⏳", _w(locale, "waiting")
    else:
        mark, state = "—", _w(locale, "queued" if route_open else "not_needed")
    parts = [state]
    if step.decided_at is not None:
        parts.append(format_datetime(step.decided_at, locale))
    if step.signature_ok:
        parts.append(_w(locale, "signed"))
    number = f"{index + 1}. " if numbered else ""
    plain = f"{number}{mark} {_name(step.approver, names)} — {', '.join(parts)}"
    markup = escape(plain)
    if step.comment:
        quoted = f"«{step.comment}»" if locale is Locale.RU else f"“{step.comment}”"
        plain += f": {quoted}"
        markup += f": <i>{escape(quoted)}</i>"
    return plain, markup


def _reason_line(state: ApprovalState, locale: Locale) -> _Line | None:
    if state.outcome is Outcome.CANCELLED and state.cancel_reason:
        return _field(_w(locale, "reason"), state.cancel_reason)
    if state.outcome is Outcome.REJECTED:
        reason = next((s.comment for s in state.steps if s.status is StepStatus.REJECTED), None)
        return _field(_w(locale, "reason"), reason) if reason else None
    return None


def signature_card(result: Mapping[str, object], locale: Locale = Locale.RU) -> Card:
    """What the bot says of a signature file: verified, or which check failed and why."""
    if result.get("ok"):
        card = _CardBuilder(_w(locale, "signature_ok"), locale)
        card.lines(
            _field(_w(locale, "signature_signer"), str(result.get("signer_subject") or "—")),
            _text(_w(locale, "signature_next")),
        )
        return card.build()
    card = _CardBuilder(_w(locale, "signature_bad"), locale)
    check = str(result.get("failed_check") or "parse")
    card.lines(
        _field(_w(locale, "signature_check"), WORDS[locale].get(f"check_{check}", check)),
        _italic(str(result.get("reason") or "")),
    )
    return card.build()


def approval_poll_answers(locale: Locale = Locale.RU) -> list[tuple[str, str]]:
    """The approval card's poll: (answer id, label)."""
    return [("approve", _w(locale, "approve_option")), ("reject", _w(locale, "reject_option"))]


# --- rooms, help, refusals -------------------------------------------------------------


def context_card(
    *,
    procurement_number: str,
    title: str,
    room_kind: str,
    locale: Locale = Locale.RU,
    room_subject: str | None = None,
    object_name: str | None = None,
    stage: str | None = None,
    url: str | None = None,
) -> Card:
    """The bot's first message in a room: what this room is about and what it is for.

    `room_kind` and `stage` are the codes of DESIGN §3 (unknown codes are shown as they
    are); `room_subject` names the room's own subject (its supplier, specification, …) and
    must never name anything the room's members may not see.
    """
    kind_name, purpose = ROOM_KINDS[locale].get(room_kind, (room_kind, ""))
    card = _CardBuilder(_w(locale, "created"), locale)
    room = f"{kind_name}: {room_subject}" if room_subject else kind_name
    link = None
    if url is not None and _is_web_url(url):
        label = _w(locale, "link")
        link = f"{label}: {url}", f'<a href="{escape(url)}">{escape(label)}</a>'
    card.lines(
        _bold(f"{_w(locale, 'procurement')} {procurement_number} · {title}"),
        _field(_w(locale, "room"), room),
        _field(_w(locale, "object"), object_name) if object_name else None,
        _field(_w(locale, "stage"), STAGES[locale].get(stage, stage)) if stage else None,
        _field(_w(locale, "purpose"), purpose) if purpose else None,
        link,
    )
    card.lines(_text(_w(locale, "no_deletion")), _italic(_w(locale, "help_hint")))
    return card.build()


def _is_web_url(url: str) -> bool:
    # Only http(s) becomes a link: a javascript: or data: URL must not be clickable.
    try:
        return urlsplit(url).scheme in ("http", "https")
    except ValueError:
        return False


def help_card(locale: Locale = Locale.RU) -> Card:
    title, about, commands, aliases = HELP[locale]
    card = _CardBuilder(title, locale)
    card.lines(_text(about))
    card.items(
        None,
        [
            (f"{cmd} — {what}", f"<code>{escape(cmd)}</code> — {escape(what)}")
            for cmd, what in commands
        ],
    )
    card.lines(_italic(aliases))
    return card.build()


def refusal_message(errcode: str, locale: Locale = Locale.RU) -> str | None:
    """The words for a refusal's errcode, None when the code has none."""
    return REFUSALS[locale].get(errcode)


def refusal_card(error: Refused | InvalidInput, locale: Locale = Locale.RU) -> Card:
    """The bot's reply when a command or a decision is refused."""
    if isinstance(error, InvalidInput):
        card = _CardBuilder(f"{_w(locale, 'invalid')}: {error.error}", locale)
        card.lines(_italic(_w(locale, "help_hint")))
        return card.build()
    message = refusal_message(error.errcode, locale) or error.error
    card = _CardBuilder(f"{_w(locale, 'refused')}: {message}", locale)
    if (
        isinstance(error, ApprovalRefused)
        and error.code is RefusalCode.NOT_YOUR_TURN
        and error.current
    ):
        card.lines(_field(_w(locale, "current"), ", ".join(error.current)))
    return card.build()


def incident_card(
    kind: str, sender: str, locale: Locale = Locale.RU, room_name: str | None = None
) -> Card:
    """The bot's alert when something policy could not stop happened (kind: redaction, …)."""
    card = _CardBuilder(f"⚠️ {_w(locale, 'incident_' + kind)}", locale)
    card.lines(
        _field(_w(locale, "room"), room_name) if room_name else None,
        _field(_w(locale, "incident_by"), sender),
        _text(_w(locale, "incident_kept")),
    )
    return card.build()


# --- documents -------------------------------------------------------------------------


def documents_card(
    documents: Sequence[RegisteredDocument],
    names: Mapping[UserId, str] | None = None,
    locale: Locale = Locale.RU,
) -> Card:
    """The «документы» command: this room's files, oldest first, the newest kept when not all
    fit (only this room's: a supplier must never learn of another supplier's files)."""
    if not documents:
        return _CardBuilder(_w(locale, "no_documents"), locale).build()
    card = _CardBuilder(_w(locale, "documents"), locale)
    card.items(None, [_document_line(d, names, locale) for d in documents], latest=True)
    card.lines(_italic(_w(locale, "documents_note")))
    return card.build()


def _document_line(
    document: RegisteredDocument, names: Mapping[UserId, str] | None, locale: Locale
) -> _Line:
    details = ", ".join(
        part for part in (document.mime_type, file_size(document.size, locale)) if part is not None
    )
    who = f"{_w(locale, 'uploaded_by')}: {_name(document.uploader, names)}"
    when = format_datetime(document.uploaded_at, locale)
    plain = f"{document.filename} ({details}) — {who}, {when}"
    markup = (
        f"<b>{escape(document.filename)}</b> ({escape(details)}) — {escape(who)}, {escape(when)}"
    )
    return plain, markup


def seen_card(
    document: RegisteredDocument,
    sightings: Sequence[Sighting],
    names: Mapping[UserId, str] | None = None,
    locale: Locale = Locale.RU,
) -> Card:
    """The «кто видел» command: who has read the room past the document, and the caveat
    that private read receipts never reach the bot."""
    card = _CardBuilder(f"{_w(locale, 'seen')}: {document.filename}", locale)
    card.lines(
        _field(
            _w(locale, "uploaded_by"),
            f"{_name(document.uploader, names)}, {format_datetime(document.uploaded_at, locale)}",
        )
    )
    if sightings:
        card.items(
            None,
            [
                _text(f"{_name(s.user, names)} — {format_datetime(s.ts, locale)}")
                for s in sightings
            ],
        )
    else:
        card.lines(_text(_w(locale, "seen_nobody")))
    card.lines(_italic(_w(locale, "seen_note")))
    return card.build()


def document_not_found_card(query: str, locale: Locale = Locale.RU) -> Card:
    """No file of this room matches what was asked (other rooms are never searched)."""
    if not query:
        return _CardBuilder(_w(locale, "no_documents"), locale).build()
    card = _CardBuilder(f"{_w(locale, 'document_not_found')}: {query}", locale)
    card.lines(_italic(_w(locale, "help_hint")))
    return card.build()


def document_too_large_card(
    filename: str, size: int | None, limit: int, locale: Locale = Locale.RU
) -> Card:
    """A file posted in a room that the registry cannot keep: over `documents.max_bytes`."""
    card = _CardBuilder(f"⚠️ {_w(locale, 'document_too_large')}: {filename}", locale)
    shown = file_size(size, locale) if size is not None else f"> {file_size(limit, locale)}"
    card.lines(
        _text(_w(locale, "document_limit").format(size=shown, limit=file_size(limit, locale)))
    )
    return card.build()
