"""The procurement dossier (DESIGN §6): one procurement's audit log entries as self-contained
HTML pages an auditor or a court reads offline — an index of the procurement and a readable
transcript of each of its rooms."""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from typing import Any, TypeGuard

from .events import POLL_END, POLL_RESPONSE_TYPES, POLL_START, TEXT
from .locale import Locale
from .money import file_size
from .text import REPLACEMENT, clean_text
from .words import ROOM_KINDS, WORDS

# Bidi embeddings, overrides and isolates reorder what a reader sees (a right-to-left override
# makes "invoice<U+202E>fdp.exe" read as "invoiceexe.pdf"): in a document that decides a
# dispute they are shown as replaced instead.
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_URL_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
# A time, index or size beyond this is not one the log could hold: it is shown as data.
_MAX_NUMBER = 2**63 - 1
# The log's time and the sender's homeserver clock differ by this much in the ordinary course.
_CLOCK_SLACK_MS = 60_000
_POLL_START_TYPES = (POLL_START, "m.poll.start")
_POLL_START_KEYS = (POLL_START, "m.poll.start", "m.poll")
_POLL_END_TYPES = (POLL_END, "m.poll.end")
_FILE_MSGTYPES = ("m.file", "m.image", "m.video", "m.audio")
_SYSTEM_KINDS = ("webhook", "callback", "callback.answer")
_ENFORCEMENT_KINDS = ("enforcement", "incident")
_VOTE_KINDS = ("vote.ballot", "vote.result")
_APPROVAL_KINDS = ("approval.decision", "approval.signature", "approval.outcome")
# Kinds a section of the index shows; a Matrix event there is a room's, in its transcript.
_INDEXED_KINDS = (
    "matrix.event",
    "document",
    *_SYSTEM_KINDS,
    *_ENFORCEMENT_KINDS,
    *_VOTE_KINDS,
    *_APPROVAL_KINDS,
)


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One entry of the transparency log; `payload` is None when it was kept as a blob
    (named by `payload_sha256`) and not included."""

    index: int
    kind: str
    time: int  # ms since the epoch, UTC: when the bridge recorded the fact
    procurement: str | None
    room: str | None
    subject: str | None
    payload: Mapping[str, Any] | None
    payload_sha256: str | None = None

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> LogEntry:
        """The entry from its JSON object; ValueError names a field that cannot be one.

        Only the envelope is checked: the payload is shown as it is, whatever it holds.
        """
        payload = obj.get("payload")
        if payload is not None and not isinstance(payload, Mapping):
            raise ValueError(f"payload: expected an object, got {type(payload).__name__}")
        return cls(
            index=_entry_number(obj, "index", minimum=0),
            kind=_entry_text(obj, "kind", optional=False) or "",
            time=_entry_number(obj, "time", minimum=-_MAX_NUMBER),
            procurement=_entry_text(obj, "procurement"),
            room=_entry_text(obj, "room"),
            subject=_entry_text(obj, "subject"),
            payload=payload,
            payload_sha256=_entry_text(obj, "payload_sha256"),
        )


@dataclass(frozen=True, slots=True)
class RoomInfo:
    """What the bridge knows of a room: its name and its kind ("organisation", "supplier",
    "commission", "approval", "specification", "shipment", "space", …)."""

    name: str
    kind: str


def render_dossier(
    procurement_id: str,
    entries: Sequence[LogEntry],
    rooms: Mapping[str, RoomInfo],
    locale: Locale,
    blob_href: Callable[[str], str],
) -> dict[str, str]:
    """The dossier's pages by relative path: `index.html` and `rooms/<n>.html` per room.

    An entry belongs to the dossier when it names the procurement, or names none and is in
    one of `rooms`; other procurements' entries are left out. Rooms are numbered in the order
    of `rooms`, then rooms the entries name that `rooms` does not, as they first appear.
    `blob_href(sha256)` is a blob's link as seen from `index.html`; transcripts, one folder
    down, get a relative link one level up.
    """
    ctx = _context(procurement_id, entries, rooms, locale, blob_href)
    pages = {"index.html": _index_page(ctx)}
    for room in ctx.rooms.values():
        pages[f"rooms/{room.number}.html"] = _room_page(ctx, room)
    return pages


# --- words ------------------------------------------------------------------------------

_WORDS: dict[Locale, dict[str, str]] = {
    Locale.RU: {
        "title": "Досье закупки {id}",
        "room_title": "{room} — переписка",
        "back": "← к досье закупки {id}",
        "summary": "Записей журнала прозрачности в досье: {count}, от {first} до {last}; "
        "время записи — с {start} по {end}.",
        "by_kind": "По видам записей: {counts}.",
        "empty": "В журнале нет записей этой закупки.",
        "verify_title": "Как проверить",
        "verify": "Номер «№» у каждой записи — её номер в журнале прозрачности. Журнал "
        "подписывается контрольными точками, и их копии хранятся вне моста. Выгрузка "
        "проверяется без моста и его базы: {verify} сверяет подпись контрольной точки "
        "{checkpoint}, хеш каждой записи и каждого файла; с {earlier} — ещё и то, что журнал "
        "продолжает полученную раньше контрольную точку, а не переписан. Ключ проверки "
        "печатает {key}.",
        "time_note": "Время везде — UTC, время записи в журнал.",
        "rooms": "Чаты закупки",
        "documents": "Документы и файлы",
        "votes": "Голосования",
        "approvals": "Согласования",
        "enforcement": "Доступ к чатам и инциденты",
        "system": "Обмен с системой закупок",
        "other": "Прочие записи",
        "none": "нет",
        "room_line": "{room} — {kind}, записей: {count}",
        "undescribed_room": "чат без описания",
        "no_entries": "В журнале нет записей этого чата.",
        "in_room": "чат: {room}",
        "edited": "исправлено: {refs}",
        "edit_of": "✎ исправление сообщения {ref}",
        "before": "было: {text}",
        "edit_foreign": "исправление не от автора сообщения — клиенты Matrix его не показывают",
        "deleted": "🗑 Удалено: {who}, {time} ({ref}). Выше — исходное содержимое из журнала: "
        "сервер его стёр, журнал сохранил.",
        "arrived_redacted": "Событие пришло уже удалённым: сервер стёр содержимое до того, "
        "как мост его получил.",
        "redaction": "{who}: удаление сообщения {ref}",
        "reason": "причина: {reason}",
        "reply_to": "↩ ответ на {ref}",
        "thread": "в ветке {ref}",
        "server_time": "время сервера отправителя: {time}",
        "copy": "копия в выгрузке",
        "not_kept": "файл мостом не сохранён",
        "poll": "📊 Опрос: {question}",
        "poll_answer": "{who}: ответ в опросе {ref} — {answers}",
        "no_option": "ни один вариант не назван",
        "poll_end": "{who}: опрос {ref} завершён",
        "reaction": "{who}: {key} на {ref}",
        "join": "{who}: вход в чат",
        "leave": "{who}: выход из чата",
        "decline": "{who}: отказ от приглашения",
        "kick": "{who}: исключение из чата — {target}",
        "ban": "{who}: блокировка — {target}",
        "unban": "{who}: снятие блокировки — {target}",
        "invite": "{who}: приглашение — {target}",
        "uninvite": "{who}: отзыв приглашения — {target}",
        "knock": "{who}: просьба о входе",
        "rename": "{who}: новое имя — {name}",
        "profile": "{who}: изменение профиля",
        "membership": "{who}: членство {target} — {value}",
        "room_name": "{who}: название чата — {value}",
        "topic": "{who}: тема чата — {value}",
        "power_levels": "{who}: права участников — {value}",
        "join_rules": "{who}: правило входа — {value}",
        "tombstone": "{who}: чат закрыт и заменён — {value}",
        "create": "{who}: создание чата — {value}",
        "state": "{who}: состояние {type} {key} — {value}",
        "event": "{who}: событие {type} — {value}",
        "vote": "Голосование {id}",
        "outcome": "Итог: {value}",
        "counts": "голоса: {value}",
        "quorum": "кворум: {value}",
        "voters": "голосующих: {value}",
        "ballot": "{who}: {answers}",
        "message_ref": "сообщение в чате: {ref}",
        "no_result": "итог голосования в журнале не записан",
        "turnout": "учтено голосов: {value}",
        "closed_by": "завершено: {value}",
        "cancel_reason": "причина отмены: {value}",
        "counted": "учтён",
        "ignored": "не учтён: {value}",
        "approval": "Согласование {id}",
        "decision": "{who}: {decision}",
        "approve": "согласовано",
        "reject": "отклонено",
        "signature_valid": "✔ подпись действительна",
        "signature_invalid": "✘ подпись недействительна",
        "signature_absent": "подписи нет",
        "signature_other": "проверка подписи: {value}",
        "signer": "подписант: {value}",
        "approval_outcome": "Итог согласования: {value}",
        "cancelled": "отменено",
        "signed_document": "подписанный документ",
        "signature_file": "файл подписи",
        "document": "📄 Документ {name}",
        "uploader": "загрузил(а): {who}",
        "source": "источник: {value}",
        "no_outcome": "итог согласования в журнале не записан",
        "effect": "{effect}: {target}",
        "incident": "{what}: {ref}",
        "by": "кем: {who}",
        "webhook": "Вебхук {id}, тип {type}",
        "callback": "Запрос {id}, тип {type}",
        "answer": "Ответ на запрос {id}",
        "answer_status": "статус {status}",
        "delivered": "доставлен",
        "not_delivered": "не доставлен",
        "parked": "попытки прекращены",
        "answer_error": "ошибка: {error}",
        "blob_payload": "содержимое записи хранится отдельным файлом: {link}",
        "no_payload": "содержимое записи в выгрузку не включено",
        "subject": "предмет: {value}",
        "file_of": "{kind} {subject}",
    },
    Locale.EN: {
        "title": "Procurement dossier {id}",
        "room_title": "{room} — transcript",
        "back": "← back to the dossier of procurement {id}",
        "summary": "Entries of the transparency log in this dossier: {count}, from {first} to "
        "{last}; recorded from {start} to {end}.",
        "by_kind": "By kind of entry: {counts}.",
        "empty": "The log holds no entries of this procurement.",
        "verify_title": "How to verify",
        "verify": "The «№» of each entry is its number in the transparency log. The log is "
        "signed in checkpoints, and copies of them are kept outside the bridge. An export is "
        "verified without the bridge or its database: {verify} checks the signature of the "
        "checkpoint {checkpoint} and the hash of every entry and every file; with {earlier} "
        "it also proves that the log extends a checkpoint received earlier and was not "
        "rewritten. {key} prints the verifier key.",
        "time_note": "All times are UTC, the time the entry was recorded in the log.",
        "rooms": "Rooms",
        "documents": "Documents and files",
        "votes": "Votes",
        "approvals": "Approvals",
        "enforcement": "Enforcement and incidents",
        "system": "Exchange with the procurement system",
        "other": "Other entries",
        "none": "none",
        "room_line": "{room} — {kind}, entries: {count}",
        "undescribed_room": "undescribed room",
        "no_entries": "The log holds no entries of this room.",
        "in_room": "room: {room}",
        "edited": "edited: {refs}",
        "edit_of": "✎ edit of message {ref}",
        "before": "before: {text}",
        "edit_foreign": "edited by someone other than the author — Matrix clients do not show "
        "this edit",
        "deleted": "🗑 Deleted by {who} at {time} ({ref}). Above is the original content from "
        "the log: the homeserver erased it, the log kept it.",
        "arrived_redacted": "The event arrived already deleted: the homeserver erased its "
        "content before the bridge received it.",
        "redaction": "{who} deleted message {ref}",
        "reason": "reason: {reason}",
        "reply_to": "↩ reply to {ref}",
        "thread": "in the thread of {ref}",
        "server_time": "sender's server time: {time}",
        "copy": "copy in the export",
        "not_kept": "the bridge did not keep the file",
        "poll": "📊 Poll: {question}",
        "poll_answer": "{who} answered poll {ref}: {answers}",
        "no_option": "no option named",
        "poll_end": "{who} closed poll {ref}",
        "reaction": "{who}: {key} on {ref}",
        "join": "{who} joined",
        "leave": "{who} left",
        "decline": "{who} declined the invitation",
        "kick": "{who} removed {target}",
        "ban": "{who} banned {target}",
        "unban": "{who} unbanned {target}",
        "invite": "{who} invited {target}",
        "uninvite": "{who} withdrew the invitation of {target}",
        "knock": "{who} asked to join",
        "rename": "{who} is now called {name}",
        "profile": "{who} updated their profile",
        "membership": "{who}: membership of {target} — {value}",
        "room_name": "{who} named the room {value}",
        "topic": "{who} set the topic: {value}",
        "power_levels": "{who} set power levels: {value}",
        "join_rules": "{who} set the join rule: {value}",
        "tombstone": "{who} closed the room and replaced it: {value}",
        "create": "{who} created the room: {value}",
        "state": "{who} set {type} {key}: {value}",
        "event": "{who}: event {type}: {value}",
        "vote": "Vote {id}",
        "outcome": "Outcome: {value}",
        "counts": "votes: {value}",
        "quorum": "quorum: {value}",
        "voters": "voters: {value}",
        "ballot": "{who}: {answers}",
        "message_ref": "message in the room: {ref}",
        "no_result": "the log holds no result of this vote",
        "turnout": "counted: {value}",
        "closed_by": "closed: {value}",
        "cancel_reason": "cancelled because: {value}",
        "counted": "counted",
        "ignored": "not counted: {value}",
        "approval": "Approval {id}",
        "decision": "{who}: {decision}",
        "approve": "approved",
        "reject": "rejected",
        "signature_valid": "✔ signature valid",
        "signature_invalid": "✘ signature INVALID",
        "signature_absent": "no signature",
        "signature_other": "signature check: {value}",
        "signer": "signer: {value}",
        "approval_outcome": "Outcome of the approval: {value}",
        "cancelled": "cancelled",
        "signed_document": "the signed document",
        "signature_file": "the signature file",
        "document": "📄 Document {name}",
        "uploader": "uploaded by {who}",
        "source": "source: {value}",
        "no_outcome": "the log holds no outcome of this approval",
        "effect": "{effect}: {target}",
        "incident": "{what}: {ref}",
        "by": "by {who}",
        "webhook": "Webhook {id}, type {type}",
        "callback": "Callback {id}, type {type}",
        "answer": "Answer to callback {id}",
        "answer_status": "status {status}",
        "delivered": "delivered",
        "not_delivered": "not delivered",
        "parked": "no more attempts",
        "answer_error": "error: {error}",
        "blob_payload": "the entry's payload is kept as a separate file: {link}",
        "no_payload": "the entry's payload is not included in the export",
        "subject": "subject: {value}",
        "file_of": "{kind} {subject}",
    },
}

_KIND_LABELS: dict[Locale, dict[str, str]] = {
    Locale.RU: {
        "matrix.event": "событие Matrix",
        "webhook": "сообщение системы закупок",
        "callback": "запрос в систему закупок",
        "callback.answer": "ответ системы закупок",
        "vote.ballot": "бюллетень",
        "vote.result": "итог голосования",
        "approval.decision": "решение по согласованию",
        "approval.signature": "подпись",
        "approval.outcome": "итог согласования",
        "document": "документ",
        "enforcement": "действие с доступом",
        "incident": "инцидент",
    },
    Locale.EN: {
        "matrix.event": "Matrix event",
        "webhook": "webhook",
        "callback": "callback",
        "callback.answer": "answer of the procurement system",
        "vote.ballot": "ballot",
        "vote.result": "vote result",
        "approval.decision": "approval decision",
        "approval.signature": "signature",
        "approval.outcome": "approval outcome",
        "document": "document",
        "enforcement": "enforcement",
        "incident": "incident",
    },
}

# The reconciler names an effect by its class (`Kick`); people and older entries in lower case.
_EFFECTS: dict[Locale, dict[str, str]] = {
    Locale.RU: {
        "Kick": "исключение из чата",
        "Invite": "приглашение в чат",
        "SetPowerLevels": "права участников восстановлены",
        "SetAccessRules": "правила входа и истории восстановлены",
        "kick": "исключение из чата",
        "ban": "блокировка",
        "power_levels": "права участников восстановлены",
        "join_rules": "правило входа восстановлено",
        "archive": "чат переведён в архив",
        "archived": "чат переведён в архив",
    },
    Locale.EN: {
        "Kick": "removed from the room",
        "Invite": "invited to the room",
        "SetPowerLevels": "power levels restored",
        "SetAccessRules": "join and history rules restored",
        "kick": "removed from the room",
        "ban": "banned",
        "power_levels": "power levels restored",
        "join_rules": "join rule restored",
        "archive": "room archived",
        "archived": "room archived",
    },
}

_INCIDENTS: dict[Locale, dict[str, str]] = {
    Locale.RU: {
        "redaction": "удаление сообщения",
        "tombstone": "чат заменён другим (tombstone)",
        "shutdown": "чат закрыт сервером",
    },
    Locale.EN: {
        "redaction": "a message deleted",
        "tombstone": "room replaced by another (tombstone)",
        "shutdown": "room shut down by the homeserver",
    },
}

_IGNORED: dict[Locale, dict[str, str]] = {
    Locale.RU: {
        "not_a_voter": "не входит в число голосующих",
        "after_close": "после завершения",
        "unknown_option": "вариант не распознан",
        "superseded": "заменён более поздним ответом",
    },
    Locale.EN: {
        "not_a_voter": "not a voter",
        "after_close": "after the close",
        "unknown_option": "no known option",
        "superseded": "superseded by a later answer",
    },
}

# The files of a signature entry by their keys, and the words that say which is which.
_FILE_ROLES = {"document": "signed_document", "signature_file": "signature_file"}

_SPACE: dict[Locale, str] = {Locale.RU: "пространство закупки", Locale.EN: "procurement space"}
# RoomInfo kinds as the bridge's room plan names them, and as people do.
_ROOM_KIND_ALIASES = {"organisation": "org", "organization": "org"}


# --- the dossier's view of the log ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Room:
    number: int
    room_id: str
    info: RoomInfo | None


@dataclass(slots=True)
class _Poll:
    """What a poll or a vote showed its voters: the question and each answer's label."""

    question: str | None = None
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class _Context:
    """The entries of the dossier and what rendering one of them needs to know of others."""

    procurement_id: str
    locale: Locale
    blob_href: Callable[[str], str]
    entries: list[LogEntry]
    rooms: dict[str, _Room] = field(default_factory=dict)
    events: dict[str, LogEntry] = field(default_factory=dict)
    edits: dict[str, list[LogEntry]] = field(default_factory=dict)
    redactions: dict[str, LogEntry] = field(default_factory=dict)
    polls: dict[str, _Poll] = field(default_factory=dict)  # by the poll's event id
    votes: dict[str, _Poll] = field(default_factory=dict)  # by vote id
    kept_files: dict[str, list[_Blob]] = field(default_factory=dict)  # by the event's id
    names: dict[str, str] = field(default_factory=dict)

    @property
    def words(self) -> Mapping[str, str]:
        return _WORDS[self.locale]


