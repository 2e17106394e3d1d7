"""Money, plurals and sizes as people read them."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.domain.locale import Locale
from bridge.domain.money import (
    NBSP,
    days,
    file_size,
    format_money,
    plural_ru,
    voted_of,
)


def test_seed_card_amounts_in_russian() -> None:
    assert format_money(Decimal("48801.24"), "RUB") == f"48{NBSP}801,24{NBSP}₽"
    assert format_money(Decimal("58561.49"), "RUB", Locale.RU) == f"58{NBSP}561,49{NBSP}₽"


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("0", "RUB", "0,00 ₽"),
        ("5", "RUB", "5,00 ₽"),
        ("999.999", "RUB", "1 000,00 ₽"),
        ("1000", "RUB", "1 000,00 ₽"),
        ("1234567.8", "RUB", "1 234 567,80 ₽"),
        ("-1500.5", "RUB", "-1 500,50 ₽"),
        ("0.005", "RUB", "0,01 ₽"),
        ("100", "USD", "100,00 $"),
        ("100", "EUR", "100,00 €"),
        ("100", "CNY", "100,00 CNY"),
    ],
)
def test_russian_format(amount: str, currency: str, expected: str) -> None:
    assert format_money(Decimal(amount), currency) == expected.replace(" ", NBSP)


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("48801.24", "RUB", "RUB 48,801.24"),
        ("48801.24", "USD", "$48,801.24"),
        ("1234567", "EUR", "€1,234,567.00"),
        ("-12.3", "USD", "-$12.30"),
        ("999", "GBP", "£999.00"),
        ("1", "CNY", "CNY 1.00"),
    ],
)
def test_english_format(amount: str, currency: str, expected: str) -> None:
    assert format_money(Decimal(amount), currency, Locale.EN) == expected.replace(" ", NBSP)


def test_not_a_number_is_refused() -> None:
    with pytest.raises(ValueError, match="not an amount"):
        format_money(Decimal("NaN"), "RUB")


@given(st.decimals(min_value=-(10**15), max_value=10**15, places=2))
def test_russian_format_reads_back(amount: Decimal) -> None:
    text = format_money(amount, "RUB")
    assert text.endswith(f"{NBSP}₽")
    number = text.removesuffix(f"{NBSP}₽").replace(NBSP, "").replace(",", ".")
    assert Decimal(number) == amount
    assert " " not in text  # never an ordinary breakable space


@given(st.decimals(min_value=-(10**15), max_value=10**15, places=2))
def test_english_format_reads_back(amount: Decimal) -> None:
    text = format_money(amount, "USD", Locale.EN)
    assert Decimal(text.replace("$", "").replace(",", "")) == amount


@pytest.mark.parametrize(
    ("n", "word"),
    [
        (0, "дней"),
        (1, "день"),
        (2, "дня"),
        (3, "дня"),
        (4, "дня"),
        (5, "дней"),
        (11, "дней"),
        (12, "дней"),
        (14, "дней"),
        (21, "день"),
        (22, "дня"),
        (25, "дней"),
        (101, "день"),
        (111, "дней"),
        (112, "дней"),
        (1002, "дня"),
    ],
)
def test_russian_days(n: int, word: str) -> None:
    assert plural_ru(n, "день", "дня", "дней") == word
    assert days(n) == f"{n}{NBSP}{word}"


def test_english_days() -> None:
    assert days(1, Locale.EN) == f"1{NBSP}day"
    assert days(2, Locale.EN) == f"2{NBSP}days"
    assert days(0, Locale.EN) == f"0{NBSP}days"


def test_voted_of() -> None:
    assert voted_of(6, 10) == "Проголосовало 6 из 10"
    assert voted_of(6, 10, Locale.EN) == "6 of 10 voted"


@pytest.mark.parametrize(
    ("n", "ru", "en"),
    [
        (0, "0 Б", "0 B"),
        (300, "300 Б", "300 B"),
        (1536, "1,5 КБ", "1.5 KB"),
        (20 * 1024 * 1024, "20 МБ", "20 MB"),
        (5 * 1024**4, "5120 ГБ", "5120 GB"),
    ],
)
def test_file_size(n: int, ru: str, en: str) -> None:
    assert file_size(n) == ru.replace(" ", NBSP)
    assert file_size(n, Locale.EN) == en.replace(" ", NBSP)
