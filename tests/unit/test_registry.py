"""The document registry without a server: file messages, who has seen what, the cards, the
payloads against the OpenAPI document, downloads' headers and size-limited reads."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.multipart import content_disposition_filename, parse_content_disposition

from bridge.domain.cards import (
    document_not_found_card,
    document_too_large_card,
    documents_card,
    seen_card,
)
from bridge.domain.ids import DocumentId, EventId, ProcurementId, RoomId, RoomKey, UserId
from bridge.domain.locale import Locale
from bridge.domain.registry import (
    DocumentSource,
    ReadMark,
    RegisteredDocument,
    Sighting,
    document_uploaded_payload,
    document_view,
    file_message_content,
    find_document,
    mime_for,
    parse_file_message,
    parse_mxc,
    seen_by,
)
from bridge.matrix.media import TooLarge, read_limited
from bridge.web.api import content_disposition

from .test_cards import check_html, lines
from .test_openapi import schema_validator

BOT = UserId("@procbot:corp.example")
KIRILLOV = UserId("@kirillov:corp.example")
KONOVALOV = UserId("@konovalov:corp.example")
IVANOVA = UserId("@ivanova:corp.example")
T0 = datetime(2022, 4, 14, 9, 30, tzinfo=UTC)


def document(**changes: Any) -> RegisteredDocument:
    base = RegisteredDocument(
        doc_id=DocumentId("0f" * 16),
        procurement_id=ProcurementId("26908"),
        room_id=RoomId("!supplier:corp.example"),
        room_key=RoomKey("supplier:torgprofi"),
        event_id=EventId("$offer"),
        filename="Предложение ТоргПрофи.pdf",
        mime_type="application/pdf",
        size=20 * 1024 * 1024,
        sha256="ab" * 32,
        uploader=KIRILLOV,
        uploaded_at=T0,
        source=DocumentSource.USER,
        caption=None,
    )
    return replace(base, **changes)


# --- file messages ---------------------------------------------------------------------


def test_a_file_message_as_element_sends_it() -> None:
    file = parse_file_message(
        {
            "msgtype": "m.file",
            "body": "offer.pdf",
            "url": "mxc://corp.example/AbC_12-x",
            "info": {"mimetype": "application/pdf", "size": 10},
        }
    )
    assert file is not None
    assert (file.filename, file.mime_type, file.caption) == ("offer.pdf", "application/pdf", None)
    assert parse_mxc(file.mxc) == ("corp.example", "AbC_12-x")


def test_a_caption_is_the_body_beside_a_filename() -> None:
    file = parse_file_message(
        {
            "msgtype": "m.image",
            "body": "Фото накладной",
            "filename": "IMG_1.jpg",
            "url": "mxc://a/b",
        }
    )
    assert file is not None
    assert (file.filename, file.caption, file.mime_type) == ("IMG_1.jpg", "Фото накладной", None)


@pytest.mark.parametrize(
    "content",
    [
        {"msgtype": "m.text", "body": "документы"},
        {"msgtype": "m.file", "body": "a.pdf"},
        {"msgtype": "m.file", "body": "a.pdf", "url": "https://evil.example/a.pdf"},
        {"msgtype": "m.file", "body": "a.pdf", "url": "mxc://a/../../etc"},
        {
            "msgtype": "m.file",
            "body": "* a.pdf",
            "url": "mxc://a/b",
            "m.relates_to": {"rel_type": "m.replace", "event_id": "$x"},
        },
        {"msgtype": {"m.file": True}, "body": "a.pdf", "url": "mxc://a/b"},  # was a TypeError
        {"msgtype": ["m.file"], "body": "a.pdf", "url": "mxc://a/b"},
    ],
    ids=["text", "no-url", "http-url", "path-in-mxc", "edit", "msgtype-object", "msgtype-list"],
)
def test_what_is_not_a_file(content: dict[str, Any]) -> None:
    assert parse_file_message(content) is None


def test_a_bad_mime_type_is_dropped_and_guessed_from_the_name() -> None:
    file = parse_file_message(
        {"msgtype": "m.file", "body": "a.pdf", "url": "mxc://a/b", "info": {"mimetype": "x\ny"}}
    )
    assert file is not None
    assert file.mime_type is None
    assert mime_for(file.filename, file.mime_type) == "application/pdf"
    assert mime_for("README", None) == "application/octet-stream"
    assert mime_for("a.pdf", "text/plain") == "text/plain"


def test_the_bots_file_message() -> None:
    content = file_message_content("DS-3.pdf", "application/pdf", 5, "mxc://a/b", "ДС № 3")
    assert content["msgtype"] == "m.file"
    assert content["body"] == "ДС № 3"
    assert content["filename"] == "DS-3.pdf"
    assert content["info"] == {"mimetype": "application/pdf", "size": 5}
    file = parse_file_message(content)
    assert file is not None
    assert (file.filename, file.caption) == ("DS-3.pdf", "ДС № 3")
    assert (
        file_message_content("a.pdf", "application/pdf", 1, "mxc://a/b", None)["body"] == "a.pdf"
    )


# --- who has seen it -------------------------------------------------------------------


def test_seen_by_those_who_read_up_to_or_past_it() -> None:
    marks = [
        ReadMark(KONOVALOV, 10, T0 + timedelta(minutes=5)),  # read exactly the file
        ReadMark(IVANOVA, 9, T0),  # stopped before it
        ReadMark(KIRILLOV, 12, T0),  # the uploader
        ReadMark(BOT, 40, T0),
        ReadMark(UserId("@petrov:corp.example"), 30, T0 + timedelta(minutes=1)),
    ]
    seen = seen_by(10, KIRILLOV, marks, BOT)
    assert seen == [
        Sighting(UserId("@petrov:corp.example"), T0 + timedelta(minutes=1)),
        Sighting(KONOVALOV, T0 + timedelta(minutes=5)),
    ]
    assert seen_by(None, KIRILLOV, marks, BOT) == []


def test_find_document_by_part_of_its_name_latest_first() -> None:
    older = document(doc_id=DocumentId("1"), filename="ДС-1.pdf")
    newer = document(doc_id=DocumentId("2"), filename="ДС-2.PDF")
    other = document(doc_id=DocumentId("3"), filename="Счёт.xlsx")
    documents = [older, newer, other]
    assert find_document(documents, "дс") == newer
    assert find_document(documents, "ДС-1") == older
    assert find_document(documents, "") == other
    assert find_document(documents, "протокол") is None
    assert find_document([], "") is None


# --- payloads and the OpenAPI document -------------------------------------------------


def test_document_uploaded_payload_matches_the_document() -> None:
    payload = document_uploaded_payload(document())
    schema_validator("DocumentUploaded").validate(payload)
    assert payload["uploaded_at"] == "2022-04-14T09:30:00.000+00:00"
    assert payload["document_id"] == "0f" * 16


def test_document_view_matches_the_document() -> None:
    view = document_view(document(), [Sighting(KONOVALOV, T0)])
    schema_validator("RegistryDocument").validate(view)
    assert view["seen_by"] == [{"user": KONOVALOV, "ts": "2022-04-14T09:30:00.000+00:00"}]
    posted = document_view(
        document(event_id=None, uploader=BOT, source=DocumentSource.BRIDGE, caption="ДС"), []
    )
    schema_validator("RegistryDocument").validate(posted)
    assert posted["source"] == "bridge"


@pytest.mark.parametrize(
    "filename",
    ["DS-3.pdf", "Предложение «ТоргПрофи».pdf", 'a"b\\c/d;e.txt', "пробел и 100%.docx"],
)
def test_content_disposition_keeps_the_name(filename: str) -> None:
    header = content_disposition(filename)
    assert header.isascii()
    kind, params = parse_content_disposition(header)
    assert kind == "attachment"
    assert content_disposition_filename(params, "filename") == filename
    assert not set(params["filename"]) & set('"\\/')


# --- cards -----------------------------------------------------------------------------


def test_documents_card_in_russian() -> None:
    names = {KIRILLOV: "Кириллов И.П."}
    card = documents_card([document()], names)
    assert lines(card.body) == [
        "Документы чата",
        "• Предложение ТоргПрофи.pdf (application/pdf, 20 МБ) — Загрузил: Кириллов И.П., "
        "14.04.2022 09:30 (UTC)",
        "Файлы хранятся в реестре документов закупки.",
    ]
    assert "<b>Предложение ТоргПрофи.pdf</b>" in card.html
    check_html(card)


def test_documents_card_in_english_and_empty() -> None:
    card = documents_card([document(filename="offer.pdf", size=300)], None, Locale.EN)
    assert "offer.pdf (application/pdf, 300 B) — Uploaded by: @kirillov:corp.example" in (
        card.body.replace("\u00a0", " ")
    )
    assert "14 Apr 2022 09:30 (UTC)" in card.body
    assert documents_card([]).body == "В этом чате пока нет документов"
    assert documents_card([], locale=Locale.EN).body == "There are no documents in this chat yet"


def test_seen_card_lists_readers_and_says_it_is_best_effort() -> None:
    card = seen_card(document(), [Sighting(KONOVALOV, T0 + timedelta(hours=1))])
    assert lines(card.body) == [
        "Кто видел: Предложение ТоргПрофи.pdf",
        "Загрузил: @kirillov:corp.example, 14.04.2022 09:30 (UTC)",
        "• @konovalov:corp.example — 14.04.2022 10:30 (UTC)",
        "По отметкам о прочтении: скрытые отметки о прочтении не видны, "
        "поэтому список может быть неполным.",
    ]
    check_html(card)
    nobody = seen_card(document(), [], locale=Locale.EN)
    assert "Nobody has marked it read yet" in nobody.body
    assert "private read receipts are not visible" in nobody.body


def test_cards_escape_what_people_wrote() -> None:
    evil = "<img src=x onerror=alert(1)>.pdf"
    for card in (
        documents_card([document(filename=evil)], {KIRILLOV: "<b>Кириллов</b>"}),
        seen_card(document(filename=evil), [Sighting(KONOVALOV, T0)], {KONOVALOV: "<i>К</i>"}),
        document_not_found_card(evil),
        document_too_large_card(evil, 10, 5),
    ):
        assert "<img" not in card.html
        assert "&lt;img" in card.html
        check_html(card)
    assert "<b>Кириллов</b>" not in documents_card([document()], {KIRILLOV: "<b>К</b>"}).html


def test_not_found_and_too_large_cards() -> None:
    assert document_not_found_card("ДС-9").body.startswith("Документ не найден в этом чате: ДС-9")
    assert document_not_found_card("").body == "В этом чате пока нет документов"
    large = document_too_large_card("scan.tiff", 60 * 1024 * 1024, 50 * 1024 * 1024)
    assert lines(large.body) == [
        "⚠️ Файл не внесён в реестр документов: scan.tiff",
        "Размер файла 60 МБ, а допустимо не больше 50 МБ.",
    ]
    unknown = document_too_large_card("scan.tiff", None, 1024, Locale.EN)
    assert "The file is > 1.0 KB, over the limit of 1.0 KB." in unknown.body.replace("\u00a0", " ")


# --- size-limited reads ----------------------------------------------------------------


class _Stream:
    """Hands out `total` bytes, recording how much was asked for each time."""

    def __init__(self, total: int) -> None:
        self.left = total
        self.asked: list[int] = []

    async def read(self, n: int) -> bytes:
        self.asked.append(n)
        given = min(n, self.left, 1000)
        self.left -= given
        return b"x" * given


async def test_read_limited_reads_at_most_one_byte_past_the_limit() -> None:
    stream = _Stream(10_000)
    with pytest.raises(TooLarge):
        await read_limited(stream, 2500)  # type: ignore[arg-type]
    assert sum(stream.asked) - stream.left <= 2501
    assert 10_000 - stream.left == 2501


async def test_read_limited_returns_what_fits() -> None:
    assert await read_limited(_Stream(2500), 2500) == b"x" * 2500  # type: ignore[arg-type]
    with pytest.raises(TooLarge) as raised:
        await read_limited(_Stream(0), 10, announced=11)  # type: ignore[arg-type]
    assert raised.value.size == 11