@dataclass(slots=True)
class _RoomState:
    """Who is called what and who is in, as a room's transcript is read in order."""

    names: dict[str, str] = field(default_factory=dict)
    membership: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Event:
    """A Matrix event of a transcript with where it is read."""

    ctx: _Context
    state: _RoomState
    here: int
    entry: LogEntry
    event: Mapping[str, Any]
    content: Mapping[str, Any]

    @property
    def sender(self) -> str:
        return _str(self.event, "sender") or "?"

    @property
    def event_type(self) -> str:
        return _str(self.event, "type") or "?"


@dataclass(frozen=True, slots=True)
class _Blob:
    sha256: str
    size: int
    name: str | None


def _context(
    procurement_id: str,
    entries: Sequence[LogEntry],
    rooms: Mapping[str, RoomInfo],
    locale: Locale,
    blob_href: Callable[[str], str],
) -> _Context:
    own = [e for e in entries if _belongs(e, procurement_id, rooms)]
    ctx = _Context(procurement_id, locale, blob_href, sorted(own, key=lambda e: e.index))
    _number_rooms(ctx, rooms)
    for entry in ctx.entries:
        event = _event_of(entry)
        if event is not None:
            _learn_event(ctx, entry, event)
    for entry in ctx.entries:
        _learn_fact(ctx, entry)
    return ctx


