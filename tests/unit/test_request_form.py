"""Requests (заявки) filled in with the bot: the configured fields, each answer checked, and
the procurement system's answer (`request.accepted` / `request.rejected`)."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from bridge.domain.errors import InvalidInput
from bridge.domain.locale import Locale
from bridge.domain.phrases import PHRASES
from bridge.domain.request_form import (
    DEFAULT_FIELDS,
    MAX_FIELDS,
    MAX_TEXT,
    BadAnswer,
    FieldKind,
    FormField,
    RequestAnswer,
    check_answer,
    next_field,
    parse_fields,
    parse_request_accepted,
    parse_request_rejected,
    request_submitted_payload,
)
from bridge.domain.webhooks import parse_webhook
from bridge.web.api import openapi_document

TODAY = date(2026, 3, 10)
QUESTION = {"ru": "Что нужно?", "en": "What is needed?"}
ITEM = FormField("item", {Locale.RU: "Что?", Locale.EN: "What?"}, FieldKind.TEXT)
QUANTITY = FormField("quantity", {Locale.RU: "Сколько?", Locale.EN: "How much?"}, FieldKind.NUMBER)
NEEDED_BY = FormField("needed_by", {Locale.RU: "Когда?", Locale.EN: "When?"}, FieldKind.DATE)
UNIT = FormField(
    "unit",
    {Locale.RU: "Единицы?", Locale.EN: "Unit?"},
    FieldKind.CHOICE,
    ("шт", "Т", "м²", "компл"),
)
DOCUMENT_URI = "urn:procurement-bridge:openapi"


def raw_field(**changes: Any) -> dict[str, Any]:
    field: dict[str, Any] = {"name": "item", "question": dict(QUESTION), "type": "text"}
    field.update(changes)
    return {key: value for key, value in field.items() if value is not ...}


def refused(raw: object) -> str:
    with pytest.raises(ValueError, match=r"^requests\.fields") as error:
        parse_fields(raw)
    return str(error.value)


def bad(field: FormField, answer: str) -> BadAnswer:
    with pytest.raises(BadAnswer) as error:
        check_answer(field, answer, TODAY)
    return error.value


def schema(name: str) -> Draft202012Validator:
    resource = Resource.from_contents(openapi_document(), default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource(DOCUMENT_URI, resource)
    return Draft202012Validator(
        {"$ref": f"{DOCUMENT_URI}#/components/schemas/{name}"}, registry=registry
    )


# --- the configured fields ---------------------------------------------------------------


def test_without_configuration_the_default_fields_are_asked() -> None:
    assert parse_fields(None) is DEFAULT_FIELDS
    assert [f.name for f in DEFAULT_FIELDS] == ["item", "quantity", "unit", "needed_by", "object"]
    for field in DEFAULT_FIELDS:
        assert set(field.question) == set(Locale)
        assert all(field.question[locale].strip() for locale in Locale)
        assert bool(field.options) == (field.kind is FieldKind.CHOICE)


def test_fields_of_every_kind_are_read() -> None:
    fields = parse_fields(
        [
            {"name": "item", "question": {"ru": "Что?", "en": "What?"}},
            {"name": "qty_2", "question": {"ru": "Сколько?", "en": "How many?"}, "type": "number"},
            {"name": "due", "question": {"ru": "Когда?", "en": "When?"}, "type": "date"},
            {
                "name": "unit",
                "question": {"ru": "Ед.?", "en": "Unit?"},
                "type": "choice",
                "options": ["шт", "т", 12],
            },
        ]
    )
    assert fields == (
        FormField("item", {Locale.RU: "Что?", Locale.EN: "What?"}, FieldKind.TEXT),
        FormField("qty_2", {Locale.RU: "Сколько?", Locale.EN: "How many?"}, FieldKind.NUMBER),
        FormField("due", {Locale.RU: "Когда?", Locale.EN: "When?"}, FieldKind.DATE),
        FormField(
            "unit", {Locale.RU: "Ед.?", Locale.EN: "Unit?"}, FieldKind.CHOICE, ("шт", "т", "12")
        ),
    )


def test_the_most_fields_and_options_allowed_are_taken() -> None:
    many = [raw_field(name=f"f{i}") for i in range(MAX_FIELDS)]
    assert len(parse_fields(many)) == MAX_FIELDS
    ten = raw_field(type="choice", options=[str(i) for i in range(10)])
    assert len(parse_fields([ten])[0].options) == 10
    longest = "a" + "_" * 39
    assert parse_fields([raw_field(name=longest)])[0].name == longest


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("item", "requests.fields: a list of at most 20 fields"),
        ({"name": "item"}, "requests.fields: a list of at most 20 fields"),
        (42, "requests.fields: a list of at most 20 fields"),
        ([raw_field(name=f"f{i}") for i in range(MAX_FIELDS + 1)], "requests.fields: a list"),
        (["item"], "requests.fields[0]: a field is a mapping with name, question, type"),
        ([raw_field(), None], "requests.fields[1]: a field is a mapping"),
        ([raw_field(name=...)], "requests.fields[0].name: lowercase letters, digits and _"),
        ([raw_field(name="Item")], "requests.fields[0].name:"),
        ([raw_field(name="1st")], "requests.fields[0].name:"),
        ([raw_field(name="_item")], "requests.fields[0].name:"),
        ([raw_field(name="item-2")], "requests.fields[0].name:"),
        ([raw_field(name="товар")], "requests.fields[0].name:"),
        ([raw_field(name="")], "requests.fields[0].name:"),
        ([raw_field(name="a" * 41)], "requests.fields[0].name:"),
        ([raw_field(name=7)], "requests.fields[0].name:"),
        ([raw_field(name="it\x00em")], "requests.fields[0].name:"),
        ([raw_field(question=...)], "requests.fields[0].question: give the question in ru and en"),
        ([raw_field(question="Что?")], "requests.fields[0].question: give"),
        ([raw_field(question={"ru": "Что?"})], "requests.fields[0].question: give"),
        ([raw_field(question={"ru": "Что?", "en": None})], "requests.fields[0].question:"),
        ([raw_field(question={"ru": 1, "en": "What?"})], "requests.fields[0].question:"),
        ([raw_field(type="list")], "requests.fields[0].type: one of text, number, date, choice"),
        ([raw_field(type="TEXT")], "requests.fields[0].type: one of"),
        ([raw_field(type=None)], "requests.fields[0].type: one of"),
        ([raw_field(type="choice")], "requests.fields[0].options: a choice needs 1 to 10 options"),
        ([raw_field(type="choice", options=[])], "requests.fields[0].options: a choice needs"),
        (
            [raw_field(type="choice", options=[str(i) for i in range(11)])],
            "requests.fields[0].options: a choice needs 1 to 10 options",
        ),
        (
            [raw_field(), raw_field(name="item", type="number")],
            "requests.fields: every field needs a name of its own",
        ),
    ],
)
def test_a_bad_configuration_names_the_bad_key(raw: object, message: str) -> None:
    assert refused(raw).startswith(message)


def test_the_errors_name_the_key_they_are_given() -> None:
    with pytest.raises(ValueError, match=r"^assistant\.form\[2\]\.name: "):
        parse_fields(
            [raw_field(name="a"), raw_field(name="b"), raw_field(name="C")], "assistant.form"
        )


def test_an_empty_list_asks_nothing() -> None:
    assert parse_fields([]) == ()
    assert next_field((), {}) is None


def test_a_field_name_with_a_trailing_newline_is_refused() -> None:
    # `re.match(r"^[a-z][a-z0-9_]{0,39}$", "item\n")` matches: the name "item\n" is taken
    # and becomes a key of the request.submitted callback's `fields`.
    refused([raw_field(name="item\n")])


def test_options_must_be_a_list() -> None:
    # `options: "шт, т, м"` in the YAML gives the options "ш", "т", ",", " ", … instead of
    # an error naming requests.fields[0].options.
    assert "requests.fields[0].options" in refused([raw_field(type="choice", options="шт, т, м")])


def test_options_that_are_a_number_are_refused_with_the_key() -> None:
    # `options: 5` raises TypeError ('int' object is not iterable), which Config.check does not
    # turn into a ConfigError: the bridge stops with a traceback instead of naming the key.
    assert "requests.fields[0].options" in refused([raw_field(type="choice", options=5)])


def test_fields_are_asked_in_order_until_all_are_answered() -> None:
    fields = (ITEM, QUANTITY, UNIT)
    assert next_field(fields, {}) == ITEM
    assert next_field(fields, {"item": "Арматура"}) == QUANTITY
    assert next_field(fields, {"quantity": "12"}) == ITEM
    assert next_field(fields, {"item": "Арматура", "quantity": "12"}) == UNIT
    assert next_field(fields, {"item": "a", "quantity": "1", "unit": "т"}) is None


# --- numbers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "kept"),
    [
        ("12", "12"),
        ("  12 ", "12"),
        ("2,5", "2.5"),
        ("2.5", "2.5"),
        ("1.50", "1.5"),
        ("100", "100"),
        ("1000000", "1000000"),
        ("1 000", "1000"),
        ("1\u00a0000,25", "1000.25"),
        ("0,001", "0.001"),
        ("0.000001", "0.000001"),
        ("007", "7"),
        ("999999999999", "999999999999"),
        ("999999999999.999999", "999999999999.999999"),
    ],
)
def test_a_number_is_kept_with_a_dot_and_no_exponent(typed: str, kept: str) -> None:
    assert check_answer(QUANTITY, typed, TODAY) == kept


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "   ",
        "0",
        "0,0",
        "0.000000",
        "-5",
        "+5",
        "1e3",
        "1E+2",
        "12 т",
        "двенадцать",
        "1,5,2",
        "1.",
        ".5",
        "1..5",
        "1000000000000",
        "1.0000001",
        "NaN",
        "Infinity",
        "1\x002",
        "12\x00",
        "½",
        "1" * 10_000,
    ],
)
def test_anything_but_a_positive_number_is_refused(typed: str) -> None:
    assert bad(QUANTITY, typed).reason == "invalid_number"


@given(
    st.decimals(
        min_value=Decimal("0.000001"),
        max_value=Decimal("999999999999"),
        places=6,
        allow_nan=False,
        allow_infinity=False,
    )
)
def test_any_positive_number_comes_back_with_its_value(value: Decimal) -> None:
    typed = format(value, "f").replace(".", ",")
    kept = check_answer(QUANTITY, typed, TODAY)
    assert re.fullmatch(r"[0-9]+(\.[0-9]*[1-9])?", kept), kept
    assert Decimal(kept) == value


# --- dates -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "kept"),
    [
        ("15.05.2026", "2026-05-15"),
        ("15/05/2026", "2026-05-15"),
        ("15-05-2026", "2026-05-15"),
        ("15 05 2026", "2026-05-15"),
        ("5.5.2026", "2026-05-05"),
        ("2026-05-15", "2026-05-15"),
        ("2026.05.15", "2026-05-15"),
        ("  2026-5-15\n", "2026-05-15"),
        ("10.03.2026", "2026-03-10"),  # today is not in the past
        ("29.02.2028", "2028-02-29"),
        ("31.12.9999", "9999-12-31"),
    ],
)
def test_a_date_is_kept_in_iso_form(typed: str, kept: str) -> None:
    assert check_answer(NEEDED_BY, typed, TODAY) == kept


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "завтра",
        "tomorrow",
        "09.03.2026",  # yesterday
        "2026-03-09",
        "01.01.2000",
        "15.05.26",  # the year 26
        "15.05",
        "2026-05",
        "15.05.2026.1",
        "31.02.2026",
        "29.02.2027",
        "00.05.2026",
        "15.13.2026",
        "15..2026",
        "15. 05. 2026",
        "15.05.2026 12:00",
        "15,05,2026",
        "2026-05-15T00:00",
        "15.05.2026\x00",
        "15\x00.05.2026",
        "01.01.10000",
        "1" * 5000,
    ],
)
def test_a_malformed_or_past_date_is_refused(typed: str) -> None:
    assert bad(NEEDED_BY, typed).reason == "invalid_date"


@pytest.mark.parametrize(
    "typed", ["01.01.99999999999999999999", "99999999999999999999.01.01", "2030-01-" + "9" * 25]
)
def test_a_date_with_a_huge_number_is_refused_not_a_crash(typed: str) -> None:
    # `date(int(...), ...)` raises OverflowError ("Python int too large to convert to C
    # long"), which _date does not catch: check_answer raises it instead of BadAnswer.
    assert bad(NEEDED_BY, typed).reason == "invalid_date"


@given(st.dates(min_value=TODAY, max_value=date(9999, 12, 31)))
def test_any_date_from_today_on_is_taken_both_ways(day: date) -> None:
    assert check_answer(NEEDED_BY, day.strftime("%d.%m.%Y"), TODAY) == day.isoformat()
    assert check_answer(NEEDED_BY, day.isoformat(), TODAY) == day.isoformat()


@given(st.dates(min_value=date(1000, 1, 1), max_value=TODAY - timedelta(days=1)))
def test_any_date_before_today_is_refused(day: date) -> None:
    assert bad(NEEDED_BY, day.strftime("%d.%m.%Y")).reason == "invalid_date"


# --- choices -----------------------------------------------------------------------------


def test_an_option_is_chosen_by_its_text_in_any_case_or_by_its_number() -> None:
    assert check_answer(UNIT, "шт", TODAY) == "шт"
    assert check_answer(UNIT, "  ШТ ", TODAY) == "шт"
    assert check_answer(UNIT, "т", TODAY) == "Т"  # kept as configured
    assert check_answer(UNIT, "м²", TODAY) == "м²"
    assert check_answer(UNIT, "1", TODAY) == "шт"
    assert check_answer(UNIT, "4", TODAY) == "компл"


@pytest.mark.parametrize(
    "typed", ["", "0", "5", "-1", "штук", "ш", "1.", "шт т", "шт\x00", "1" * 600]
)
def test_anything_else_is_refused_with_the_options(typed: str) -> None:
    error = bad(UNIT, typed)
    assert error.reason == "invalid_choice"
    assert error.values == {"options": "шт, Т, м², компл"}


# --- text --------------------------------------------------------------------------------


def test_text_is_kept_on_one_line() -> None:
    assert check_answer(ITEM, "  Арматура А500С ", TODAY) == "Арматура А500С"
    assert check_answer(ITEM, "Арматура\nА500С\tØ12", TODAY) == "Арматура А500С Ø12"
    assert check_answer(ITEM, "Rebar", TODAY) == "Rebar"


def test_control_characters_in_text_are_replaced() -> None:
    kept = check_answer(ITEM, "Арматура\x00А500С\x1b\x7f", TODAY)
    assert kept == "Арматура\ufffdА500С\ufffd\ufffd"
    assert check_answer(ITEM, "\x00", TODAY) == "\ufffd"


def test_text_up_to_the_limit_is_taken() -> None:
    assert check_answer(ITEM, "щ" * MAX_TEXT, TODAY) == "щ" * MAX_TEXT
    assert check_answer(ITEM, f"  {'щ' * MAX_TEXT}\n", TODAY) == "щ" * MAX_TEXT


@pytest.mark.parametrize("typed", ["", "   ", "\n\t", "щ" * (MAX_TEXT + 1), "x" * 100_000])
def test_empty_or_too_long_text_is_refused_with_the_limit(typed: str) -> None:
    error = bad(ITEM, typed)
    assert error.reason == "invalid_text"
    assert error.values == {"limit": MAX_TEXT}


@given(st.text("азЁё az09 \n\t\x00\x1f«»", max_size=MAX_TEXT))
def test_taken_text_is_one_clean_line_no_longer_than_typed(typed: str) -> None:
    if not typed.strip():
        assert bad(ITEM, typed).reason == "invalid_text"
        return
    kept = check_answer(ITEM, typed, TODAY)
    assert kept
    assert len(kept) <= len(typed.strip()) <= MAX_TEXT
    assert not re.search(r"[\x00-\x1f]", kept)


# --- the reasons explain themselves --------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "typed"), [(QUANTITY, "x"), (NEEDED_BY, "x"), (UNIT, "x"), (ITEM, "")]
)
def test_every_refusal_has_a_phrase_in_both_languages(field: FormField, typed: str) -> None:
    error = bad(field, typed)
    assert str(error) == error.reason
    for locale in Locale:
        phrase = PHRASES[locale][error.reason].format(**error.values)
        assert "{" not in phrase
        assert phrase.strip()


# --- the procurement system's answer -------------------------------------------------------


def test_an_acceptance_is_read() -> None:
    data = {"request_id": "R-2026.03:10~1", "number": "З-000123", "comment": "Принято в работу"}
    assert parse_request_accepted(data) == RequestAnswer(
        "R-2026.03:10~1", True, "З-000123", "Принято в работу"
    )
    assert parse_request_accepted({"request_id": "R-1", "number": "12"}) == RequestAnswer(
        "R-1", True, "12", None
    )
    assert parse_request_accepted({"request_id": "R-1", "number": "12", "comment": None}) == (
        RequestAnswer("R-1", True, "12", None)
    )


def test_a_rejection_is_read() -> None:
    data = {"request_id": "R-1", "reason": "Нет бюджета", "number": "ignored"}
    assert parse_request_rejected(data) == RequestAnswer("R-1", False, None, "Нет бюджета")


def test_the_largest_answers_allowed_are_taken() -> None:
    accepted = parse_request_accepted(
        {"request_id": "R" * 128, "number": "№" * 100, "comment": "к" * 1000}
    )
    assert accepted.number == "№" * 100
    assert accepted.reason == "к" * 1000
    assert parse_request_rejected({"request_id": "R-1", "reason": "п" * 1000}).reason == "п" * 1000


@pytest.mark.parametrize(
    ("data", "path", "error"),
    [
        (None, "data", "expected an object, got null"),
        ([], "data", "expected an object, got an array"),
        ("R-1", "data", "expected an object, got a string"),
        ({"number": "12"}, "data.request_id", "required field is missing"),
        ({"request_id": None, "number": "12"}, "data.request_id", "required field is missing"),
        ({"request_id": 1, "number": "12"}, "data.request_id", "expected a string, got a number"),
        ({"request_id": "", "number": "12"}, "data.request_id", "must not be empty"),
        ({"request_id": "R 1", "number": "12"}, "data.request_id", "is not an id"),
        ({"request_id": "R/1", "number": "12"}, "data.request_id", "is not an id"),
        ({"request_id": "-R1", "number": "12"}, "data.request_id", "is not an id"),
        ({"request_id": "заявка", "number": "12"}, "data.request_id", "is not an id"),
        ({"request_id": "R\x001", "number": "12"}, "data.request_id", "is not an id"),
        ({"request_id": "R" * 129, "number": "12"}, "data.request_id", "longer than 128"),
        ({"request_id": "R-1"}, "data.number", "required field is missing"),
        ({"request_id": "R-1", "number": 12}, "data.number", "expected a string, got a number"),
        ({"request_id": "R-1", "number": " "}, "data.number", "must not be empty"),
        ({"request_id": "R-1", "number": "1" * 101}, "data.number", "longer than 100"),
        ({"request_id": "R-1", "number": "\ud800"}, "data.number", "lone UTF-16 surrogate"),
        (
            {"request_id": "R-1", "number": "1", "comment": "к" * 1001},
            "data.comment",
            "longer than 1000",
        ),
        ({"request_id": "R-1", "number": "1", "comment": 5}, "data.comment", "expected a string"),
    ],
)
def test_a_bad_acceptance_names_its_field(data: object, path: str, error: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_request_accepted(data)
    assert raised.value.path == path
    assert error in raised.value.error


@pytest.mark.parametrize(
    ("data", "path", "errcode"),
    [
        ({"request_id": "R-1"}, "data.reason", "M_MISSING_PARAM"),
        ({"request_id": "R-1", "reason": ""}, "data.reason", "M_BAD_JSON"),
        ({"request_id": "R-1", "reason": "п" * 1001}, "data.reason", "M_BAD_JSON"),
        ({"request_id": "R-1", "reason": ["Нет"]}, "data.reason", "M_BAD_JSON"),
        ({"reason": "Нет"}, "data.request_id", "M_MISSING_PARAM"),
    ],
)
def test_a_bad_rejection_names_its_field(data: object, path: str, errcode: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_request_rejected(data)
    assert raised.value.path == path
    assert raised.value.errcode == errcode


def test_the_path_is_the_one_given() -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_request_rejected({"request_id": "R-1"}, "body.data")
    assert raised.value.path == "body.data.reason"


def test_both_answers_come_through_the_envelope() -> None:
    accepted = parse_webhook(
        {"type": "request.accepted", "data": {"request_id": "R-1", "number": "7"}}
    )
    assert accepted.value == RequestAnswer("R-1", True, "7", None)
    assert accepted.procurement_id is None
    rejected = parse_webhook(
        {"type": "request.rejected", "data": {"request_id": "R-1", "reason": "Нет"}}
    )
    assert rejected.value == RequestAnswer("R-1", False, None, "Нет")


@pytest.mark.parametrize(
    ("parse", "data", "key"),
    [
        (parse_request_accepted, {"request_id": "R-1", "number": "З-12\x00"}, "number"),
        (
            parse_request_accepted,
            {"request_id": "R-1", "number": "1", "comment": "a\x00"},
            "comment",
        ),
        (parse_request_rejected, {"request_id": "R-1", "reason": "Нет\x00бюджета"}, "reason"),
    ],
)
def test_nul_in_an_answer_is_refused_or_cleaned(
    parse: Any, data: dict[str, Any], key: str
) -> None:
    # The answer goes to `request.number` / `request.reason`, TEXT columns that PostgreSQL
    # fills only without NUL: the webhook is taken (202) and then fails in the worker. It
    # should be refused naming the field, or come out with NUL replaced.
    try:
        answer = parse(data)
    except InvalidInput as error:
        refused_at: str | None = error.path
    else:
        refused_at = None
        assert "\x00" not in (answer.number or "")
        assert "\x00" not in (answer.reason or "")
    assert refused_at in (None, f"data.{key}")


def test_a_request_id_with_a_trailing_newline_is_refused() -> None:
    # The OpenAPI Id pattern (ECMA-262 `$`) refuses "R-1\n"; document.SAFE_ID.match takes it.
    with pytest.raises(InvalidInput) as raised:
        parse_request_accepted({"request_id": "R-1\n", "number": "12"})
    assert raised.value.path == "data.request_id"


@pytest.mark.parametrize(
    "data",
    [
        {"request_id": "R-1", "number": "12"},
        {"request_id": "R-1", "number": "12", "comment": "ok"},
        {"request_id": "R" * 128, "number": "№" * 100, "comment": "к" * 1000},
        {"request_id": "R 1", "number": "12"},
        {"request_id": "R-1", "number": " "},
        {"request_id": "R-1", "number": "1" * 101},
        {"request_id": "R-1", "number": "12", "comment": "к" * 1001},
        {"request_id": "R-1"},
        {"number": "12"},
    ],
)
def test_the_parser_and_the_openapi_document_agree_on_acceptances(data: dict[str, Any]) -> None:
    body = {"type": "request.accepted", "data": data}
    try:
        parse_request_accepted(data)
    except InvalidInput:
        assert not schema("RequestAcceptedWebhook").is_valid(body)
    else:
        assert schema("RequestAcceptedWebhook").is_valid(body)


@pytest.mark.parametrize("comment", ["", None])
def test_the_parser_and_the_openapi_document_agree_on_the_comment(comment: str | None) -> None:
    data = {"request_id": "R-1", "number": "12", "comment": comment}
    body = {"type": "request.accepted", "data": data}
    try:
        parse_request_accepted(data)
    except InvalidInput:
        assert not schema("RequestAcceptedWebhook").is_valid(body)
    else:
        assert schema("RequestAcceptedWebhook").is_valid(body)


# --- the request.submitted callback --------------------------------------------------------


def test_the_submitted_payload_has_the_answers_by_name_in_the_fields_order() -> None:
    fields = (ITEM, QUANTITY, UNIT, NEEDED_BY)
    answers = {"needed_by": "2026-05-15", "unit": "Т", "item": "Арматура", "stray": "x"}
    payload = request_submitted_payload(
        "R-1", "@ivanova:corp.example", "26908", fields, answers, "2026-03-10T12:00:00+03:00"
    )
    assert payload == {
        "request_id": "R-1",
        "procurement_id": "26908",
        "user": "@ivanova:corp.example",
        "fields": {"item": "Арматура", "unit": "Т", "needed_by": "2026-05-15"},
        "submitted_at": "2026-03-10T12:00:00+03:00",
    }
    assert list(payload["fields"]) == ["item", "unit", "needed_by"]
    schema("RequestSubmitted").validate(payload)


def test_a_request_from_a_direct_chat_has_no_procurement() -> None:
    payload = request_submitted_payload(
        "R-2", "@ivanova:corp.example", None, DEFAULT_FIELDS, {}, "2026-03-10T09:00:00Z"
    )
    assert payload["procurement_id"] is None
    assert payload["fields"] == {}
    schema("RequestSubmitted").validate(payload)
    json.dumps(payload)


def test_checked_answers_make_a_valid_payload() -> None:
    answers = {
        "item": check_answer(ITEM, "Арматура\x00 А500С\nØ12", TODAY),
        "quantity": check_answer(QUANTITY, "1 000,50", TODAY),
        "unit": check_answer(UNIT, "2", TODAY),
        "needed_by": check_answer(NEEDED_BY, "15.05.2026", TODAY),
    }
    payload = request_submitted_payload(
        "R-3",
        "@ivanova:corp.example",
        "26908",
        (ITEM, QUANTITY, UNIT, NEEDED_BY),
        answers,
        "2026-03-10T12:00:00+03:00",
    )
    schema("RequestSubmitted").validate(payload)
    assert payload["fields"] == {
        "item": "Арматура\ufffd А500С Ø12",
        "quantity": "1000.5",
        "unit": "Т",
        "needed_by": "2026-05-15",
    }
