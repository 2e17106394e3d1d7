"""Full-text search: stems (Russian and English Snowball), queries that FTS5 and PostgreSQL
take whatever people type, which events are searchable, and snippets of a hit."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.domain.search import (
    MAX_QUERY_WORDS,
    MAX_TEXT,
    edited_event,
    fts5_query,
    index_terms,
    postgres_query,
    searchable_text,
    snippet,
    stem,
    words,
)

# Explicit alphabets: Hypothesis builds its Unicode tables lazily, which is slow on a fresh CI.
QUERY_ALPHABET = "азЯЁёeZ09 \"'*()-+^:{}[]._,;!?\\/\t\n\x00«»—NEAROTD"
TEXT_ALPHABET = "абвгдеёжзиклмнопрстуфхцчшщыьэюяАБЁabcxyzQ0123 .,-_\n\t\x00«»"


@pytest.fixture
def fts() -> Iterator[sqlite3.Connection]:
    """The bridge's FTS5 table (db/schema: `fts5(terms)`), in memory."""
    connection = sqlite3.connect(":memory:")
    connection.execute("CREATE VIRTUAL TABLE search_fts USING fts5(terms)")
    yield connection
    connection.close()


def matching(connection: sqlite3.Connection, query: str) -> list[int]:
    match = fts5_query(query)
    if match is None:
        return []
    rows = connection.execute(
        "SELECT rowid FROM search_fts WHERE search_fts MATCH ? ORDER BY rowid", (match,)
    )
    return [row[0] for row in rows]


def index(connection: sqlite3.Connection, *texts: str) -> None:
    for rowid, text in enumerate(texts, 1):
        connection.execute(
            "INSERT INTO search_fts (rowid, terms) VALUES (?, ?)", (rowid, index_terms(text))
        )


def message(msgtype: str = "m.text", /, **content: Any) -> dict[str, Any]:
    return {
        "type": "m.room.message",
        "event_id": "$e",
        "sender": "@ivanova:corp.example",
        "content": {"msgtype": msgtype, **content},
    }


# --- stems -----------------------------------------------------------------------------------


def test_russian_forms_of_a_word_share_its_stem() -> None:
    forms = ["арматура", "арматуры", "арматуре", "арматуру", "арматурой", "Арматурою"]
    assert {stem(form) for form in forms} == {"арматур"}
    assert len({stem(form) for form in ["поставка", "поставки", "поставкой", "поставку"]}) == 1
    assert len({stem(form) for form in ["бетон", "бетона", "бетоном", "бетоны"]}) == 1


def test_english_forms_of_a_word_share_its_stem() -> None:
    assert {stem(form) for form in ["delivery", "deliveries"]} == {stem("delivery")}
    assert {stem(form) for form in ["invoice", "invoices", "invoiced", "invoicing"]} == {
        stem("invoice")
    }


def test_stems_ignore_case_and_yo() -> None:
    assert stem("АРМАТУРА") == stem("арматура")
    assert stem("Ёлка") == stem("елка") == stem("ёлки")
    assert stem("ЕЩЁ") == stem("еще")
    assert "ё" not in stem("ёжик")
    assert stem("DELIVERY") == stem("delivery")


def test_a_word_with_cyrillic_letters_is_stemmed_as_russian() -> None:
    # А500С written in Cyrillic: the Russian stemmer, which leaves it alone.
    assert stem("А500С") == "а500с"
    assert stem("A500C") == "a500c"
    assert stem("12345") == "12345"


@given(st.text("абвгдеёжзиклмнопрстуфхцчшщъыьэюяabcdefghijklmnopqrstuvwxyz0", min_size=1))
def test_a_stem_is_never_empty_and_in_lower_case_without_yo(word: str) -> None:
    stemmed = stem(word)
    assert stemmed
    assert stemmed == stemmed.casefold()
    assert "ё" not in stemmed


# --- words and the index -------------------------------------------------------------------