def _belongs(entry: LogEntry, procurement_id: str, rooms: Mapping[str, RoomInfo]) -> bool:
    if entry.procurement is not None:
        return entry.procurement == procurement_id
    return entry.room is not None and entry.room in rooms


def _number_rooms(ctx: _Context, rooms: Mapping[str, RoomInfo]) -> None:
    room_ids = list(rooms)
    room_ids += [e.room for e in ctx.entries if e.room is not None and e.room not in rooms]
    for room_id in dict.fromkeys(room_ids):
        ctx.rooms[room_id] = _Room(len(ctx.rooms) + 1, room_id, rooms.get(room_id))


def _learn_event(ctx: _Context, entry: LogEntry, event: Mapping[str, Any]) -> None:
    """Notes what later or earlier events refer to: ids, edits, redactions, polls, names."""
    event_id = _str(event, "event_id")
    content = _map(event, "content") or {}
    event_type = _str(event, "type")
    if event_id is not None:
        ctx.events.setdefault(event_id, entry)
    edited = _relation(content, "m.replace")
    if edited is not None:
        ctx.edits.setdefault(edited, []).append(entry)
    redacted = _redaction_target(event, content) if event_type == "m.room.redaction" else None
    if redacted is not None:
        ctx.redactions.setdefault(redacted, entry)
    if event_type in _POLL_START_TYPES and event_id is not None:
        ctx.polls[event_id] = _Poll(_poll_question(content), dict(_poll_options(content)))
    if event_type == "m.room.member":
        _learn_name(ctx.names, event, content)


def _learn_fact(ctx: _Context, entry: LogEntry) -> None:
    """Notes what the bridge's own entries tell of votes and of the files it kept."""
    if entry.kind == "vote.ballot":
        _learn_ballot(ctx, entry)
    elif entry.kind == "vote.result":
        _learn_result(ctx, entry)
    elif entry.kind == "document":
        event_id = _str(entry.payload, "event_id")
        if event_id is not None:
            ctx.kept_files.setdefault(event_id, []).extend(_blobs(entry.payload))


def _learn_ballot(ctx: _Context, ballot: LogEntry) -> None:
    """A vote counts answer ids; the poll its ballots answered shows the question and labels."""
    response = ctx.events.get(_str(ballot.payload, "event_id") or "")
    content = _map(_event_of(response), "content") if response is not None else None
    poll = ctx.polls.get(_relation(content or {}, "m.reference") or "")
    if poll is not None:
        vote = ctx.votes.setdefault(_vote_of(ballot), _Poll())
        vote.question = vote.question or poll.question
        vote.labels.update(poll.labels)


def _learn_result(ctx: _Context, result: LogEntry) -> None:
    vote = ctx.votes.setdefault(_vote_of(result), _Poll())
    vote.question = _str(result.payload, "question") or vote.question
    options = (_map(result.payload, "tally") or {}).get("options")
    for option in options if isinstance(options, list) else []:
        if isinstance(option, Mapping) and _str(option, "id") and _str(option, "label"):
            vote.labels[option["id"]] = option["label"]


def _vote_of(entry: LogEntry) -> str:
    return _group_id(entry, "vote")


def _group_id(entry: LogEntry, key: str) -> str:
    """The vote or approval an entry is of: its payload says, else its subject."""
    return _str(entry.payload, key) or entry.subject or "?"


def _learn_name(
    names: dict[str, str], event: Mapping[str, Any], content: Mapping[str, Any]
) -> None:
    user = _str(event, "state_key")
    name = _str(content, "displayname")
    if user and name and content.get("membership") == "join":
        names[user] = name


# --- pages ------------------------------------------------------------------------------

_STYLE = """
*{box-sizing:border-box;overflow-wrap:anywhere}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;color:#111;
max-width:62rem;margin:1.5rem auto;padding:0 1rem}
h1{font-size:1.5rem;margin:.2rem 0 .6rem}
h2{font-size:1.2rem;border-bottom:1px solid #bbb;margin:2rem 0 .6rem;break-after:avoid}
h3{font-size:1.02rem;margin:1.2rem 0 .3rem;break-after:avoid}
p{margin:.4rem 0}
.item{margin:.25rem 0;padding:.3rem 0;border-bottom:1px solid #eee;break-inside:avoid}
.n{color:#666;font-variant-numeric:tabular-nums;white-space:nowrap;margin-right:.4rem}
.t{color:#666;font-size:.85rem;font-variant-numeric:tabular-nums;white-space:nowrap;
margin-right:.4rem}
.who{font-weight:600}
.id,code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.85em;color:#444}
.body{white-space:pre-wrap;margin:.15rem 0 0}
.notice .body{color:#444}
.small,.grey{color:#777;font-size:.85rem}
.grey{padding:.1rem 0}
.note{font-size:.85rem;color:#555;margin-top:.15rem}
.deleted{background:#fff3f3;border-left:3px solid #c55;padding-left:.5rem}
.edit{border-left:3px solid #99b;padding-left:.5rem}
.bad{color:#a00;font-weight:700}
.good{color:#070}
pre{white-space:pre-wrap;font-size:.85rem;background:#f6f6f6;padding:.4rem;margin:.2rem 0}
ul,ol{margin:.2rem 0 .2rem 1.2rem;padding:0}
@media print{
body{max-width:none;margin:0;font-size:10.5pt}
a{color:inherit}
a.blob::after{content:" (" attr(href) ")";font-size:.8em;color:#555}
pre{background:none;border:1px solid #ccc}
}
"""


def _page(ctx: _Context, title: str, body: str) -> str:
    """A page that runs nothing and loads nothing: the policy forbids it even if some text
    escaped its escaping."""
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="{ctx.locale.value}">\n<head>\n<meta charset="utf-8">\n'
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'\">\n"
        '<meta name="referrer" content="no-referrer">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        f"{body}\n</body>\n</html>\n"
    )


