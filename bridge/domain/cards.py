"""What the bot posts about votes, approvals, rooms and documents, in Russian and English."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
from .card import (
    Card,
    CardBuilder,
    Line,
    bold,
    display_name,
    field,
    format_date,
    format_datetime,
    italic,
    text,
    word,
)
from .errors import InvalidInput, Refused
from .ids import UserId
from .locale import Locale
from .money import days, file_size, format_money, voted_of
from .registry import RegisteredDocument, Sighting
from .vote import CloseReason, VoteState, VoteSubject, tally
from .words import HELP, REFUSALS, ROOM_KINDS, STAGES, SUBJECT_KINDS, WORDS

# --- votes -----------------------------------------------------------------------------


def voting_card(state: VoteState, locale: Locale = Locale.RU) -> Card:
    """The seed's voting card: what is voted on, the terms, the rules of this vote."""
    card = CardBuilder(_terms_title(state, locale), locale)
    _write_terms(card, state, locale)
    return card.build()


def _terms_title(state: VoteState, locale: Locale) -> str:
    return f"{word(locale, 'vote')}: {state.request.question}"


def _write_terms(card: CardBuilder, state: VoteState, locale: Locale) -> None:
    request = state.request
    if request.subject is not None:
        card.lines(*_subject_lines(request.subject, locale))
    card.lines(
        field(word(locale, "options"), " · ".join(o.label for o in request.options)),
        field(
            word(locale, "quorum"),
            f"{request.quorum} · {word(locale, 'voters')}: {len(state.voters)}",
        ),
        field(word(locale, "until"), format_datetime(request.closes_at, locale)),
        italic(word(locale, "secret" if not request.disclosed else "open")),
    )
    card.lines(text(word(locale, "how_to_vote")))


def _subject_lines(subject: VoteSubject, locale: Locale) -> list[Line | None]:
    kind = SUBJECT_KINDS[locale].get(subject.kind or "", subject.kind or "")
    heading = " ".join(part for part in (kind, subject.number or "") if part)
    document = subject.document
    document_text = None
    if document is not None:
        document_text = document.info.filename
        if document.size is not None:
            document_text += f" ({file_size(document.size, locale)})"
    return [
        bold(heading) if heading else None,
        field(word(locale, "supplier"), subject.supplier) if subject.supplier else None,
        (
            field(word(locale, "delivery_term"), days(subject.delivery_term_days, locale))
            if subject.delivery_term_days is not None
            else None
        ),
        (
            field(word(locale, "delivery_date"), format_date(subject.delivery_date, locale))
            if subject.delivery_date is not None
            else None
        ),
        (
            field(
                word(locale, "cost_without_vat"),
                format_money(subject.cost_without_vat, subject.currency, locale),
            )
            if subject.cost_without_vat is not None
            else None
        ),
        (
            field(
                word(locale, "cost_with_vat"),
                format_money(subject.cost_with_vat, subject.currency, locale),
            )
            if subject.cost_with_vat is not None
            else None
        ),
        field(word(locale, "document"), document_text) if document_text else None,
    ]


def turnout_line(state: VoteState, locale: Locale = Locale.RU) -> str:
    """«Проголосовало 6 из 10 · кворум 6 — набран»; never who has not voted yet."""
    result = tally(state)
    quorum = word(locale, "quorum_line").format(
        quorum=result.quorum,
        state=word(locale, "reached" if result.quorum_reached else "not_reached"),
    )
    return f"{voted_of(result.turnout, result.voters, locale)} · {quorum}"


def vote_status_card(state: VoteState, locale: Locale = Locale.RU) -> Card:
    """The progress of a vote, for the pinned card and the «голосование» command."""
    if not state.is_open:
        return vote_result_card(state, locale)
    card = CardBuilder(_progress_title(state, locale), locale)
    _write_progress(card, state, locale)
    return card.build()


def _progress_title(state: VoteState, locale: Locale) -> str:
    return f"{word(locale, 'vote_running')}: {state.request.question}"


def _write_progress(card: CardBuilder, state: VoteState, locale: Locale) -> None:
    card.lines(
        text(turnout_line(state, locale)),
        field(word(locale, "until"), format_datetime(state.request.closes_at, locale)),
    )


def vote_result_card(state: VoteState, locale: Locale = Locale.RU) -> Card:
    """The result: per option, turnout and quorum, outcome, and how the vote closed."""
    card = CardBuilder(_result_title(state, locale), locale)
    _write_result(card, state, locale)
    return card.build()


def _result_title(state: VoteState, locale: Locale) -> str:
    cancelled = state.close_reason is CloseReason.CANCELLED
    title = word(locale, "vote_cancelled" if cancelled else "vote_done")
    return f"{title}: {state.request.question}"


