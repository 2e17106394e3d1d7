"""Reading untrusted JSON into domain values, with the JSON path of every error."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import TypeVar

from .errors import InvalidInput
from .ids import UserId

T = TypeVar("T")

# Matrix user ids (spec appendix "User Identifiers"), server part without IPv6 literal subtleties.
_MXID = re.compile(r"^@[a-z0-9._=\-/+]+:[A-Za-z0-9.\-]+(:[0-9]{1,5})?$")
_MONEY = re.compile(r"^-?[0-9]{1,15}(\.[0-9]{1,4})?$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_MISSING = object()


class Reader:
    """A JSON object at a path; each accessor checks one field and names it on failure."""

    __slots__ = ("_obj", "path")

    def __init__(self, obj: object, path: str) -> None:
        if not isinstance(obj, Mapping):
            raise InvalidInput(path, f"expected an object, got {_kind(obj)}")
        self._obj: Mapping[str, object] = obj
        self.path = path

    def at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        return self._obj.get(key) is not None

    def _get(self, key: str, optional: bool) -> object:
        value = self._obj.get(key, _MISSING)
        if value is _MISSING or value is None:
            if optional:
                return None
            raise InvalidInput(self.at(key), "required field is missing", "M_MISSING_PARAM")
        return value

    def text(
        self, key: str, *, max_len: int = 1000, pattern: re.Pattern[str] | None = None
    ) -> str:
        value = self._get(key, optional=False)
        return _check_str(value, self.at(key), max_len, pattern)

    def opt_text(
        self, key: str, *, max_len: int = 1000, pattern: re.Pattern[str] | None = None
    ) -> str | None:
        value = self._get(key, optional=True)
        return None if value is None else _check_str(value, self.at(key), max_len, pattern)

    def integer(self, key: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
        value = self._get(key, optional=False)
        return _check_int(value, self.at(key), minimum, maximum)

    def opt_integer(
        self, key: str, *, minimum: int | None = None, maximum: int | None = None
    ) -> int | None:
        value = self._get(key, optional=True)
        return None if value is None else _check_int(value, self.at(key), minimum, maximum)

    def flag(self, key: str, *, default: bool) -> bool:
        value = self._get(key, optional=True)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise InvalidInput(self.at(key), f"expected a boolean, got {_kind(value)}")
        return value

    def user(self, key: str) -> UserId:
        return parse_user(self._get(key, optional=False), self.at(key))

    def opt_user(self, key: str) -> UserId | None:
        value = self._get(key, optional=True)
        return None if value is None else parse_user(value, self.at(key))

    def obj(self, key: str) -> Reader:
        return Reader(self._get(key, optional=False), self.at(key))

    def opt_obj(self, key: str) -> Reader | None:
        value = self._get(key, optional=True)
        return None if value is None else Reader(value, self.at(key))

    def items(self, key: str, *, optional: bool = True, max_items: int = 10_000) -> list[Item]:
        """The items of an array field (an absent optional array reads as empty)."""
        value = self._get(key, optional=optional)
        if value is None:
            return []
        path = self.at(key)
        if not isinstance(value, list):
            raise InvalidInput(path, f"expected an array, got {_kind(value)}")
        if len(value) > max_items:
            raise InvalidInput(path, f"at most {max_items} items are allowed")
        return [Item(item, f"{path}[{i}]") for i, item in enumerate(value)]

    def users(self, key: str, *, optional: bool = True) -> tuple[UserId, ...]:
        """An array of distinct Matrix user ids."""
        seen: dict[UserId, None] = {}
        for item in self.items(key, optional=optional):
            user = parse_user(item.value, item.path)
            if user in seen:
                raise InvalidInput(item.path, f"{user} is listed twice")
            seen[user] = None
        return tuple(seen)

    def money(self, key: str) -> Decimal:
        value = self._get(key, optional=False)
        return parse_money(value, self.at(key))

    def currency(self, key: str, *, default: str) -> str:
        value = self.opt_text(key, max_len=3, pattern=_CURRENCY)
        return value or default

    def timestamp(self, key: str) -> datetime:
        return parse_datetime(self._get(key, optional=False), self.at(key))

    def opt_timestamp(self, key: str) -> datetime | None:
        value = self._get(key, optional=True)
        return None if value is None else parse_datetime(value, self.at(key))

    def calendar_date(self, key: str) -> date:
        return parse_date(self._get(key, optional=False), self.at(key))

    def opt_calendar_date(self, key: str) -> date | None:
        value = self._get(key, optional=True)
        return None if value is None else parse_date(value, self.at(key))

    def enum(self, key: str, parse: Callable[[str], T]) -> T:
        """A string converted by `parse` (an Enum works); a ValueError names the field."""
        text = self.text(key, max_len=100)
        try:
            return parse(text)
        except ValueError:
            raise InvalidInput(self.at(key), f"unknown value {text!r}") from None


class Item:
    """One element of a JSON array, with its path."""

    __slots__ = ("path", "value")

    def __init__(self, value: object, path: str) -> None:
        self.value = value
        self.path = path

    def reader(self) -> Reader:
        return Reader(self.value, self.path)

    def text(self, *, max_len: int = 1000) -> str:
        return _check_str(self.value, self.path, max_len, None)


def iter_readers(items: list[Item]) -> Iterator[Reader]:
    return (item.reader() for item in items)


def parse_user(value: object, path: str) -> UserId:
    text = _check_str(value, path, 255, None)
    if not _MXID.fullmatch(text):
        raise InvalidInput(path, f"{text!r} is not a Matrix user id like @name:server")
    return UserId(text)


def parse_money(value: object, path: str) -> Decimal:
    if not isinstance(value, str):
        raise InvalidInput(path, f'money is a decimal string like "48801.24", got {_kind(value)}')
    if not _MONEY.fullmatch(value):
        raise InvalidInput(path, f'{value!r} is not a decimal amount like "48801.24"')
    try:
        return Decimal(value)
    except InvalidOperation:  # pragma: no cover - the pattern admits only valid decimals
        raise InvalidInput(path, f"{value!r} is not a decimal amount") from None


def parse_datetime(value: object, path: str) -> datetime:
    text = _check_str(value, path, 64, None)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidInput(path, f"{text!r} is not an RFC 3339 timestamp") from None
    if "T" not in text.upper() or parsed.tzinfo is None:
        raise InvalidInput(path, f"{text!r} needs a date, a time and an offset (RFC 3339)")
    return parsed


def parse_date(value: object, path: str) -> date:
    text = _check_str(value, path, 10, None)
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(path, f"{text!r} is not a date like 2022-05-12") from None


def _check_str(value: object, path: str, max_len: int, pattern: re.Pattern[str] | None) -> str:
    if not isinstance(value, str):
        raise InvalidInput(path, f"expected a string, got {_kind(value)}")
    if not value.strip():
        raise InvalidInput(path, "must not be empty")
    if _SURROGATE.search(value):
        raise InvalidInput(path, "holds a lone UTF-16 surrogate (\\ud800–\\udfff): not text")
    if len(value) > max_len:
        raise InvalidInput(path, f"longer than {max_len} characters")
    if pattern is not None and not pattern.fullmatch(value):
        raise InvalidInput(path, f"{value!r} does not match {pattern.pattern}")
    return value


def _check_int(value: object, path: str, minimum: int | None, maximum: int | None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(path, f"expected an integer, got {_kind(value)}")
    if minimum is not None and value < minimum:
        raise InvalidInput(path, f"must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise InvalidInput(path, f"must be at most {maximum}")
    return value


def _kind(value: object) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "an object",
    }.get(type(value), type(value).__name__)