def _index_page(ctx: _Context) -> str:
    title = _say(ctx, "title", id=_e(ctx.procurement_id))
    sections = [
        f"<h1>{title}</h1>",
        _summary(ctx),
        _section(ctx, "rooms", _room_list(ctx)),
        _section(ctx, "documents", _documents(ctx)),
        _section(ctx, "votes", _votes(ctx)),
        _section(ctx, "approvals", _approvals(ctx)),
        _section(ctx, "enforcement", _facts_of(ctx, _ENFORCEMENT_KINDS)),
        _section(ctx, "system", _facts_of(ctx, _SYSTEM_KINDS)),
        _section(ctx, "other", _others(ctx)),
    ]
    return _page(ctx, title, "\n".join(sections))


def _room_page(ctx: _Context, room: _Room) -> str:
    title = _say(ctx, "room_title", room=_e(_room_name(ctx, room)))
    items = _transcript(ctx, room)
    body = [
        f'<p class="small"><a href="../index.html">'
        f"{_say(ctx, 'back', id=_e(ctx.procurement_id))}</a></p>",
        f"<h1>{title}</h1>",
        f'<p class="small">{_room_kind(ctx, room)} · <span class="id">{_e(room.room_id)}</span>'
        f" · {_say(ctx, 'time_note')}</p>",
        "\n".join(items) if items else f"<p>{_say(ctx, 'no_entries')}</p>",
    ]
    return _page(ctx, title, "\n".join(body))


def _section(ctx: _Context, key: str, items: Sequence[str]) -> str:
    content = "\n".join(items) if items else f'<p class="small">{_say(ctx, "none")}</p>'
    return f"<h2>{_say(ctx, key)}</h2>\n{content}"


def _summary(ctx: _Context) -> str:
    if not ctx.entries:
        return f"<p>{_say(ctx, 'empty')}</p>\n{_verify(ctx)}"
    first, last = ctx.entries[0], ctx.entries[-1]
    counts = Counter(entry.kind for entry in ctx.entries)
    by_kind = ", ".join(f"{_e(_kind_label(ctx, k))} — {n}" for k, n in counts.items())
    summary = _say(
        ctx,
        "summary",
        count=str(len(ctx.entries)),
        first=f"№ {first.index}",
        last=f"№ {last.index}",
        start=_time(first.time),
        end=_time(last.time),
    )
    return (
        f"<p>{summary}</p>\n<p>{_say(ctx, 'by_kind', counts=by_kind)}</p>\n"
        f'<p class="small">{_say(ctx, "time_note")}</p>\n{_verify(ctx)}'
    )


def _verify(ctx: _Context) -> str:
    text = _say(
        ctx,
        "verify",
        verify="<code>python -m bridge audit verify OUT/ --key VERIFIER</code>",
        checkpoint="<code>OUT/checkpoint</code>",
        earlier="<code>--checkpoint EARLIER</code>",
        key="<code>python -m bridge -c config.yaml audit key</code>",
    )
    return f"<h2>{_say(ctx, 'verify_title')}</h2>\n<p>{text}</p>"


# --- index sections ---------------------------------------------------------------------


def _room_list(ctx: _Context) -> list[str]:
    counts = Counter(entry.room for entry in ctx.entries)
    items = []
    for room in ctx.rooms.values():
        count = counts[room.room_id]
        link = f'<a href="rooms/{room.number}.html">{_e(_room_name(ctx, room))}</a>'
        line = _say(ctx, "room_line", room=link, kind=_room_kind(ctx, room), count=str(count))
        items.append(f'<div class="item">{line} <span class="id">{_e(room.room_id)}</span></div>')
    return items


def _documents(ctx: _Context) -> list[str]:
    """The documents the bridge kept, files sent to rooms it did not keep, and every file
    another entry names."""
    items = []
    for entry in ctx.entries:
        event = _event_of(entry)
        if entry.kind == "document":
            items.append(_item(entry, _fact(ctx, entry, None)))
        elif event is not None:
            if _is_file_message(event) and _str(event, "event_id") not in ctx.kept_files:
                items.append(_document_item(ctx, entry, event))
        elif entry.kind != "matrix.event":
            items.extend(_named_blob(ctx, entry, blob) for blob in _blobs(entry.payload))
    return items


def _document_item(ctx: _Context, entry: LogEntry, event: Mapping[str, Any]) -> str:
    content = _map(event, "content") or {}
    sender = _str(event, "sender") or "?"
    inner = f"{_person(ctx, sender)} {_file_line(ctx, entry, content, None)}"
    return _item(entry, inner + _room_note(ctx, entry, None))


def _named_blob(ctx: _Context, entry: LogEntry, blob: _Blob) -> str:
    # The entry itself is shown in its own section: here it is a reference, not an anchor.
    owner = _say(ctx, "file_of", kind=_e(_kind_label(ctx, entry.kind)), subject=_e(entry.subject))
    role = _FILE_ROLES.get(blob.name or "") if entry.kind == "approval.signature" else None
    name = _say(ctx, role) if role else _e(blob.name or blob.sha256)
    inner = f"{owner}: 📎 {name}, {_size(ctx, blob.size)} — {_blob_link(ctx, blob, None)}"
    return _item(entry, inner + _room_note(ctx, entry, None), anchor=False)


def _votes(ctx: _Context) -> list[str]:
    groups = _group(ctx, _VOTE_KINDS, "vote")
    return [_vote_group(ctx, vote_id, members) for vote_id, members in groups.items()]


def _vote_group(ctx: _Context, vote_id: str, members: list[LogEntry]) -> str:
    question = ctx.votes[vote_id].question if vote_id in ctx.votes else None
    heading = _say(ctx, "vote", id=_e(vote_id))
    if question:
        heading += f" — {_e(question)}"
    items = [_item(e, _fact(ctx, e, None)) for e in members]
    if not any(e.kind == "vote.result" for e in members):
        items.append(f'<p class="small">{_say(ctx, "no_result")}</p>')
    return f"<h3>{heading}</h3>\n" + "\n".join(items)


def _approvals(ctx: _Context) -> list[str]:
    groups = _group(ctx, _APPROVAL_KINDS, "approval")
    return [_approval_group(ctx, approval_id, members) for approval_id, members in groups.items()]


def _approval_group(ctx: _Context, approval_id: str, members: list[LogEntry]) -> str:
    items = [_item(e, _fact(ctx, e, None)) for e in members]
    if not any(e.kind == "approval.outcome" for e in members):
        items.append(f'<p class="small">{_say(ctx, "no_outcome")}</p>')
    return f"<h3>{_say(ctx, 'approval', id=_e(approval_id))}</h3>\n" + "\n".join(items)


def _group(ctx: _Context, kinds: Sequence[str], key: str) -> dict[str, list[LogEntry]]:
    """Entries of `kinds` by the id their payload names under `key` (else their subject)."""
    groups: dict[str, list[LogEntry]] = {}
    for entry in ctx.entries:
        if entry.kind in kinds:
            groups.setdefault(_group_id(entry, key), []).append(entry)
    return groups


def _facts_of(ctx: _Context, kinds: Sequence[str]) -> list[str]:
    return [_item(e, _fact(ctx, e, None)) for e in ctx.entries if e.kind in kinds]


def _others(ctx: _Context) -> list[str]:
    """Entries of kinds no section shows, and Matrix events of no room."""
    return [
        _item(entry, _fact(ctx, entry, None))
        for entry in ctx.entries
        if entry.kind not in _INDEXED_KINDS or (entry.kind == "matrix.event" and not entry.room)
    ]


# --- facts other than Matrix events -----------------------------------------------------


def _fact(ctx: _Context, entry: LogEntry, here: int | None) -> str:
    """One entry other than a room's event, as a line; where it is read decides its links."""
    payload = entry.payload if entry.payload is not None else {}
    render = _FACTS.get(entry.kind, _generic_fact)
    inner = render(ctx, entry, payload, here)
    if entry.payload is None:
        inner += f'<div class="note">{_missing_payload(ctx, entry, here)}</div>'
    return inner + _room_note(ctx, entry, here)


_Fact = Callable[[_Context, LogEntry, Mapping[str, Any], int | None], str]


def _ballot(ctx: _Context, entry: LogEntry, payload: Mapping[str, Any], here: int | None) -> str:
    answers = payload.get("answers")
    vote_id = _vote_of(entry)
    if _is_texts(answers):
        answered = ", ".join(_answer(ctx, vote_id, answer) for answer in answers)
    else:
        answered = _e(answers)
    line = _say(ctx, "ballot", who=_person(ctx, payload.get("voter")), answers=answered)
    return _kind_tag(ctx, entry) + line + _event_note(ctx, payload.get("event_id"), here)


