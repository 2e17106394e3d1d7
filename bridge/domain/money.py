"""Money and counted words as people read them: «48 801,24 ₽», «2 дня», «6 из 10»."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from .locale import Locale

# A no-break space keeps «48 801,24 ₽» on one line; U+202F (the typographic choice) is
# missing from some mobile fonts, U+00A0 renders everywhere.
NBSP = "\u00a0"
_CENT = Decimal("0.01")

# Russian writes the sign after the amount; English writes the symbol before it.
_RU_SIGNS = {"RUB": "₽", "USD": "$", "EUR": "€"}
_EN_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£"}


def format_money(amount: Decimal, currency: str, locale: Locale = Locale.RU) -> str:
    """«48 801,24 ₽» in Russian; "RUB 48,801.24", "$48,801.24" in English.

    English readers do not all know the rouble sign, so English spells RUB out as the
    ISO code, like any currency without a well-known symbol.
    """
    if not amount.is_finite():
        raise ValueError(f"not an amount of money: {amount}")
    cents = amount.quantize(_CENT, rounding=ROUND_HALF_UP)
    sign = "-" if cents < 0 else ""
    whole, fraction = f"{abs(cents):.2f}".split(".")
    if locale is Locale.RU:
        number = f"{_group(whole, NBSP)},{fraction}"
        return f"{sign}{number}{NBSP}{_RU_SIGNS.get(currency, currency)}"
    number = f"{_group(whole, ',')}.{fraction}"
    symbol = _EN_SYMBOLS.get(currency)
    if symbol is not None:
        return f"{sign}{symbol}{number}"
    return f"{sign}{currency}{NBSP}{number}"


def _group(digits: str, separator: str) -> str:
    groups = []
    while len(digits) > 3:
        digits, tail = digits[:-3], digits[-3:]
        groups.append(tail)
    groups.append(digits)
    return separator.join(reversed(groups))


def plural_ru(n: int, one: str, few: str, many: str) -> str:
    """The Russian form for `n`: 1 день, 2 дня, 5 дней, 11 дней, 21 день, 22 дня."""
    n = abs(n)
    if n % 10 == 1 and n % 100 != 11:
        return one
    if n % 10 in (2, 3, 4) and n % 100 not in (12, 13, 14):
        return few
    return many


def plural_en(n: int, one: str, many: str) -> str:
    return one if abs(n) == 1 else many


def days(n: int, locale: Locale = Locale.RU) -> str:
    """«2 дня» / "2 days"."""
    if locale is Locale.RU:
        return f"{n}{NBSP}{plural_ru(n, 'день', 'дня', 'дней')}"
    return f"{n}{NBSP}{plural_en(n, 'day', 'days')}"


def voted_of(voted: int, voters: int, locale: Locale = Locale.RU) -> str:
    """«Проголосовало 6 из 10» / "6 of 10 voted".

    The neuter past tense reads naturally with every count in a card, so Russian keeps one
    verb form instead of agreeing it with `voted`.
    """
    if locale is Locale.RU:
        return f"Проголосовало {voted} из {voters}"
    return f"{voted} of {voters} voted"


def file_size(n_bytes: int, locale: Locale = Locale.RU) -> str:
    """«20 МБ», «512 КБ», «300 Б» / "20 MB" — binary multiples, as file managers show them."""
    units = ("Б", "КБ", "МБ", "ГБ") if locale is Locale.RU else ("B", "KB", "MB", "GB")
    size = Decimal(n_bytes)
    unit = 0
    while size >= 1024 and unit < len(units) - 1:
        size /= 1024
        unit += 1
    if unit == 0 or size >= 10:
        text = str(size.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    else:
        text = str(size.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))
        if locale is Locale.RU:
            text = text.replace(".", ",")
    return f"{text}{NBSP}{units[unit]}"