def test_words_are_letters_and_digits() -> None:
    assert words("Арматура А500С, 12 т.") == ["Арматура", "А500С", "12", "т"]
    assert words("ТКА-234/01_02") == ["ТКА", "234", "01", "02"]
    assert words("a\x00b\tc\nd") == ["a", "b", "c", "d"]
    assert words("«»—!?*()\"'") == []
    assert words("") == []


def test_the_index_holds_the_stems_of_the_words() -> None:
    assert index_terms("Поставка арматуры, 12 т!") == "поставк арматур 12 т"
    assert index_terms("") == ""
    assert index_terms("\x00 — ?") == ""


def test_only_the_first_part_of_a_huge_message_is_indexed() -> None:
    text = "а " * MAX_TEXT + "арматура"
    assert "арматур" not in index_terms(text)
    assert "арматур" in index_terms("арматура " + "а " * MAX_TEXT)


# --- the FTS5 query ------------------------------------------------------------------------


def test_every_word_is_required_by_its_stem_as_a_prefix() -> None:
    assert fts5_query("Арматура") == '"арматур"*'
    assert fts5_query("поставка арматуры") == '"поставк"* AND "арматур"*'


def test_a_query_without_words_is_none() -> None:
    for query in ("", "   ", "\n\t", "\x00", "\x00\x00", '"', '""', "*", "()", "-", "?!…", "«»—"):
        assert fts5_query(query) is None, repr(query)
        assert postgres_query(query) is None, repr(query)


def test_fts5_syntax_is_searched_for_not_obeyed(fts: sqlite3.Connection) -> None:
    index(fts, "near the gate", "apples or pears", "not here")
    # Operators and syntax are quoted: they are words to find, and the query stays an AND.
    assert fts5_query("NEAR(a b)") == '"near"* AND "a"* AND "b"*'
    assert fts5_query("a OR b") == '"a"* AND "or"* AND "b"*'
    assert fts5_query("a NOT b") == '"a"* AND "not"* AND "b"*'
    assert fts5_query("terms: x") == '"term"* AND "x"*'
    assert fts5_query('"a" * (b) -c ^d {terms}:e') == (
        '"a"* AND "b"* AND "c"* AND "d"* AND "term"* AND "e"*'
    )
    assert matching(fts, "near") == [1]
    assert matching(fts, "NEAR(gate the)") == [1]
    assert matching(fts, "apples OR lemons") == []
    assert matching(fts, "apples OR pears") == [2]
    assert matching(fts, "NOT") == [3]
    assert matching(fts, "here NOT") == [3]


@pytest.mark.parametrize(
    "query",
    [
        '"',
        '"""',
        'a"b',
        "a*",
        "*a",
        "(a",
        "a)",
        "-a",
        "a - b",
        "NEAR(",
        "NEAR(a b, 2)",
        "a AND",
        "OR",
        "AND NOT",
        "col:terms",
        "terms:",
        "^a",
        "{terms} : a",
        "a + b",
        "арматура\x00бетон",
        "\x00OR\x00",
        "'; DROP TABLE search_fts; --",
    ],
)
def test_fts5_accepts_every_query_made(fts: sqlite3.Connection, query: str) -> None:
    index(fts, "a b terms арматура бетон or and not near")
    matching(fts, query)  # no sqlite3.OperationalError


@given(st.text(QUERY_ALPHABET, max_size=60))
def test_any_query_is_valid_fts5_or_none(query: str) -> None:
    match = fts5_query(query)
    if match is None:
        assert not words(query)
        return
    connection = sqlite3.connect(":memory:")
    try:
        connection.execute("CREATE VIRTUAL TABLE search_fts USING fts5(terms)")
        connection.execute("INSERT INTO search_fts (terms) VALUES ('арматур поставк near or')")
        connection.execute("SELECT rowid FROM search_fts WHERE search_fts MATCH ?", (match,))
    finally:
        connection.close()
    # Nothing but quoted stems, each a prefix, joined by AND.
    terms = match.split(" AND ")
    assert len(terms) == min(len(words(query)), MAX_QUERY_WORDS)
    for term in terms:
        assert re.fullmatch(r'"[^\W_]+"\*', term), term