def _vote_result(
    ctx: _Context, entry: LogEntry, payload: Mapping[str, Any], here: int | None
) -> str:
    """The result as the brief form says it (counts) or as the bridge's tally does."""
    tally = _map(payload, "tally")
    figures = tally if tally is not None else payload
    vote_id = _vote_of(entry)
    parts = [
        f"<b>{_say(ctx, 'outcome', value=_outcome(ctx, vote_id, figures))}</b>",
        _say(ctx, "counts", value=_counts(ctx, vote_id, figures)),
        _say(ctx, "quorum", value=_e(figures.get("quorum"))),
        _say(ctx, "voters", value=_e(figures.get("voters"))),
    ]
    for key in ("turnout", "closed_by", "cancel_reason"):
        value = figures.get(key, payload.get(key))
        if value is not None:
            shown = _closed_by(ctx, value) if key == "closed_by" else _e(value)
            parts.append(_say(ctx, key, value=shown))
    question = ctx.votes[vote_id].question if vote_id in ctx.votes else None
    heading = f"{_e(question)}: " if question and here is not None else ""
    ballots = _result_ballots(ctx, vote_id, payload.get("ballots"))
    return _kind_tag(ctx, entry) + heading + "; ".join(parts) + ballots


def _outcome(ctx: _Context, vote_id: str, figures: Mapping[str, Any]) -> str:
    outcome = figures.get("outcome")
    if outcome is None and "quorum_reached" in figures:
        # The tally names no winner without a quorum or on a tie.
        reached = figures.get("quorum_reached") is True
        return escape(WORDS[ctx.locale]["tie" if reached else "no_quorum"])
    return _answer(ctx, vote_id, outcome)


def _counts(ctx: _Context, vote_id: str, figures: Mapping[str, Any]) -> str:
    counts = figures.get("counts")
    options = figures.get("options")
    if isinstance(counts, Mapping):
        pairs = [(answer, n) for answer, n in counts.items()]
    elif isinstance(options, list):
        pairs = [(_str(o, "id"), o.get("count")) for o in options if isinstance(o, Mapping)]
    else:
        return _e(counts if counts is not None else options)
    return ", ".join(f"{_answer(ctx, vote_id, answer)} — {_e(n)}" for answer, n in pairs)


def _closed_by(ctx: _Context, value: object) -> str:
    said = WORDS[ctx.locale].get(f"closed_{value}") if isinstance(value, str) else None
    return escape(said) if said else _e(value)


def _result_ballots(ctx: _Context, vote_id: str, ballots: object) -> str:
    """The result's own list of ballots: which counted, which did not and why."""
    if not isinstance(ballots, list) or not ballots:
        return ""
    return "<ul>" + "".join(_result_ballot(ctx, vote_id, b) for b in ballots) + "</ul>"


def _result_ballot(ctx: _Context, vote_id: str, ballot: object) -> str:
    if not isinstance(ballot, Mapping):
        return f'<li class="small">{_e(ballot)}</li>'
    answers = ballot.get("answers")
    chosen = ballot.get("option", answers)
    shown = (
        _answer(ctx, vote_id, chosen)
        if not _is_texts(chosen)
        else ", ".join(_answer(ctx, vote_id, answer) for answer in chosen)
    )
    ignored = ballot.get("ignored")
    if ballot.get("counted") is True:
        verdict = _say(ctx, "counted")
    else:
        reason = _IGNORED[ctx.locale].get(ignored) if isinstance(ignored, str) else None
        verdict = _say(ctx, "ignored", value=escape(reason) if reason else _e(ignored))
    when = f' <span class="t">{_e(ballot["ts"])}</span>' if "ts" in ballot else ""
    who = _person(ctx, ballot.get("user"))
    return f'<li class="small">{who}: {shown} — {verdict}{when}</li>'


def _answer(ctx: _Context, vote_id: str, answer: object) -> str:
    """An answer by the label its poll showed, with its id."""
    labels = ctx.votes[vote_id].labels if vote_id in ctx.votes else {}
    label = labels.get(answer) if isinstance(answer, str) else None
    if label is None or label == answer:
        return _e(answer)
    return f'{_e(label)} <span class="id">{_e(answer)}</span>'


def _decision(ctx: _Context, entry: LogEntry, payload: Mapping[str, Any], here: int | None) -> str:
    decision = payload.get("decision")
    said = _say(ctx, decision) if decision in ("approve", "reject") else _e(decision)
    css = "good" if decision == "approve" else "bad" if decision == "reject" else ""
    line = _say(ctx, "decision", who=_person(ctx, payload.get("approver")), decision=said)
    parts = [f'{_kind_tag(ctx, entry)}<span class="{css}">{line}</span>']
    reason = payload.get("reason")
    if reason is not None:
        parts.append(f'<div class="body">{_say(ctx, "reason", reason=_e(reason))}</div>')
    parts.append(f'<div class="note">{_signature(ctx, payload.get("signature"))}</div>')
    return "".join(parts) + _event_note(ctx, payload.get("event_id"), here)


def _signature(ctx: _Context, signature: object) -> str:
    """The verdict of the signature check, its signer and why it failed, if it did."""
    if not isinstance(signature, Mapping):
        return _say(ctx, "signature_other", value=_e(signature))
    shown = _verdict(ctx, signature.get("verdict"))
    details = _map(signature, "details") or {}
    signer = signature.get("signer", details.get("signer_subject"))
    detail = signature.get("detail", details.get("reason"))
    if signer is not None:
        shown += "; " + _say(ctx, "signer", value=_e(signer))
    if detail is not None:
        shown += f"; {_e(detail)}"
    if details.get("failed_check") is not None:
        shown += f' <span class="id">{_e(details["failed_check"])}</span>'
    return shown


def _verdict(ctx: _Context, verdict: object) -> str:
    if verdict == "valid":
        return f'<span class="good">{_say(ctx, "signature_valid")}</span>'
    if verdict == "invalid":
        return f'<span class="bad">{_say(ctx, "signature_invalid")}</span>'
    if verdict == "absent":
        return _say(ctx, "signature_absent")
    return _say(ctx, "signature_other", value=_e(verdict))


def _approval_signature(
    ctx: _Context, entry: LogEntry, payload: Mapping[str, Any], here: int | None
) -> str:
    """A signature an approver sent: the check's verdict and the two files it was made on."""
    check = {"verdict": payload.get("verdict"), "details": payload.get("details")}
    files = [
        _blob_link(ctx, blob, here, _say(ctx, _FILE_ROLES[key]))
        for key in _FILE_ROLES
        for blob in _blobs({key: payload.get(key)})
    ]
    parts = [
        _kind_tag(ctx, entry),
        _person(ctx, payload.get("approver")),
        f'<div class="note">{_signature(ctx, check)}</div>',
        f'<div class="note">{" · ".join(files)}</div>' if files else "",
    ]
    return "".join(parts) + _event_note(ctx, payload.get("event_id"), here)


def _approval_outcome(
    ctx: _Context, entry: LogEntry, payload: Mapping[str, Any], here: int | None
) -> str:
    outcome = _str(payload, "outcome")
    phrase = {"approved": "approve", "rejected": "reject", "cancelled": "cancelled"}.get(
        outcome or ""
    )
    said = _say(ctx, phrase) if phrase else _e(payload.get("outcome"))
    line = f"<b>{_say(ctx, 'approval_outcome', value=said)}</b>"
    reason = payload.get("cancel_reason")
    if reason is not None:
        line += " — " + _say(ctx, "cancel_reason", value=_e(reason))
    return line


def _enforcement(
    ctx: _Context, entry: LogEntry, payload: Mapping[str, Any], here: int | None
) -> str:
    effect = payload.get("effect")
    label = _EFFECTS[ctx.locale].get(effect) if isinstance(effect, str) else None
    shown = _e(label) if label else _e(effect)
    target = payload.get("target")
    target_shown = _person(ctx, target) if isinstance(target, str) else _e(target)
    line = _say(ctx, "effect", effect=f"<b>{shown}</b>", target=target_shown)
    detail = payload.get("detail")
    if detail is not None:
        line += f" — {_e(detail)}"
    room_key = payload.get("room_key")
    if room_key is not None:
        line += f' <span class="id">{_e(room_key)}</span>'
    return _kind_tag(ctx, entry) + line


def _incident(ctx: _Context, entry: LogEntry, payload: Mapping[str, Any], here: int | None) -> str:
    what = payload.get("what")
    label = _INCIDENTS[ctx.locale].get(what) if isinstance(what, str) else None
    ref = _event_ref(ctx, payload.get("event_id"), here)
    line = _say(ctx, "incident", what=f"<b>{_e(label or what)}</b>", ref=ref)
    if payload.get("target") is not None:
        line += f" → {_e(payload['target'])}"
    by = payload.get("by")
    if by is not None:
        line += ", " + _say(ctx, "by", who=_person(ctx, by))
    return _kind_tag(ctx, entry) + line


def _webhook(ctx: _Context, entry: LogEntry, payload: Mapping[str, Any], here: int | None) -> str:
    line = _say(ctx, "webhook", id=_fact_id(entry, payload), type=_e(payload.get("type")))
    body = payload.get("body")
    return f"<b>{line}</b>" + (f"<pre>{_e(body)}</pre>" if body is not None else "")


