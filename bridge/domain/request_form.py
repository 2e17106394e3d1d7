"""Requests (заявки) filled in with the bot: the fields the operator configures, answers checked
one at a time, and the procurement system's answer (`request.accepted` / `request.rejected`)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any

from .document import read_id
from .locale import Locale
from .reader import Reader
from .text import clean_text

MAX_TEXT = 500
MAX_FIELDS = 20
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_NUMBER = re.compile(r"^\d{1,12}([.,]\d{1,6})?$")


class FieldKind(Enum):
    TEXT = "text"
    NUMBER = "number"
    DATE = "date"
    CHOICE = "choice"


@dataclass(frozen=True, slots=True)
class FormField:
    name: str
    question: Mapping[Locale, str]
    kind: FieldKind
    options: tuple[str, ...] = ()


class BadAnswer(Exception):
    """An answer the field does not take; `reason` names the phrase that explains why."""

    def __init__(self, reason: str, **values: object) -> None:
        super().__init__(reason)
        self.reason = reason
        self.values = values


DEFAULT_FIELDS: tuple[FormField, ...] = (
    FormField(
        "item",
        {Locale.RU: "Что нужно закупить?", Locale.EN: "What needs to be procured?"},
        FieldKind.TEXT,
    ),
    FormField("quantity", {Locale.RU: "Сколько?", Locale.EN: "How much?"}, FieldKind.NUMBER),
    FormField(
        "unit",
        {Locale.RU: "В каких единицах?", Locale.EN: "In what unit?"},
        FieldKind.CHOICE,
        ("шт", "т", "м", "м²", "м³", "компл"),
    ),
    FormField(
        "needed_by",
        {Locale.RU: "К какой дате нужно?", Locale.EN: "Needed by which date?"},
        FieldKind.DATE,
    ),
    FormField(
        "object",
        {Locale.RU: "Для какого объекта?", Locale.EN: "For which site?"},
        FieldKind.TEXT,
    ),
)


def parse_fields(raw: object, key: str = "requests.fields") -> tuple[FormField, ...]:
    """The configured fields (`requests.fields`); ValueError naming the bad key."""
    if raw is None:
        return DEFAULT_FIELDS
    if not isinstance(raw, Sequence) or isinstance(raw, str) or len(raw) > MAX_FIELDS:
        raise ValueError(f"{key}: a list of at most {MAX_FIELDS} fields")
    fields = tuple(_field(item, f"{key}[{i}]") for i, item in enumerate(raw))
    names = [f.name for f in fields]
    if len(set(names)) != len(names):
        raise ValueError(f"{key}: every field needs a name of its own")
    return fields


def _field(item: object, key: str) -> FormField:
    if not isinstance(item, Mapping):
        raise ValueError(f"{key}: a field is a mapping with name, question, type")
    name = item.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"{key}.name: lowercase letters, digits and _, starting with a letter")
    question = item.get("question")
    if not isinstance(question, Mapping) or not all(
        isinstance(question.get(locale.value), str) for locale in Locale
    ):
        raise ValueError(f"{key}.question: give the question in ru and en")
    try:
        kind = FieldKind(item.get("type", "text"))
    except ValueError:
        raise ValueError(f"{key}.type: one of text, number, date, choice") from None
    options = _options(item.get("options"), f"{key}.options")
    if kind is FieldKind.CHOICE and not 1 <= len(options) <= 10:
        raise ValueError(f"{key}.options: a choice needs 1 to 10 options")
    questions = {locale: str(question[locale.value]) for locale in Locale}
    return FormField(name, questions, kind, options)


def _options(raw: object, key: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        raise ValueError(f"{key}: a list of options")
    options = tuple(clean_text(str(o), 100, single_line=True).strip() for o in raw)
    if not all(options) or len(set(options)) != len(options):
        raise ValueError(f"{key}: every option is a text of its own")
    return options


def next_field(fields: Sequence[FormField], answers: Mapping[str, str]) -> FormField | None:
    return next((f for f in fields if f.name not in answers), None)


def check_answer(field: FormField, answer: str, today: date) -> str:
    """The answer as kept (a number with a dot, a date in ISO form, an option as configured);
    BadAnswer when the field does not take it."""
    given = answer.strip()
    if field.kind is FieldKind.NUMBER:
        return _number(given)
    if field.kind is FieldKind.DATE:
        return _date(given, today)
    if field.kind is FieldKind.CHOICE:
        return _choice(field, given)
    if not given or len(given) > MAX_TEXT:
        raise BadAnswer("invalid_text", limit=MAX_TEXT)
    return clean_text(given, MAX_TEXT, single_line=True)


def _number(given: str) -> str:
    compact = given.replace(" ", "").replace("\u00a0", "")
    if not _NUMBER.fullmatch(compact):
        raise BadAnswer("invalid_number")
    try:
        value = Decimal(compact.replace(",", "."))
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
        raise BadAnswer("invalid_number") from None
    if value <= 0:
        raise BadAnswer("invalid_number")
    return format(value.normalize(), "f")


def _date(given: str, today: date) -> str:
    parts = re.split(r"[.\-/ ]", given)
    try:
        if len(parts) == 3 and len(parts[0]) == 4:
            value = date(int(parts[0]), int(parts[1]), int(parts[2]))
        elif len(parts) == 3:
            value = date(int(parts[2]), int(parts[1]), int(parts[0]))
        else:
            raise ValueError(given)
    except (ValueError, OverflowError):
        raise BadAnswer("invalid_date") from None
    if value < today:
        raise BadAnswer("invalid_date")
    return value.isoformat()


def _choice(field: FormField, given: str) -> str:
    folded = given.casefold()
    for i, option in enumerate(field.options, 1):
        if folded in (option.casefold(), str(i)):
            return option
    raise BadAnswer("invalid_choice", options=", ".join(field.options))


# --- the procurement system's answer -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class RequestAnswer:
    """`request.accepted` (with the procurement system's number) or `request.rejected`."""

    request_id: str
    accepted: bool
    number: str | None
    reason: str | None


def parse_request_accepted(data: object, path: str = "data") -> RequestAnswer:
    reader = Reader(data, path)
    return RequestAnswer(
        request_id=read_id(reader, "request_id"),
        accepted=True,
        number=clean_text(reader.text("number", max_len=100), 100, single_line=True),
        reason=_opt_clean(reader.opt_text("comment", max_len=1000)),
    )


def parse_request_rejected(data: object, path: str = "data") -> RequestAnswer:
    reader = Reader(data, path)
    return RequestAnswer(
        request_id=read_id(reader, "request_id"),
        accepted=False,
        number=None,
        reason=clean_text(reader.text("reason", max_len=1000), 1000),
    )


def _opt_clean(value: str | None) -> str | None:
    return None if value is None else clean_text(value, 1000)


def request_submitted_payload(
    request_id: str,
    user: str,
    procurement_id: str | None,
    fields: Sequence[FormField],
    answers: Mapping[str, str],
    submitted_at: str,
) -> dict[str, Any]:
    """The `request.submitted` callback: the answers by field name, in the fields' order."""
    return {
        "request_id": request_id,
        "procurement_id": procurement_id,
        "user": user,
        "fields": {f.name: answers[f.name] for f in fields if f.name in answers},
        "submitted_at": submitted_at,
    }