def _write_result(card: CardBuilder, state: VoteState, locale: Locale) -> None:
    request = state.request
    result = tally(state)
    cancelled = state.close_reason is CloseReason.CANCELLED
    card.items(
        word(locale, "results"),
        [text(f"{c.option.label} — {c.count}") for c in result.counts],
    )
    if result.outcome is not None:
        winner = request.option(result.outcome)
        outcome = winner.label if winner is not None else result.outcome
    else:
        outcome = word(locale, "no_quorum" if not result.quorum_reached else "tie")
    closed = None
    if state.close_reason is not None and state.closed_at is not None:
        how = word(locale, f"closed_{state.close_reason.value}")
        closed = field(
            word(locale, "closed"), f"{how}, {format_datetime(state.closed_at, locale)}"
        )
    card.lines(
        text(turnout_line(state, locale)),
        None if cancelled else field(word(locale, "outcome"), outcome),
        closed,
        field(word(locale, "reason"), state.cancel_reason) if state.cancel_reason else None,
    )


def live_vote_card(state: VoteState, locale: Locale = Locale.RU) -> Card:
    """The voting card as posted and then kept current by edits: the terms, then the progress
    while open («Проголосовало 6 из 10 · кворум 6 — набран»), the result once closed.

    One card, not two glued together, so that terms and progress share one budget."""
    card = CardBuilder(_terms_title(state, locale), locale)
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
        return CardBuilder(word(locale, "no_open_votes"), locale).build()
    card = CardBuilder(word(locale, "open_votes"), locale)
    for state in states:
        answered = {b.user for b in state.counted_ballots()}
        waiting = [display_name(user, names) for user in state.voters if user not in answered]
        card.lines(
            bold(state.request.question),
            text(turnout_line(state, locale)),
            field(word(locale, "until"), format_datetime(state.request.closes_at, locale)),
            field(word(locale, "not_answered"), ", ".join(waiting)) if waiting else None,
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
    card = CardBuilder(f"{word(locale, 'approval')}: {what or info.filename}", locale)
    card.lines(
        field(word(locale, "series"), info.series) if info.series else None,
        (
            field(word(locale, "valid_until"), format_date(info.valid_until, locale))
            if info.valid_until is not None
            else None
        ),
        field(word(locale, "file"), info.filename),
        field(word(locale, "mode"), word(locale, request.mode.value)),
        field(word(locale, "group"), request.group) if request.group else None,
        text(word(locale, "signature_required")) if request.require_signature else None,
        (
            field(word(locale, "deadline"), format_datetime(request.deadline, locale))
            if request.deadline is not None
            else None
        ),
    )
    current = state.current_approvers()
    numbered = request.mode is ApprovalMode.SEQUENTIAL
    card.items(
        word(locale, "participants"),
        [
            _step_line(step, i, numbered, step.approver in current, state.is_open, locale, names)
            for i, step in enumerate(state.steps)
        ],
    )
    if state.is_open:
        card.lines(
            field(word(locale, "current"), ", ".join(display_name(u, names) for u in current)),
            italic(word(locale, "how_to_decide")),
        )
    else:
        assert state.outcome is not None
        card.lines(
            field(word(locale, "outcome"), word(locale, f"outcome_{state.outcome.value}")),
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
) -> Line:
    if step.status is StepStatus.APPROVED:
        mark, state = "✅", word(locale, "approved")
    elif step.status is StepStatus.REJECTED:
        mark, state = "❌", word(locale, "rejected")
    elif is_current:
        mark, state = "⏳", word(locale, "waiting")
    else:
        mark, state = "—", word(locale, "queued" if route_open else "not_needed")
    parts = [state]
    if step.decided_at is not None:
        parts.append(format_datetime(step.decided_at, locale))
    if step.signature_ok:
        parts.append(word(locale, "signed"))
    number = f"{index + 1}. " if numbered else ""
    plain = f"{number}{mark} {display_name(step.approver, names)} — {', '.join(parts)}"
    markup = escape(plain)
    if step.comment:
        quoted = f"«{step.comment}»" if locale is Locale.RU else f"“{step.comment}”"
        plain += f": {quoted}"
        markup += f": <i>{escape(quoted)}</i>"
    return plain, markup


def _reason_line(state: ApprovalState, locale: Locale) -> Line | None:
    if state.outcome is Outcome.CANCELLED and state.cancel_reason:
        return field(word(locale, "reason"), state.cancel_reason)
    if state.outcome is Outcome.REJECTED:
        reason = next((s.comment for s in state.steps if s.status is StepStatus.REJECTED), None)
        return field(word(locale, "reason"), reason) if reason else None
    return None


def signature_card(result: Mapping[str, object], locale: Locale = Locale.RU) -> Card:
    """What the bot says of a signature file: verified, or which check failed and why."""
    if result.get("ok"):
        card = CardBuilder(word(locale, "signature_ok"), locale)
        card.lines(
            field(word(locale, "signature_signer"), str(result.get("signer_subject") or "—")),
            text(word(locale, "signature_next")),
        )
        return card.build()
    card = CardBuilder(word(locale, "signature_bad"), locale)
    check = str(result.get("failed_check") or "parse")
    card.lines(
        field(word(locale, "signature_check"), WORDS[locale].get(f"check_{check}", check)),
        italic(str(result.get("reason") or "")),
    )
    return card.build()


def approval_poll_answers(locale: Locale = Locale.RU) -> list[tuple[str, str]]:
    """The approval card's poll: (answer id, label)."""
    return [("approve", word(locale, "approve_option")), ("reject", word(locale, "reject_option"))]


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
    card = CardBuilder(word(locale, "created"), locale)
    room = f"{kind_name}: {room_subject}" if room_subject else kind_name
    link = None
    if url is not None and _is_web_url(url):
        label = word(locale, "link")
        link = f"{label}: {url}", f'<a href="{escape(url)}">{escape(label)}</a>'
    card.lines(
        bold(f"{word(locale, 'procurement')} {procurement_number} · {title}"),
        field(word(locale, "room"), room),
        field(word(locale, "object"), object_name) if object_name else None,
        field(word(locale, "stage"), STAGES[locale].get(stage, stage)) if stage else None,
        field(word(locale, "purpose"), purpose) if purpose else None,
        link,
    )
    card.lines(text(word(locale, "no_deletion")), italic(word(locale, "help_hint")))
    return card.build()


def _is_web_url(url: str) -> bool:
    # Only http(s) becomes a link: a javascript: or data: URL must not be clickable.
    try:
        return urlsplit(url).scheme in ("http", "https")
    except ValueError:
        return False


def help_card(locale: Locale = Locale.RU) -> Card:
    title, about, commands, aliases = HELP[locale]
    card = CardBuilder(title, locale)
    card.lines(text(about))
    card.items(
        None,
        [
            (f"{cmd} — {what}", f"<code>{escape(cmd)}</code> — {escape(what)}")
            for cmd, what in commands
        ],
    )
    card.lines(italic(aliases))
    return card.build()


def refusal_message(errcode: str, locale: Locale = Locale.RU) -> str | None:
    """The words for a refusal's errcode, None when the code has none."""
    return REFUSALS[locale].get(errcode)


def refusal_card(error: Refused | InvalidInput, locale: Locale = Locale.RU) -> Card:
    """The bot's reply when a command or a decision is refused."""
    if isinstance(error, InvalidInput):
        card = CardBuilder(f"{word(locale, 'invalid')}: {error.error}", locale)
        card.lines(italic(word(locale, "help_hint")))
        return card.build()
    message = refusal_message(error.errcode, locale) or error.error
    card = CardBuilder(f"{word(locale, 'refused')}: {message}", locale)
    if (
        isinstance(error, ApprovalRefused)
        and error.code is RefusalCode.NOT_YOUR_TURN
        and error.current
    ):
        card.lines(field(word(locale, "current"), ", ".join(error.current)))
    return card.build()


def incident_card(
    kind: str, sender: str, locale: Locale = Locale.RU, room_name: str | None = None
) -> Card:
    """The bot's alert when something policy could not stop happened (kind: redaction, …)."""
    card = CardBuilder(f"⚠️ {word(locale, 'incident_' + kind)}", locale)
    card.lines(
        field(word(locale, "room"), room_name) if room_name else None,
        field(word(locale, "incident_by"), sender),
        text(word(locale, "incident_kept")),
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
        return CardBuilder(word(locale, "no_documents"), locale).build()
    card = CardBuilder(word(locale, "documents"), locale)
    card.items(None, [_document_line(d, names, locale) for d in documents], latest=True)
    card.lines(italic(word(locale, "documents_note")))
    return card.build()


def _document_line(
    document: RegisteredDocument, names: Mapping[UserId, str] | None, locale: Locale
) -> Line:
    details = ", ".join(
        part for part in (document.mime_type, file_size(document.size, locale)) if part is not None
    )
    who = f"{word(locale, 'uploaded_by')}: {display_name(document.uploader, names)}"
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
    card = CardBuilder(f"{word(locale, 'seen')}: {document.filename}", locale)
    card.lines(
        field(
            word(locale, "uploaded_by"),
            f"{display_name(document.uploader, names)}, "
            f"{format_datetime(document.uploaded_at, locale)}",
        )
    )
    if sightings:
        card.items(
            None,
            [
                text(f"{display_name(s.user, names)} — {format_datetime(s.ts, locale)}")
                for s in sightings
            ],
        )
    else:
        card.lines(text(word(locale, "seen_nobody")))
    card.lines(italic(word(locale, "seen_note")))
    return card.build()


def document_not_found_card(query: str, locale: Locale = Locale.RU) -> Card:
    """No file of this room matches what was asked (other rooms are never searched)."""
    if not query:
        return CardBuilder(word(locale, "no_documents"), locale).build()
    card = CardBuilder(f"{word(locale, 'document_not_found')}: {query}", locale)
    card.lines(italic(word(locale, "help_hint")))
    return card.build()


def document_too_large_card(
    filename: str, size: int | None, limit: int, locale: Locale = Locale.RU
) -> Card:
    """A file posted in a room that the registry cannot keep: over `documents.max_bytes`."""
    card = CardBuilder(f"⚠️ {word(locale, 'document_too_large')}: {filename}", locale)
    shown = file_size(size, locale) if size is not None else f"> {file_size(limit, locale)}"
    card.lines(
        text(word(locale, "document_limit").format(size=shown, limit=file_size(limit, locale)))
    )
    return card.build()