def _callback(ctx: _Context, entry: LogEntry, payload: Mapping[str, Any], here: int | None) -> str:
    line = _say(ctx, "callback", id=_fact_id(entry, payload), type=_e(payload.get("type")))
    body = payload.get("body")
    shown = f"<pre>{_e(_json(body, indent=1))}</pre>" if body is not None else ""
    return f"<b>{line}</b>{shown}"


def _callback_answer(
    ctx: _Context, entry: LogEntry, payload: Mapping[str, Any], here: int | None
) -> str:
    """The procurement system's answer: delivered or not (the bridge's form), or a status."""
    parts = [_say(ctx, "answer", id=_fact_id(entry, payload))]
    delivered = payload.get("delivered")
    if isinstance(delivered, bool):
        parts.append(_say(ctx, "delivered" if delivered else "not_delivered"))
    if payload.get("status") is not None:
        parts.append(_say(ctx, "answer_status", status=_e(payload["status"])))
    if payload.get("error") is not None:
        error = _say(ctx, "answer_error", error=_e(payload["error"]))
        parts.append(f'<span class="bad">{error}</span>')
    if payload.get("parked") is True:
        parts.append(f'<span class="bad">{_say(ctx, "parked")}</span>')
    return " — ".join(parts)


def _fact_id(entry: LogEntry, payload: Mapping[str, Any]) -> str:
    return _e(payload.get("id", entry.subject))


def _document(ctx: _Context, entry: LogEntry, payload: Mapping[str, Any], here: int | None) -> str:
    """A document the bridge kept: its name, size and copy, who sent it and from where."""
    name = payload.get("filename", entry.subject)
    line = _say(ctx, "document", name=f"<b>{_e(name)}</b>")
    size = _int(payload, "size")
    if size is not None and size >= 0:
        line += ", " + _size(ctx, size)
    if _str(payload, "mime_type"):
        line += f' <span class="id">{_e(payload["mime_type"])}</span>'
    blobs = _blobs(payload)
    line += " — " + _copies(ctx, blobs, here)
    notes = [_say(ctx, "uploader", who=_person(ctx, payload.get("uploader")))]
    if payload.get("source") is not None:
        notes.append(_say(ctx, "source", value=_e(payload["source"])))
    caption = payload.get("caption")
    body = f'<div class="body">{_e(caption)}</div>' if caption else ""
    note = f'<div class="note">{" · ".join(notes)}</div>'
    return line + body + note + _event_note(ctx, payload.get("event_id"), here)


def _generic_fact(
    ctx: _Context, entry: LogEntry, payload: Mapping[str, Any], here: int | None
) -> str:
    """Any entry as its kind, subject and payload's keys and values: never left out."""
    subject = _say(ctx, "subject", value=_e(entry.subject)) if entry.subject else ""
    values = _e(_compact(payload)) if payload else ""
    return f"{_kind_tag(ctx, entry)}{subject} <span class='small'>{values}</span>"


_FACTS: dict[str, _Fact] = {
    "vote.ballot": _ballot,
    "vote.result": _vote_result,
    "approval.decision": _decision,
    "approval.signature": _approval_signature,
    "document": _document,
    "approval.outcome": _approval_outcome,
    "enforcement": _enforcement,
    "incident": _incident,
    "webhook": _webhook,
    "callback": _callback,
    "callback.answer": _callback_answer,
}


def _missing_payload(ctx: _Context, entry: LogEntry, here: int | None) -> str:
    sha256 = entry.payload_sha256
    if sha256 is None or not _SHA256.fullmatch(sha256):
        return _say(ctx, "no_payload")
    link = _blob_link(ctx, _Blob(sha256, 0, None), here)
    return _say(ctx, "blob_payload", link=link)


# --- a room's transcript ----------------------------------------------------------------


def _transcript(ctx: _Context, room: _Room) -> list[str]:
    state = _RoomState()
    items = []
    for entry in ctx.entries:
        if entry.room != room.room_id:
            continue
        event = _event_of(entry)
        if event is None:
            items.append(_item(entry, _fact(ctx, entry, room.number), "grey"))
        else:
            content = _map(event, "content") or {}
            items.append(_event_item(_Event(ctx, state, room.number, entry, event, content)))
    return items


def _event_item(ev: _Event) -> str:
    render = _EVENTS.get(ev.event_type)
    if render is None:
        render = _state_event if "state_key" in ev.event else _generic_event
    css, inner = render(ev)
    if ev.entry.payload is not None and ev.entry.payload.get("redacted") is True:
        inner += f'<div class="note">{_say(ev.ctx, "arrived_redacted")}</div>'
    inner += _server_time(ev) + _afterwards(ev)
    deleted = _str(ev.event, "event_id") in ev.ctx.redactions
    return _item(ev.entry, inner, f"{css} deleted" if deleted else css)


def _message(ev: _Event) -> tuple[str, str]:
    if _relation(ev.content, "m.replace") is not None:
        return "edit", _edit(ev)
    msgtype = _str(ev.content, "msgtype")
    if msgtype in _FILE_MSGTYPES:
        return "msg", _sender(ev) + " " + _file_line(ev.ctx, ev.entry, ev.content, ev.here)
    body = ev.content.get("body")
    text = _e(body) if body is not None else _e(_compact(ev.content))
    if msgtype == "m.emote":
        return "msg", f'<div class="body">* {_sender(ev)} {text}</div>{_relations(ev)}'
    css = "msg notice" if msgtype == "m.notice" else "msg"
    return css, f'{_sender(ev)}{_relations(ev)}<div class="body">{text}</div>'


def _edit(ev: _Event) -> str:
    target = _relation(ev.content, "m.replace")
    new_content = _map(ev.content, "m.new_content") or ev.content
    new_text = _message_text(new_content)
    parts = [
        _sender(ev),
        f'<div class="small">{_say(ev.ctx, "edit_of", ref=_event_ref(ev.ctx, target, ev.here))}'
        "</div>",
        f'<div class="body">{_e(new_text if new_text is not None else new_content)}</div>',
    ]
    before = _text_before(ev.ctx, target, ev.entry)
    if before is not None:
        parts.append(f'<div class="note">{_say(ev.ctx, "before", text=_e(before))}</div>')
    original = ev.ctx.events.get(target or "")
    if original is not None and _sender_of(original) not in (None, ev.sender):
        parts.append(f'<div class="note bad">{_say(ev.ctx, "edit_foreign")}</div>')
    return "".join(parts)


def _text_before(ctx: _Context, target: str | None, edit: LogEntry) -> str | None:
    """The message's text as it read before `edit`: the original or the edit before it."""
    original = ctx.events.get(target or "")
    if original is None:
        return None
    before = _message_text(_map(_event_of(original), "content") or {})
    for earlier in ctx.edits.get(target or "", []):
        if earlier.index >= edit.index:
            break
        content = _map(_event_of(earlier), "content") or {}
        before = _message_text(_map(content, "m.new_content") or content)
    return before


def _poll_start(ev: _Event) -> tuple[str, str]:
    question = _poll_question(ev.content) or _message_text(ev.content)
    line = _say(ev.ctx, "poll", question=_e(question))
    options = "".join(
        f'<li>{_e(label)} <span class="id">{_e(option)}</span></li>'
        for option, label in _poll_options(ev.content)
    )
    return "msg", f'{_sender(ev)}<div class="body"><b>{line}</b></div><ol>{options}</ol>'


def _poll_response(ev: _Event) -> tuple[str, str]:
    poll_id = _relation(ev.content, "m.reference")
    poll = ev.ctx.polls.get(poll_id or "")
    labels = poll.labels if poll is not None else {}
    chosen = _poll_choice(ev.content)
    if chosen is None:
        answers = _e(_compact(ev.content))
    elif not chosen:
        answers = _say(ev.ctx, "no_option")
    else:
        answers = ", ".join(_e(labels.get(answer, answer)) for answer in chosen)
    ref = _event_ref(ev.ctx, poll_id, ev.here)
    return "grey", _say(ev.ctx, "poll_answer", who=_sender(ev), ref=ref, answers=answers)


def _poll_end(ev: _Event) -> tuple[str, str]:
    poll_id = _relation(ev.content, "m.reference")
    line = _say(ev.ctx, "poll_end", who=_sender(ev), ref=_event_ref(ev.ctx, poll_id, ev.here))
    text = _message_text(ev.content)
    return "msg", f"{line}" + (f'<div class="body">{_e(text)}</div>' if text else "")


def _reaction(ev: _Event) -> tuple[str, str]:
    relation = _map(ev.content, "m.relates_to") or {}
    ref = _event_ref(ev.ctx, relation.get("event_id"), ev.here)
    key = relation.get("key")
    return "grey", _say(ev.ctx, "reaction", who=_sender(ev), key=_e(key), ref=ref)