def test_a_query_takes_its_first_words_only() -> None:
    query = " ".join(f"слово{i}" for i in range(100))
    match = fts5_query(query)
    assert match is not None
    assert match.count(" AND ") == MAX_QUERY_WORDS - 1
    assert '"слово7"*' in match
    assert "слово8" not in match
    found = postgres_query(query)
    assert found is not None
    assert found.split(" & ") == [f"слово{i}:*" for i in range(MAX_QUERY_WORDS)]


def test_a_huge_query_is_cut_to_a_small_one() -> None:
    match = fts5_query("арматура " * 100_000)
    assert match is not None
    assert len(match) < 200
    one_word = fts5_query("щ" * 100_000)
    assert one_word is not None  # one very long word: a long but valid term


def test_forms_of_a_word_find_each_other(fts: sqlite3.Connection) -> None:
    index(
        fts,
        "Поставка арматуры А500С задерживается",
        "Счёт за арматуру оплачен",
        "Привезли бетон",
        "Ёлки у проходной",
        "The invoices are paid",
    )
    assert matching(fts, "арматура") == [1, 2]
    assert matching(fts, "АРМАТУРОЙ") == [1, 2]
    assert matching(fts, "арматур") == [1, 2]
    assert matching(fts, "арматура поставки") == [1]
    assert matching(fts, "арматура бетон") == []
    assert matching(fts, "счет") == [2]
    assert matching(fts, "елка") == [4]
    assert matching(fts, "ёлкой") == [4]
    assert matching(fts, "invoice") == [5]
    assert matching(fts, "Paid!") == [5]


@given(st.text(TEXT_ALPHABET, max_size=80), st.data())
def test_a_message_is_found_by_any_of_its_words(text: str, data: st.DataObject) -> None:
    found = words(text)
    if not found:
        return
    chosen = data.draw(st.lists(st.sampled_from(found), min_size=1, max_size=3))
    connection = sqlite3.connect(":memory:")
    try:
        connection.execute("CREATE VIRTUAL TABLE search_fts USING fts5(terms)")
        index(connection, text)
        query = " ".join(word.upper() for word in chosen)
        assert matching(connection, query) == [1], (text, query)
    finally:
        connection.close()


# --- the PostgreSQL query ---------------------------------------------------------------------


def test_postgres_gets_the_words_only() -> None:
    assert postgres_query("Арматура А500С!") == "Арматура:* & А500С:*"
    assert postgres_query("a & b | !c <-> d:*") == "a:* & b:* & c:* & d:*"
    assert postgres_query("арматура\x00бетон") == "арматура:* & бетон:*"
    assert postgres_query("'; DROP TABLE search_entry; --") == (
        "DROP:* & TABLE:* & search:* & entry:*"
    )


@given(st.text(QUERY_ALPHABET, max_size=60))
def test_the_postgres_query_is_words_and_spaces(query: str) -> None:
    found = postgres_query(query)
    if found is None:
        assert not words(query)
    else:
        assert re.fullmatch(r"[^\W_]+:\*( & [^\W_]+:\*)*", found)
        assert len(found.split(" & ")) <= MAX_QUERY_WORDS


# --- what is searchable ------------------------------------------------------------------------


@pytest.mark.parametrize("msgtype", ["m.text", "m.notice", "m.emote"])
def test_a_message_s_body_is_searchable(msgtype: str) -> None:
    event = message(msgtype, body="Поставка арматуры задерживается")
    assert searchable_text(event) == "Поставка арматуры задерживается"


@pytest.mark.parametrize("msgtype", ["m.file", "m.image", "m.video", "m.audio"])
def test_a_file_s_caption_and_name_are_searchable(msgtype: str) -> None:
    event = message(msgtype, body="Коммерческое предложение", filename="КП_ТоргПрофи.pdf")
    assert searchable_text(event) == "Коммерческое предложение КП_ТоргПрофи.pdf"


