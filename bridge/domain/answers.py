"""The assistant's cards: help generated from the command table, hints, confirmations, status,
tasks and search results."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from html import escape

from .approval import Decision
from .card import Card, CardBuilder, Line, field, format_date, format_datetime, italic, link, text
from .commands import COMMANDS, ROOMS, CommandSpec, Place, Role
from .ids import UserId
from .locale import Locale
from .phrases import BUTTONS, PHRASES, PLACES, ROLES
from .request_form import FieldKind, FormField
from .search import snippet


def say(locale: Locale, key: str, **values: object) -> str:
    phrase = PHRASES[locale][key]
    return phrase.format(**values) if values else phrase


def button(locale: Locale, key: str) -> str:
    return BUTTONS[locale][key]


def _one_line(message: str) -> Card:
    return Card(message, escape(message))


# --- help and hints ----------------------------------------------------------------------


def help_card(specs: Sequence[CommandSpec], locale: Locale, *, buttons: bool = False) -> Card:
    """What this person may do here, from the command table; `buttons` when the card carries
    them (the direct chat's menu)."""
    card = CardBuilder(say(locale, "help_title"), locale)
    card.lines(text(say(locale, "help_about")))
    card.items(say(locale, "help_here"), [_help_line(spec, locale) for spec in specs])
    other = Locale.EN if locale is Locale.RU else Locale.RU
    words = ", ".join(spec.word(other) for spec in specs)
    card.lines(
        italic(say(locale, "help_buttons")) if buttons else None,
        italic(say(locale, "help_aliases", words=words)),
    )
    return card.build()


def _help_line(spec: CommandSpec, locale: Locale) -> Line:
    usage = " ".join(part for part in (spec.word(locale), spec.usage[locale]) if part)
    return (
        f"{usage} — {spec.help[locale]}",
        f"<code>{escape(usage)}</code> — {escape(spec.help[locale])}",
    )


def unknown_command_card(word: str, locale: Locale) -> Card:
    return _one_line(say(locale, "unknown", word=word))


def not_allowed_card(spec: CommandSpec, roles: Iterable[Role], locale: Locale) -> Card:
    """Why a command is refused: it is for other roles, or it works elsewhere (and where)."""
    word = spec.word(locale)
    if spec.roles is not None and not spec.roles & set(roles):
        names = ROLES[locale]
        who = [names[role.value] for role in Role if role in spec.roles]
        return _one_line(say(locale, "not_yours", word=word, roles=_and(who, names["and"])))
    names = PLACES[locale]
    if spec.places == ROOMS:
        where = [names["rooms"]]
    else:
        where = [names[place.value] for place in Place if place in spec.places]
    return _one_line(say(locale, "not_here", word=word, places=_and(where, names["and"])))


def _with_link(label: str, link_text: str, url: str) -> Line:
    return link(label, url)[0], f"{escape(label)} · {link(link_text, url)[1]}"


def _and(items: Sequence[str], conjunction: str) -> str:
    return ", ".join(items[:-1]) + conjunction + items[-1] if len(items) > 1 else items[0]


def phrase_card(key: str, locale: Locale, **values: object) -> Card:
    """A one-line answer («отменено», «отменять нечего», …)."""
    return _one_line(say(locale, key, **values))


def confirm_card(what: str, locale: Locale) -> Card:
    """Asks for the click that makes a typed decision count."""
    card = CardBuilder(f"{say(locale, 'confirm_title')}: {what}", locale)
    card.lines(
        italic(
            say(
                locale,
                "confirm_note",
                confirm=button(locale, "confirm"),
                decline=button(locale, "decline"),
            )
        )
    )
    return card.build()


def decision_title(decision: Decision, title: str, comment: str | None, locale: Locale) -> str:
    """«согласовать «ТКА № 234/01-02» с комментарием «…»»: what a confirmation confirms."""
    approving = decision is Decision.APPROVED
    what = say(locale, "confirm_approve" if approving else "confirm_reject", title=title)
    if comment:
        what += say(locale, "with_comment" if approving else "with_reason", comment=comment)
    return what


def every_word() -> frozenset[str]:
    """Every word of every command, both languages (for tests and for the help's aliases)."""
    return frozenset(w for spec in COMMANDS for ws in spec.words.values() for w in ws)


# --- status ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OpenVote:
    question: str
    turnout: str  # «Проголосовало 3 из 5 · кворум 3 — набран»
    deadline: datetime
    missing: tuple[UserId, ...]  # who has not answered (shown to the buyer's people only)


@dataclass(frozen=True, slots=True)
class OpenApproval:
    title: str
    current: tuple[UserId, ...]  # whose turn it is
    document_pending: bool


@dataclass(frozen=True, slots=True)
class RoomLink:
    name: str
    url: str


@dataclass(frozen=True, slots=True)
class RoomStatus:
    number: str
    title: str
    stage: str  # the stage's name in the locale
    stage_since: datetime | None
    votes: tuple[OpenVote, ...]
    approvals: tuple[OpenApproval, ...]
    documents_pending: int
    rooms: tuple[RoomLink, ...]  # the asker's other rooms of the procurement
    show_people: bool  # the buyer's people see who has not answered; suppliers do not


def status_card(status: RoomStatus, names: Mapping[UserId, str] | None, locale: Locale) -> Card:
    card = CardBuilder(say(locale, "status_title", number=status.number), locale)
    since = (
        " " + say(locale, "stage_since", date=format_date(status.stage_since.date(), locale))
        if status.stage_since
        else ""
    )
    card.lines(text(f"«{status.title}»"), field(say(locale, "stage"), status.stage + since))
    lines = [_vote_line(v, status.show_people, names, locale) for v in status.votes]
    lines += [_approval_line(a, status.show_people, names, locale) for a in status.approvals]
    if status.documents_pending:
        lines.append(text(say(locale, "documents_pending", count=status.documents_pending)))
    if lines:
        card.items(say(locale, "open_here"), lines)
    else:
        card.lines(italic(say(locale, "nothing_open")))
    if status.rooms:
        card.items(say(locale, "rooms_title"), [link(r.name, r.url) for r in status.rooms])
    return card.build()


def _vote_line(
    vote: OpenVote, show_people: bool, names: Mapping[UserId, str] | None, locale: Locale
) -> Line:
    line = say(
        locale,
        "vote_line",
        question=vote.question,
        turnout=vote.turnout,
        deadline=format_datetime(vote.deadline, locale),
    )
    if show_people and vote.missing:
        line += f"; {say(locale, 'not_answered')}: {_people(vote.missing, names)}"
    return text(line)


def _approval_line(
    approval: OpenApproval, show_people: bool, names: Mapping[UserId, str] | None, locale: Locale
) -> Line:
    if approval.document_pending:
        state = say(locale, "document_pending")
    elif show_people and approval.current:
        state = say(locale, "turn_of", people=_people(approval.current, names))
    else:
        state = "…"
    return text(say(locale, "approval_line", title=approval.title, state=state))


def _people(users: Sequence[UserId], names: Mapping[UserId, str] | None) -> str:
    return ", ".join((names or {}).get(user) or user for user in users)


@dataclass(frozen=True, slots=True)
class ProcurementLine:
    number: str
    title: str
    stage: str
    waiting: int  # tasks waiting for the asker
    url: str | None  # a room of theirs in it


def procurements_card(lines: Sequence[ProcurementLine], locale: Locale) -> Card:
    """`статус` in a direct chat: the asker's procurements and what waits for them."""
    if not lines:
        return phrase_card("no_procurements", locale)
    card = CardBuilder(say(locale, "your_procurements"), locale)
    rows: list[Line] = []
    for p in lines:
        label = f"№ {p.number} «{p.title}» — {p.stage}"
        if p.waiting:
            label += f"; {say(locale, 'waits_for_you', count=p.waiting)}"
        # Element shows a link to a room as the room's name: the words stay outside it.
        rows.append(_with_link(label, say(locale, "open_link"), p.url) if p.url else text(label))
    card.items(None, rows)
    return card.build()


# --- tasks -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Task:
    kind: str  # "vote" or "approval"
    title: str  # the vote's question, the approval's document
    number: str  # the procurement's
    deadline: datetime | None
    url: str  # where to answer


def tasks_card(tasks: Sequence[Task], locale: Locale) -> Card:
    """`мои задачи`: every vote and approval waiting for the asker, oldest deadline first."""
    if not tasks:
        return phrase_card("no_tasks", locale)
    card = CardBuilder(say(locale, "tasks_title"), locale)
    card.items(None, [_task_line(task, locale) for task in tasks])
    return card.build()


def _task_line(task: Task, locale: Locale) -> Line:
    deadline = format_datetime(task.deadline, locale) if task.deadline else ""
    if task.kind == "vote":
        label = say(
            locale, "task_vote", question=task.title, number=task.number, deadline=deadline
        )
    else:
        until = say(locale, "until_date", deadline=deadline) if deadline else ""
        label = say(locale, "task_approval", title=task.title, number=task.number, deadline=until)
    return link(label, task.url)


# --- search ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Found:
    sender: str  # a display name
    when: datetime
    room: str  # the room's name
    text: str
    url: str  # the event's permalink


def search_card(
    query: str, found: Sequence[Found], shown_before: int, more: bool, locale: Locale
) -> Card:
    if not found:
        key = "search_end" if shown_before else "search_none"
        return phrase_card(key, locale)
    card = CardBuilder(say(locale, "search_title", query=query), locale)
    card.items(None, [_found_line(hit, query, locale) for hit in found])
    if more:
        card.lines(italic(say(locale, "search_more", shown=shown_before + len(found))))
    return card.build()


def _found_line(hit: Found, query: str, locale: Locale) -> Line:
    head = f"{hit.sender}, {format_datetime(hit.when, locale)}, {hit.room}"
    piece = snippet(hit.text, query)
    plain = f"{head}: {piece} — {hit.url}"
    markup = (
        f"<b>{escape(hit.sender)}</b>, {escape(format_datetime(hit.when, locale))}, "
        f'<a href="{escape(hit.url, quote=True)}">{escape(hit.room)}</a>: {escape(piece)}'
    )
    return plain, markup


# --- reminders ---------------------------------------------------------------------------


def reminder_card(key: str, url: str, locale: Locale, **values: object) -> Card:
    """A reminder in a direct chat: what waits, the link to it, and the buttons under it."""
    card = CardBuilder(f"⏰ {say(locale, 'reminder_title')}", locale)
    card.lines(
        text(say(locale, key, **values)),
        link(say(locale, "open_link"), url),
        italic(say(locale, "reminder_buttons")),
    )
    return card.build()


# --- requests ----------------------------------------------------------------------------


def question_card(
    field: FormField, step: int, total: int, problem: str | None, locale: Locale
) -> Card:
    """One question of a request; `problem` says why the last answer was not taken."""
    card = CardBuilder(say(locale, "request_title"), locale)
    card.lines(
        italic(problem) if problem else None,
        text(say(locale, "request_step", step=step, total=total)),
        text(field.question[locale]),
    )
    if field.options:
        card.lines(italic(say(locale, "request_options") + " " + " · ".join(field.options)))
    card.lines(italic(say(locale, "request_cancel_hint")))
    return card.build()


def summary_card(fields: Sequence[FormField], answers: Mapping[str, str], locale: Locale) -> Card:
    card = CardBuilder(say(locale, "request_summary"), locale)
    card.items(None, _answer_lines(fields, answers, locale))
    card.lines(
        italic(
            say(
                locale,
                "request_send",
                send=button(locale, "send"),
                cancel=button(locale, "cancel"),
            )
        )
    )
    return card.build()


def request_answer_card(
    accepted: bool,
    number: str | None,
    reason: str | None,
    fields: Sequence[FormField],
    answers: Mapping[str, object],
    locale: Locale,
) -> Card:
    title = (
        say(locale, "request_accepted", number=number)
        if accepted
        else say(locale, "request_rejected")
    )
    card = CardBuilder(title, locale)
    if reason:
        card.lines(field(say(locale, "reason_label"), reason))
    card.items(None, _answer_lines(fields, answers, locale))
    return card.build()


def _answer_lines(
    fields: Sequence[FormField], answers: Mapping[str, object], locale: Locale
) -> list[Line]:
    return [
        field(f.question[locale].rstrip("?？ "), shown_answer(f, str(answers[f.name]), locale))
        for f in fields
        if f.name in answers
    ]


def shown_answer(form_field: FormField, value: str, locale: Locale) -> str:
    """An answer as people write it («12,5», «15.03.2026»); it is kept and sent as a
    machine reads it («12.5», «2026-03-15»)."""
    if form_field.kind is FieldKind.NUMBER and locale is Locale.RU:
        return value.replace(".", ",")
    if form_field.kind is FieldKind.DATE:
        try:
            return format_date(date.fromisoformat(value), locale)
        except ValueError:
            return value
    return value