def _redaction(ev: _Event) -> tuple[str, str]:
    target = _redaction_target(ev.event, ev.content)
    line = _say(ev.ctx, "redaction", who=_sender(ev), ref=_event_ref(ev.ctx, target, ev.here))
    return "grey", line + _reason(ev)


def _member(ev: _Event) -> tuple[str, str]:
    target = _str(ev.event, "state_key") or "?"
    membership = _str(ev.content, "membership") or _compact(ev.content.get("membership"))
    before = ev.state.membership.get(target)
    key = _membership_change(ev.sender == target, membership, before)
    name = _str(ev.content, "displayname")
    if key == "join" and before == "join":
        key = "rename" if name and name != ev.state.names.get(target) else "profile"
    line = _say(
        ev.ctx,
        key,
        who=_sender(ev),
        target=_person_in(ev, target),
        value=_e(membership),
        name=_e(name),
    )
    ev.state.membership[target] = membership
    if name and membership == "join":
        ev.state.names[target] = name
    return "grey", line + _reason(ev)


def _membership_change(by_self: bool, membership: str, before: str | None) -> str:
    """The words of a membership change, which depend on who made it and what it undoes."""
    if membership == "leave":
        if by_self:
            return "decline" if before == "invite" else "leave"
        return {"ban": "unban", "invite": "uninvite"}.get(before or "", "kick")
    if membership in ("join", "invite", "ban", "knock"):
        return membership
    return "membership"


def _state_line(key: str, field_name: str | None = None) -> Callable[[_Event], tuple[str, str]]:
    """A renderer of a state event shown as one line: the field, or the whole content."""

    def render(ev: _Event) -> tuple[str, str]:
        value = ev.content.get(field_name) if field_name else ev.content
        shown = f"«{_e(value)}»" if isinstance(value, str) else _e(_compact(value))
        return "grey", _say(ev.ctx, key, who=_sender(ev), value=shown)

    return render


def _state_event(ev: _Event) -> tuple[str, str]:
    state_key = ev.event.get("state_key")
    line = _say(
        ev.ctx,
        "state",
        who=_sender(ev),
        type=f'<span class="id">{_e(ev.event_type)}</span>',
        key=f'<span class="id">{_e(state_key)}</span>' if state_key else "",
        value=_e(_compact(ev.content)),
    )
    return "grey", line


def _generic_event(ev: _Event) -> tuple[str, str]:
    """An event of a type the dossier does not know, as its keys and values."""
    event_type = f'<span class="id">{_e(ev.event_type)}</span>'
    shown = ev.content if ev.content else {k: v for k, v in ev.event.items() if k != "type"}
    line = _say(ev.ctx, "event", who=_sender(ev), type=event_type, value=_e(_compact(shown)))
    return "grey", line


_EVENTS: dict[str, Callable[[_Event], tuple[str, str]]] = {
    "m.room.message": _message,
    **dict.fromkeys(_POLL_START_TYPES, _poll_start),
    **dict.fromkeys(POLL_RESPONSE_TYPES, _poll_response),
    **dict.fromkeys(_POLL_END_TYPES, _poll_end),
    "m.reaction": _reaction,
    "m.room.redaction": _redaction,
    "m.room.member": _member,
    "m.room.name": _state_line("room_name", "name"),
    "m.room.topic": _state_line("topic", "topic"),
    "m.room.power_levels": _state_line("power_levels"),
    "m.room.join_rules": _state_line("join_rules", "join_rule"),
    "m.room.tombstone": _state_line("tombstone"),
    "m.room.create": _state_line("create"),
}


def _relations(ev: _Event) -> str:
    """Which message this one answers, or which thread it is in."""
    relation = _map(ev.content, "m.relates_to") or {}
    reply = _map(relation, "m.in_reply_to")
    notes = []
    if reply is not None:
        notes.append(
            _say(ev.ctx, "reply_to", ref=_event_ref(ev.ctx, reply.get("event_id"), ev.here))
        )
    if relation.get("rel_type") == "m.thread":
        notes.append(
            _say(ev.ctx, "thread", ref=_event_ref(ev.ctx, relation.get("event_id"), ev.here))
        )
    return "".join(f'<div class="small">{note}</div>' for note in notes)


def _afterwards(ev: _Event) -> str:
    """What later happened to the event: its edits and its deletion, with the original kept."""
    event_id = _str(ev.event, "event_id")
    if event_id is None:
        return ""
    notes = []
    edits = ev.ctx.edits.get(event_id, [])
    if edits:
        refs = ", ".join(_entry_ref(ev.ctx, edit, ev.here) for edit in edits)
        notes.append(f'<div class="note">{_say(ev.ctx, "edited", refs=refs)}</div>')
    redaction = ev.ctx.redactions.get(event_id)
    if redaction is not None:
        notes.append(f'<div class="note bad">{_deleted_note(ev, redaction)}</div>')
    return "".join(notes)


def _deleted_note(ev: _Event, redaction: LogEntry) -> str:
    return _say(
        ev.ctx,
        "deleted",
        who=_person_in(ev, _sender_of(redaction) or "?"),
        time=_time(redaction.time),
        ref=_entry_ref(ev.ctx, redaction, ev.here),
    )


def _server_time(ev: _Event) -> str:
    """The sender's homeserver clock, when it disagrees with the log's."""
    sent = _int(ev.event, "origin_server_ts")
    if sent is None or abs(sent - ev.entry.time) <= _CLOCK_SLACK_MS:
        return ""
    return f'<div class="note">{_say(ev.ctx, "server_time", time=_time(sent))}</div>'


def _reason(ev: _Event) -> str:
    reason = ev.content.get("reason")
    return "" if reason is None else f" — {_say(ev.ctx, 'reason', reason=_e(reason))}"


# --- files ------------------------------------------------------------------------------


def _file_line(
    ctx: _Context, entry: LogEntry, content: Mapping[str, Any], here: int | None
) -> str:
    """📎 name, size and the bridge's copy (or that it kept none), and a caption if any."""
    body = _str(content, "body")
    name = _str(content, "filename") or body or "?"
    event_id = _str(_event_of(entry), "event_id")
    blobs = _blobs(entry.payload) + ctx.kept_files.get(event_id or "", [])
    size = _int(_map(content, "info"), "size")
    if size is None and blobs:
        size = blobs[0].size
    parts = [f"📎 <b>{_e(name)}</b>"]
    if size is not None and size >= 0:
        parts.append(", " + _size(ctx, size))
    parts.append(" — " + _copies(ctx, blobs, here))
    if body and body != name:
        parts.append(f'<div class="body">{_e(body)}</div>')
    return "".join(parts)


def _copies(ctx: _Context, blobs: Sequence[_Blob], here: int | None) -> str:
    if not blobs:
        return f'<span class="small">{_say(ctx, "not_kept")}</span>'
    return ", ".join(_blob_link(ctx, blob, here) for blob in blobs)


def _blob_link(ctx: _Context, blob: _Blob, here: int | None, label: str | None = None) -> str:
    """A link to a blob of the export, and its hash, by which a printed copy is checked."""
    href = ctx.blob_href(blob.sha256)
    if here is not None and not _URL_SCHEME.match(href) and not href.startswith(("/", "#")):
        href = "../" + href
    return (
        f'<a class="blob" href="{escape(href, quote=True)}">{label or _say(ctx, "copy")}</a> '
        f'<span class="id">sha256 {blob.sha256}</span>'
    )


def _blobs(payload: object) -> list[_Blob]:
    """Every file the payload names as exactly {"sha256": …, "size": …}, as the log names
    files it keeps, in the order it names them; each named by what holds it."""
    found: dict[str, _Blob] = {}
    pending: list[object] = [payload]
    while pending:
        value = pending.pop()
        if isinstance(value, Mapping):
            for key, item in value.items():
                blob = _blob_of(item, _holder_name(value, key))
                if blob is not None:
                    found.setdefault(blob.sha256, blob)
            pending.extend(reversed(list(value.values())))
        elif isinstance(value, list):
            pending.extend(reversed(value))
    return list(found.values())


def _holder_name(holder: Mapping[Any, Any], key: object) -> str:
    names = (holder.get(k) for k in ("filename", "name", "title"))
    return next((name for name in names if isinstance(name, str)), str(key))


def _blob_of(value: object, name: str) -> _Blob | None:
    if not isinstance(value, Mapping) or set(value) != {"sha256", "size"}:
        return None
    sha256, size = value.get("sha256"), _int(value, "size")
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256) or size is None or size < 0:
        return None
    return _Blob(sha256, size, name)


def _is_file_message(event: Mapping[str, Any]) -> bool:
    content = _map(event, "content") or {}
    return event.get("type") == "m.room.message" and content.get("msgtype") in _FILE_MSGTYPES