def test_a_file_named_by_its_body_is_said_once() -> None:
    assert searchable_text(message("m.file", body="offer.pdf", filename="offer.pdf")) == (
        "offer.pdf"
    )
    assert searchable_text(message("m.file", body="offer.pdf")) == "offer.pdf"
    assert searchable_text(message("m.file", body="  ", filename="offer.pdf")) == "offer.pdf"


@pytest.mark.parametrize(
    "event",
    [
        message("m.location", body="geo:59.9,30.3", geo_uri="geo:59.9,30.3"),
        message("m.key.verification.request", body="verify"),
        message("m.server_notice", body="notice"),
        {"type": "m.room.message", "content": {"body": "no msgtype"}},
        message("m.text"),
        message("m.text", body=""),
        message("m.text", body=" \n\t "),
        message("m.text", body=42),
        message("m.text", body=["list"]),
        message("m.file", body=None, filename={"name": "x"}),
        {"type": "m.room.message", "content": {}},  # redacted
        {"type": "m.room.message", "content": "text"},
        {"type": "m.room.message", "content": None},
        {"type": "m.room.message"},
        {"type": "m.room.encrypted", "content": {"algorithm": "m.megolm.v1.aes-sha2"}},
        {"type": "m.room.topic", "content": {"msgtype": "m.text", "body": "topic"}},
        {"type": "m.sticker", "content": {"body": "sticker"}},
        {"type": "org.matrix.msc3381.poll.start", "content": {"body": "poll"}},
        {"content": {"msgtype": "m.text", "body": "no type"}},
        {},
    ],
)
def test_nothing_else_is_searchable(event: dict[str, Any]) -> None:
    assert searchable_text(event) is None


def test_an_edit_is_searched_by_its_new_text() -> None:
    event = message(
        body="* Арматура приедет в пятницу",
        **{
            "m.new_content": {"msgtype": "m.text", "body": "Арматура приедет в пятницу"},
            "m.relates_to": {"rel_type": "m.replace", "event_id": "$original"},
        },
    )
    assert searchable_text(event) == "Арматура приедет в пятницу"
    assert edited_event(event) == "$original"


def test_an_edit_into_something_unsearchable_is_not_searched() -> None:
    event = message(body="* x", **{"m.new_content": {"msgtype": "m.location", "body": "geo"}})
    assert searchable_text(event) is None
    no_type = message(body="* x", **{"m.new_content": {"body": "new"}})
    assert searchable_text(no_type) is None


def test_a_malformed_new_content_is_ignored() -> None:
    assert searchable_text(message(body="old", **{"m.new_content": "new"})) == "old"
    assert searchable_text(message(body="old", **{"m.new_content": None})) == "old"


def test_a_long_message_is_kept_whole() -> None:
    body = "арматура " * 10_000
    assert searchable_text(message(body=body)) == body


def test_searchable_text_holds_no_nul() -> None:
    # Synapse passes NUL through (tests/integration/test_fail_closed.py sends a file named
    # "offer\x00final.pdf"). The text goes to SearchIndex.add, whose INSERT into a TEXT column
    # PostgreSQL refuses ('invalid byte sequence for encoding "UTF8": 0x00'), failing the
    # whole event in the recorder. The text should come out with NUL replaced (as
    # domain.text.clean_text does) or not at all.
    for event in (
        message(body="Счёт\x00 на оплату"),
        message("m.file", body="offer\x00final.pdf", filename="offer\x00final.pdf"),
        message(body="* x", **{"m.new_content": {"msgtype": "m.text", "body": "a\x00b"}}),
    ):
        text = searchable_text(event)
        assert text is None or "\x00" not in text, repr(text)


# --- edits -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        {"body": "plain"},
        {"m.relates_to": {"rel_type": "m.thread", "event_id": "$root"}},
        {"m.relates_to": {"rel_type": "m.annotation", "event_id": "$x", "key": "👍"}},
        {"m.relates_to": {"rel_type": "m.reference", "event_id": "$x"}},
        {"m.relates_to": {"m.in_reply_to": {"event_id": "$x"}}},
        {"m.relates_to": {"rel_type": "m.replace"}},
        {"m.relates_to": {"rel_type": "m.replace", "event_id": 42}},
        {"m.relates_to": {"rel_type": "m.replace", "event_id": None}},
        {"m.relates_to": "m.replace"},
        {"m.relates_to": None},
    ],
)
def test_only_a_replacement_edits_an_event(content: dict[str, Any]) -> None:
    assert edited_event({"type": "m.room.message", "content": content}) is None


def test_an_event_without_content_edits_nothing() -> None:
    assert edited_event({}) is None
    assert edited_event({"content": None}) is None
    assert edited_event({"content": ["m.replace"]}) is None


# --- snippets ----------------------------------------------------------------------------------


def test_a_short_text_is_its_own_snippet_on_one_line() -> None:
    assert snippet("Арматура\nприедет\t\tв   пятницу", "арматура") == "Арматура приедет в пятницу"
    assert snippet("", "арматура") == ""
    assert snippet("   \n ", "арматура") == ""


def test_a_snippet_shows_the_hit_in_the_middle_of_a_long_text() -> None:
    text = "Вступление " * 50 + "поставка АРМАТУРОЙ задерживается " + "хвост " * 50
    piece = snippet(text, "арматура")
    assert piece.startswith("…")
    assert piece.endswith("…")
    assert "АРМАТУРОЙ" in piece
    assert len(piece) <= 160 + 2
    # The hit comes after up to a third of the width of context, which begins with a whole word.
    assert 1 + 160 // 3 - 2 * len("Вступление ") < piece.index("АРМАТУРОЙ") <= 1 + 160 // 3
    assert piece.startswith("…Вступление ")


def test_a_snippet_finds_the_hit_through_yo_and_case() -> None:
    text = "х " * 200 + "Ёлки у проходной"
    assert "Ёлки" in snippet(text, "елка")
    assert "Ёлки" in snippet(text, "ЁЛКОЙ")


def test_without_a_hit_a_snippet_is_the_beginning() -> None:
    text = "начало " + "x" * 1000
    piece = snippet(text, "арматура")
    assert piece.startswith("начало ")
    assert piece.endswith("…")
    assert len(piece) == 160 + 1
    assert snippet(text, "") == piece
    assert snippet(text, "?!") == piece


def test_a_hit_near_the_start_is_shown_from_the_start() -> None:
    text = "Арматура приедет в пятницу. " * 20
    piece = snippet(text, "пятница")
    assert piece.startswith("Арматура")


def test_a_hit_at_the_end_ends_the_snippet() -> None:
    text = "слово " * 100 + "арматура"
    piece = snippet(text, "арматура")
    assert piece.startswith("…")
    assert piece.endswith("арматура")


def test_a_snippet_has_the_width_asked_for() -> None:
    text = "слово " * 100 + "арматура " + "слово " * 100
    for width in (10, 60, 300):
        piece = snippet(text, "арматура", width)
        assert len(piece) <= width + 2


@given(
    st.text(TEXT_ALPHABET, max_size=600),
    st.text(TEXT_ALPHABET, max_size=20),
    st.integers(min_value=3, max_value=400),
)
def test_a_snippet_is_one_bounded_line_of_the_text(text: str, query: str, width: int) -> None:
    piece = snippet(text, query, width)
    assert len(piece) <= width + 2
    assert "\n" not in piece
    assert "\t" not in piece
    assert piece.strip("…") in " ".join(text.split())


@given(st.integers(min_value=0, max_value=500), st.integers(min_value=0, max_value=500))
def test_the_hit_is_always_in_the_snippet(before: int, after: int) -> None:
    text = "ж " * before + "арматурой" + " з" * after
    assert "арматурой" in snippet(text, "АРМАТУРА")