def _size(ctx: _Context, size: int) -> str:
    """«1,2 МБ (1 234 567 Б)»: the size people read and the exact one a hash was taken of."""
    approx = escape(file_size(size, ctx.locale))
    if size < 1024:
        return approx
    exact = f"{size:,}".replace(",", "\u202f")
    return f"{approx} ({exact}\u00a0{'Б' if ctx.locale is Locale.RU else 'B'})"


# --- references, people and rooms -------------------------------------------------------


def _item(entry: LogEntry, inner: str, css: str = "", *, anchor: bool = True) -> str:
    """An entry as the reader sees it: its log number, its time and what it says."""
    ident = f' id="e{entry.index}"' if anchor else ""
    classes = f"item {css}" if css else "item"
    return (
        f'<div class="{classes}"{ident}><span class="n">№ {entry.index}</span>'
        f'<span class="t">{_time(entry.time)}</span> {inner}</div>'
    )


def _entry_ref(ctx: _Context, entry: LogEntry, here: int | None) -> str:
    """A link to an entry's place in its room's transcript (an entry of no room has none)."""
    room = ctx.rooms.get(entry.room or "")
    if room is None:
        return f"№ {entry.index}"
    return f'<a href="{_transcript_href(room.number, entry.index, here)}">№ {entry.index}</a>'


def _event_ref(ctx: _Context, event_id: object, here: int | None) -> str:
    """A link to an event's place in a transcript, or its id when the log does not hold it."""
    entry = ctx.events.get(event_id) if isinstance(event_id, str) else None
    if entry is None:
        return f'<span class="id">{_e(event_id)}</span>'
    return _entry_ref(ctx, entry, here)


def _event_note(ctx: _Context, event_id: object, here: int | None) -> str:
    if event_id is None:
        return ""
    ref = _event_ref(ctx, event_id, here)
    return f'<div class="note">{_say(ctx, "message_ref", ref=ref)}</div>'


def _transcript_href(room_number: int, index: int, here: int | None) -> str:
    anchor = f"#e{index}"
    if here == room_number:
        return anchor
    if here is None:
        return f"rooms/{room_number}.html{anchor}"
    return f"{room_number}.html{anchor}"


def _room_note(ctx: _Context, entry: LogEntry, here: int | None) -> str:
    """On the index, the room an entry happened in, linked to its place in the transcript."""
    room = ctx.rooms.get(entry.room or "")
    if room is None or here == room.number:
        return ""
    href = _transcript_href(room.number, entry.index, here)
    link = f'<a href="{href}">{_e(_room_name(ctx, room))}</a>'
    return f'<div class="small">{_say(ctx, "in_room", room=link)}</div>'


def _person(ctx: _Context, user: object, names: Mapping[str, str] | None = None) -> str:
    """A person as their display name and their Matrix id: names are chosen by their owners,
    ids are not."""
    if not isinstance(user, str):
        return f'<span class="who">{_e(user)}</span>'
    name = (names or {}).get(user) or ctx.names.get(user)
    ident = f'<span class="id">{_e(user)}</span>'
    return f'<span class="who">{_e(name)}</span> {ident}' if name and name != user else ident


def _person_in(ev: _Event, user: str) -> str:
    return _person(ev.ctx, user, ev.state.names)


def _sender(ev: _Event) -> str:
    return _person_in(ev, ev.sender)


def _room_name(ctx: _Context, room: _Room) -> str:
    if room.info is not None and room.info.name.strip():
        return room.info.name
    return room.room_id


def _room_kind(ctx: _Context, room: _Room) -> str:
    if room.info is None:
        return _say(ctx, "undescribed_room")
    kind = _ROOM_KIND_ALIASES.get(room.info.kind, room.info.kind)
    if kind == "space":
        return escape(_SPACE[ctx.locale])
    described = ROOM_KINDS[ctx.locale].get(kind)
    return _e(described[0] if described else room.info.kind)


def _kind_label(ctx: _Context, kind: str) -> str:
    return _KIND_LABELS[ctx.locale].get(kind, kind)


def _kind_tag(ctx: _Context, entry: LogEntry) -> str:
    return f'<span class="small">{_e(_kind_label(ctx, entry.kind))}:</span> '


# --- reading Matrix events --------------------------------------------------------------


def _event_of(entry: LogEntry) -> Mapping[str, Any] | None:
    if entry.kind != "matrix.event":
        return None
    return _map(entry.payload, "event")


def _sender_of(entry: LogEntry) -> str | None:
    return _str(_event_of(entry), "sender")


def _relation(content: Mapping[str, Any], rel_type: str) -> str | None:
    """The event id this content relates to by `rel_type`, if it does."""
    relation = _map(content, "m.relates_to")
    if relation is None or relation.get("rel_type") != rel_type:
        return None
    return _str(relation, "event_id")


def _redaction_target(event: Mapping[str, Any], content: Mapping[str, Any]) -> str | None:
    # Room versions up to 10 put `redacts` at the top level, version 11 in the content.
    return _str(event, "redacts") or _str(content, "redacts")


def _message_text(content: Mapping[str, Any]) -> str | None:
    return _str(content, "body") or _label(content)


def _label(value: object) -> str | None:
    """The text of a poll's question or answer, in any of the shapes MSC3381 and MSC1767 use."""
    if isinstance(value, str):
        return value
    if not isinstance(value, Mapping):
        return None
    for key in (TEXT, "body"):
        if isinstance(value.get(key), str):
            return str(value[key])
    texts = value.get("m.text")
    if isinstance(texts, str):
        return texts
    if isinstance(texts, list):
        return next(
            (_str(t, "body") for t in texts if isinstance(t, Mapping) and _str(t, "body")), None
        )
    return None


def _poll_question(content: Mapping[str, Any]) -> str | None:
    return _label(_poll_of(content).get("question"))


def _poll_of(content: Mapping[str, Any]) -> Mapping[str, Any]:
    """The poll in a poll start's content, under its unstable or its stable key."""
    return next((_map(content, k) for k in _POLL_START_KEYS if _map(content, k)), None) or {}


def _poll_options(content: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(answer id, label) of each answer of a poll."""
    answers = _poll_of(content).get("answers")
    for answer in answers if isinstance(answers, list) else []:
        if isinstance(answer, Mapping):
            option = _str(answer, "id") or _str(answer, "m.id") or "?"
            yield option, _label(answer) or option


def _poll_choice(content: Mapping[str, Any]) -> list[str] | None:
    """The answer ids of a poll response; None when it is not shaped as one."""
    response = next(
        (_map(content, key) for key in POLL_RESPONSE_TYPES if _map(content, key)), None
    )
    chosen = (response or {}).get("answers", content.get("m.selections"))
    return list(chosen) if _is_texts(chosen) else None


# --- untrusted values -------------------------------------------------------------------


def _say(ctx: _Context, phrase: str, /, **parts: str) -> str:
    """The locale's words for `phrase`, escaped, with `parts` (already HTML) put in."""
    return escape(ctx.words[phrase]).format(**parts)


def _e(value: object) -> str:
    """Any value as HTML text: controls and bidi overrides replaced, everything escaped."""
    text = value if isinstance(value, str) else _compact(value)
    return escape(_BIDI.sub(REPLACEMENT, clean_text(text, sys.maxsize)), quote=True)


def _compact(value: object) -> str:
    """A value as one line: a string as it is, an object as `key: value; …`, else JSON."""
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return "; ".join(f"{_compact(key)}: {_json(item)}" for key, item in value.items())
    return _json(value)


def _json(value: object, indent: int | None = None) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, indent=indent, default=repr)
    except (TypeError, ValueError, RecursionError):
        # Beyond what JSON can hold (a cycle, an integer of thousands of digits).
        return "…"


def _time(ms: object) -> str:
    """Milliseconds since the epoch as «2025-12-01 14:40:05 UTC»."""
    if isinstance(ms, bool) or not isinstance(ms, int) or abs(ms) > _MAX_NUMBER:
        return _e(ms)
    try:
        moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return str(ms)
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def _str(obj: Mapping[str, Any] | None, key: str) -> str | None:
    value = obj.get(key) if obj is not None else None
    return value if isinstance(value, str) else None


def _int(obj: Mapping[str, Any] | None, key: str) -> int | None:
    value = obj.get(key) if obj is not None else None
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) > _MAX_NUMBER:
        return None
    return value


def _map(obj: Mapping[str, Any] | None, key: str) -> Mapping[str, Any] | None:
    value = obj.get(key) if obj is not None else None
    return value if isinstance(value, Mapping) else None


def _is_texts(value: object) -> TypeGuard[list[str]]:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _entry_text(obj: Mapping[str, Any], key: str, *, optional: bool = True) -> str | None:
    value = obj.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{key}: expected a string, got {type(value).__name__}")
    return value


def _entry_number(obj: Mapping[str, Any], key: str, *, minimum: int) -> int:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{key}: expected an integer, got {type(value).__name__}")
    if not minimum <= value <= _MAX_NUMBER:
        raise ValueError(f"{key}: {value} is out of range")
    return value
