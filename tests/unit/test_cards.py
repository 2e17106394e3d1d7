"""The bot's cards (Russian and English, body and HTML) and the Matrix contents they go in."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone
from html.parser import HTMLParser
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.domain.approval import (
    ApprovalRefused,
    ApprovalState,
    Decision,
    RefusalCode,
    cancel,
    decide,
    parse_approval_request,
    start_approval,
)
from bridge.domain.cards import (
    Card,
    approval_card,
    context_card,
    format_date,
    format_datetime,
    help_card,
    refusal_card,
    refusal_message,
    turnout_line,
    vote_result_card,
    vote_status_card,
    voting_card,
)
from bridge.domain.errors import InvalidInput, Refused
from bridge.domain.events import (
    card_content,
    edit_content,
    parse_poll_response,
    pinned_events_content,
    poll_end_content,
    poll_start_content,
    vote_poll_content,
    vote_poll_end_content,
)
from bridge.domain.ids import EventId, UserId
from bridge.domain.locale import Locale
from bridge.domain.money import NBSP
from bridge.domain.vote import (
    CloseReason,
    VoteState,
    apply_answer,
    close,
    open_vote,
    parse_vote_request,
)

MSK = timezone(timedelta(hours=3))
T0 = datetime(2022, 4, 14, 12, 0, tzinfo=MSK)
COMMISSION = tuple(UserId(f"@member{i}:corp.example") for i in range(10))
KONOVALOV = UserId("@konovalov:corp.example")
PETRENKO = UserId("@petrenko:corp.example")
PETROV = UserId("@petrov:corp.example")
ALLOWED_TAGS = {
    "b", "strong", "i", "em", "br", "p", "ul", "li", "table", "tr", "td", "th", "code",
    "blockquote", "h4", "font", "a",
}  # fmt: skip


# The seed's attachment is 20 MB; encoded once, not for every generated example.
SPEC_PDF_BASE64 = base64.b64encode(b"x" * (20 * 1024 * 1024)).decode()


def vote_data(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "procurement_id": "26908",
        "vote_id": "V-174",
        "question": "Утвердить спецификацию 174/741-12.21-002?",
        "subject": {
            "kind": "specification",
            "number": "174/741-12.21-002",
            "supplier": "ООО «ТоргПрофи»",
            "delivery_term_days": 2,
            "delivery_date": "2022-05-12",
            "cost_without_vat": "48801.24",
            "cost_with_vat": "58561.49",
            "currency": "RUB",
            "document": {
                "filename": "Spec_K987-02.02-001.pdf",
                "content_base64": SPEC_PDF_BASE64,
            },
        },
        "options": [
            {"id": "for", "label": "За"},
            {"id": "against", "label": "Против"},
            {"id": "abstain", "label": "Воздержался"},
        ],
        "voters": None,
        "quorum": 6,
        "closes_at": "2022-04-15T18:00:00+03:00",
        "disclosed": False,
    }
    data.update(changes)
    return data


def seed_vote(answers: int = 6, **changes: Any) -> VoteState:
    state = open_vote(parse_vote_request(vote_data(**changes)), COMMISSION)
    for i in range(answers):
        option = "for" if i < answers - 1 else "against"
        state = apply_answer(state, COMMISSION[i], [option], T0 + timedelta(minutes=i))
    return state


def approval(**changes: Any) -> ApprovalState:
    data: dict[str, Any] = {
        "procurement_id": "26908",
        "approval_id": "A-17",
        "initiator": KONOVALOV,
        "document": {
            "type": "Торгово-коммерческий анализ (ТКА)",
            "number": "234/01-02",
            "series": "01",
            "valid_until": "2022-12-31",
            "filename": "TKA_234-01-02.pdf",
            "content_base64": "JVBERg==",
        },
        "mode": "sequential",
        "group": "Руководители верхнего уровня",
        "approvers": [KONOVALOV, PETRENKO, PETROV],
        "require_signature": True,
        "deadline": "2022-04-20T18:00:00+03:00",
    }
    data.update(changes)
    return start_approval(parse_approval_request(data))


def lines(text: str) -> list[str]:
    return text.replace(NBSP, " ").split("\n")


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def check_html(card: Card) -> str:
    """Only tags Element allows, only safe attributes; returns the visible text."""
    parser = _Tags()
    parser.feed(card.html)
    parser.close()
    for tag, attrs in parser.tags:
        assert tag in ALLOWED_TAGS, tag
        for name, value in attrs:
            assert (tag, name) in {("a", "href"), ("font", "data-mx-color")}, (tag, name)
            if name == "href":
                assert value is not None
                assert value.startswith(("https://", "http://"))
    return "".join(parser.text)


# --- votes -----------------------------------------------------------------------------


def test_seed_voting_card_in_russian() -> None:
    card = voting_card(seed_vote())
    assert lines(card.body) == [
        "Голосование: Утвердить спецификацию 174/741-12.21-002?",
        "Спецификация 174/741-12.21-002",
        "Поставщик: ООО «ТоргПрофи»",
        "Срок поставки: 2 дня",
        "Дата поставки: 12.05.2022",
        "Стоимость без НДС: 48 801,24 ₽",
        "Стоимость с НДС: 58 561,49 ₽",
        "Документ: Spec_K987-02.02-001.pdf (20 МБ)",
        "Варианты: За · Против · Воздержался",
        "Кворум: 6 · Голосующих: 10",
        "Срок голосования: 15.04.2022 18:00 (UTC+03:00)",
        "Голосование тайное: результаты видны после завершения",
        "Ответьте в опросе ниже; учитывается последний ответ до завершения.",
    ]
    assert f"48{NBSP}801,24{NBSP}₽" in card.body
    assert "<b>Поставщик:</b> ООО «ТоргПрофи»" in card.html
    check_html(card)


def test_voting_card_in_english_and_disclosed() -> None:
    card = voting_card(seed_vote(disclosed=True), Locale.EN)
    body = lines(card.body)
    assert "Delivery term: 2 days" in body
    assert "Delivery date: 12 May 2022" in body
    assert "Cost with VAT: RUB 58,561.49" in body
    assert "Open ballot: results are visible as votes come in" in body
    check_html(card)


def test_voting_card_without_subject() -> None:
    card = voting_card(seed_vote(subject=None))
    assert "Поставщик" not in card.body
    assert lines(card.body)[1] == "Варианты: За · Против · Воздержался"
    russian_open = voting_card(seed_vote(disclosed=True, subject={"kind": "протокол"}))
    assert "Голосование открытое: результаты видны сразу" in russian_open.body
    assert lines(russian_open.body)[1] == "протокол"


def test_status_card_shows_progress_not_names() -> None:
    state = seed_vote()
    card = vote_status_card(state)
    assert lines(card.body) == [
        "Идёт голосование: Утвердить спецификацию 174/741-12.21-002?",
        "Проголосовало 6 из 10 · кворум 6 — набран",
        "Срок голосования: 15.04.2022 18:00 (UTC+03:00)",
    ]
    for member in COMMISSION:
        assert member not in card.body
        assert member not in card.html
    assert turnout_line(seed_vote(answers=5)) == "Проголосовало 5 из 10 · кворум 6 — не набран"
    assert turnout_line(state, Locale.EN) == "6 of 10 voted · quorum 6 — reached"
    check_html(card)


def test_status_of_a_closed_vote_is_its_result() -> None:
    state = close(seed_vote(), CloseReason.DEADLINE, T0)
    assert vote_status_card(state) == vote_result_card(state)


def test_result_card() -> None:
    state = close(seed_vote(), CloseReason.DEADLINE, datetime(2022, 4, 15, 18, tzinfo=MSK))
    card = vote_result_card(state)
    assert lines(card.body) == [
        "Голосование завершено: Утвердить спецификацию 174/741-12.21-002?",
        "Итоги:",
        "• За — 5",
        "• Против — 1",
        "• Воздержался — 0",
        "Проголосовало 6 из 10 · кворум 6 — набран",
        "Итог: За",
        "Завершено: по истечении срока, 15.04.2022 18:00 (UTC+03:00)",
    ]
    check_html(card)
    english = vote_result_card(state, Locale.EN)
    assert "Outcome: За" in english.body
    assert "Closed: deadline reached, 15 Apr 2022 18:00 (UTC+03:00)" in english.body


def test_result_without_quorum_tie_and_cancel() -> None:
    no_quorum = close(seed_vote(answers=2), CloseReason.DEADLINE, T0)
    assert "Итог: решение не принято — кворум не набран" in vote_result_card(no_quorum).body
    tie = seed_vote(answers=0, quorum=2)
    tie = apply_answer(tie, COMMISSION[0], ["for"], T0)
    tie = apply_answer(tie, COMMISSION[1], ["against"], T0)
    tie = close(tie, CloseReason.ALL_VOTED, T0)
    body = vote_result_card(tie).body
    assert "Итог: решение не принято — голоса разделились поровну" in body
    assert "проголосовали все участники" in body
    assert "no decision — a tie" in vote_result_card(tie, Locale.EN).body
    cancelled = close(seed_vote(), CloseReason.CANCELLED, T0, cancel_reason="Отозвано")
    card = vote_result_card(cancelled)
    assert card.body.startswith("Голосование отменено: ")
    assert "Итог:" not in card.body
    assert "Причина: Отозвано" in card.body


# --- approvals -------------------------------------------------------------------------


def test_approval_card_in_progress() -> None:
    state, _ = decide(approval(), KONOVALOV, Decision.APPROVED, "Согласен", True, T0)
    card = approval_card(state, names={KONOVALOV: "Коновалов А.С."})
    assert lines(card.body) == [
        "Согласование: Торгово-коммерческий анализ (ТКА) № 234/01-02",
        "Серия: 01",
        "Срок действия: 31.12.2022",
        "Файл: TKA_234-01-02.pdf",
        "Тип согласования: Последовательное",
        "Группа: Руководители верхнего уровня",
        "Требуется электронная подпись",
        "Срок согласования: 20.04.2022 18:00 (UTC+03:00)",
        "Участники:",
        "• 1. ✅ Коновалов А.С. — согласовано, 14.04.2022 12:00 (UTC+03:00), ЭП проверена: "
        "«Согласен»",
        "• 2. ⏳ @petrenko:corp.example — ожидается решение",
        "• 3. — @petrov:corp.example — ожидает очереди",
        "Сейчас решение за: @petrenko:corp.example",
        "Согласовываете? Кнопки под карточкой: «✅ Да» — согласовать, «❌ Нет» — отклонить "
        "(спрошу причину). Или напишите «согласовать [комментарий]» / «отклонить <причина>».",
    ]
    check_html(card)


def test_approval_card_outcomes() -> None:
    rejected, _ = decide(approval(), KONOVALOV, Decision.REJECTED, "Цена завышена", None, T0)
    body = approval_card(rejected).body
    first = "• 1. ❌ @konovalov:corp.example — отклонено, 14.04.2022 12:00 (UTC+03:00)"
    assert f"{first}: «Цена завышена»" in lines(body)
    assert "• 2. — @petrenko:corp.example — решение не потребовалось" in lines(body)
    assert "Итог: отклонено ❌" in body
    assert "Причина: Цена завышена" in body
    assert "Сейчас решение за" not in body

    cancelled, _ = cancel(approval(), "Документ заменён", T0)
    body = approval_card(cancelled, Locale.EN).body
    assert "Outcome: approval cancelled" in body
    assert "Reason: Документ заменён" in body
    assert "no decision needed" in body

    state = approval(mode="parallel", approvers=[KONOVALOV, PETRENKO], require_signature=False)
    state, _ = decide(state, PETRENKO, Decision.APPROVED, None, None, T0)
    body = approval_card(state).body
    assert "Тип согласования: Параллельное" in body
    assert "• ⏳ @konovalov:corp.example — ожидается решение" in lines(body)
    assert "Требуется электронная подпись" not in body
    state, _ = decide(state, KONOVALOV, Decision.APPROVED, None, None, T0)
    assert "Итог: согласовано ✅" in approval_card(state).body


def test_approval_card_with_bare_document() -> None:
    state = approval(document={"filename": "DS.pdf", "url": "https://erp.example/f"}, group=None)
    body = approval_card(state).body
    assert body.startswith("Согласование: DS.pdf\n")
    assert "Группа" not in body
    assert "Серия" not in body


# --- context, help, refusals -----------------------------------------------------------


def test_context_card() -> None:
    card = context_card(
        procurement_number="26908",
        title="Поставка арматуры А500С",
        room_kind="commission",
        object_name="Лахта Центр, корпус 2",
        stage="commission",
        url="https://erp.example/procurements/26908",
    )
    assert lines(card.body)[:6] == [
        "Системный помощник: чат создан",
        "Закупка 26908 · Поставка арматуры А500С",
        "Чат: Чат комиссии закупки",
        "Объект: Лахта Центр, корпус 2",
        "Этап: Работа комиссии",
        "Для чего: работа комиссии и голосования.",
    ]
    assert '<a href="https://erp.example/procurements/26908">' in card.html
    check_html(card)
    english = context_card(
        procurement_number="26908",
        title="Rebar",
        room_kind="supplier",
        room_subject="ООО «ТоргПрофи»",
        locale=Locale.EN,
    )
    assert english.body.startswith("System assistant: chat created\nProcurement 26908 · Rebar\n")
    assert "Chat: Supplier chat: ООО «ТоргПрофи»" in english.body
    assert "other suppliers cannot see this chat" in english.body


def test_context_card_with_unknown_codes_and_unsafe_url() -> None:
    card = context_card(
        procurement_number="1",
        title="T",
        room_kind="lobby",
        stage="later",
        url="javascript:alert(1)",
    )
    assert "Чат: lobby" in card.body
    assert "Этап: later" in card.body
    assert "href" not in card.html
    assert "javascript" not in card.body


@pytest.mark.parametrize("locale", list(Locale))
def test_help_lists_every_command(locale: Locale) -> None:
    card = help_card(locale)
    for word in ("помощь", "голосование", "документы", "кто видел", "согласовать",
                 "отклонить", "help", "vote", "documents", "seen", "approve",
                 "reject"):  # fmt: skip
        assert word in card.body
    check_html(card)


@pytest.mark.parametrize("code", list(RefusalCode))
@pytest.mark.parametrize("locale", list(Locale))
def test_every_refusal_has_words(code: RefusalCode, locale: Locale) -> None:
    assert refusal_message(code.value, locale)


def test_refusal_cards() -> None:
    error = ApprovalRefused(RefusalCode.NOT_YOUR_TURN, "not your turn", (PETRENKO,))
    card = refusal_card(error)
    assert lines(card.body) == [
        "Не получилось: Сейчас не ваша очередь согласовывать.",
        "Сейчас решение за: @petrenko:corp.example",
    ]
    english = refusal_card(error, Locale.EN)
    assert english.body.startswith("Could not do that: It is not your turn")
    unknown = refusal_card(Refused("the archive is read-only", "ORG_X"), Locale.RU)
    assert unknown.body == "Не получилось: the archive is read-only"
    bad = refusal_card(InvalidInput("argument", "a reason is needed"))
    assert bad.body.startswith("Неверная команда: a reason is needed")
    assert refusal_message("ORG_PROCUREMENT_VOTE_NO_VOTERS", Locale.EN)
    assert refusal_message("nope") is None


def test_dates() -> None:
    assert format_date(datetime(2022, 5, 2).date()) == "02.05.2022"
    assert format_date(datetime(2022, 5, 2).date(), Locale.EN) == "2 May 2022"
    assert format_datetime(datetime(2022, 4, 15, 9, 5, tzinfo=UTC)) == ("15.04.2022 09:05 (UTC)")
    india = timezone(timedelta(hours=5, minutes=30))
    assert format_datetime(datetime(2022, 4, 15, 9, 5, tzinfo=india)).endswith("(UTC+05:30)")
    west = timezone(-timedelta(hours=3, minutes=30))
    assert format_datetime(datetime(2022, 4, 15, 9, 5, tzinfo=west)).endswith("(UTC-03:30)")


# --- escaping --------------------------------------------------------------------------

nasty = st.text(
    alphabet=st.sampled_from(list("<>&\"'/ab =ё«»\\")) | st.characters(codec="utf-8"),
    min_size=1,
    max_size=30,
).filter(lambda s: s.strip() and "\x00" not in s)


@given(nasty, nasty, nasty, nasty, st.sampled_from(list(Locale)))
def test_vote_cards_escape_html(
    question: str, label: str, supplier: str, number: str, locale: Locale
) -> None:
    data = vote_data(
        question=question,
        options=[{"id": "a", "label": label}, {"id": "b", "label": label + "!"}],
        subject={"supplier": supplier, "number": number, "kind": supplier},
    )
    state = open_vote(parse_vote_request(data), COMMISSION)
    state = apply_answer(state, COMMISSION[0], ["a"], T0)
    ended = close(state, CloseReason.CANCELLED, T0, cancel_reason=supplier)
    for card in (
        voting_card(state, locale),
        vote_status_card(state, locale),
        vote_result_card(ended, locale),
    ):
        text = check_html(card)
        assert question in text
        assert question in card.body  # the body is plain text, never escaped
    assert supplier in check_html(voting_card(state, locale))
    assert label in check_html(vote_result_card(ended, locale))


@given(nasty, nasty, nasty, st.sampled_from(list(Locale)))
def test_approval_and_context_cards_escape_html(
    comment: str, name: str, text: str, locale: Locale
) -> None:
    state = approval(
        group=text, document={"filename": "f.pdf", "type": text, "url": "https://x.example/f"}
    )
    state, _ = decide(state, KONOVALOV, Decision.APPROVED, comment, True, T0)
    card = approval_card(state, locale, names={KONOVALOV: name})
    visible = check_html(card)
    assert name in visible
    assert comment.strip() in visible
    context = context_card(
        procurement_number=text, title=name, room_kind="supplier", room_subject=comment,
        object_name=text, stage=text, url=f"https://erp.example/{text}", locale=locale,
    )  # fmt: skip
    assert name in check_html(context)
    refusal = refusal_card(Refused(text, "ORG_X"), locale)
    assert text in check_html(refusal)


# --- Matrix contents -------------------------------------------------------------------


def test_poll_start_is_what_element_sends() -> None:
    content = poll_start_content(
        "Утвердить?", [("for", "За"), ("against", "Против")], False, "Утвердить?\n1. За\n2. Против"
    )
    assert content == {
        "org.matrix.msc3381.poll.start": {
            "question": {"org.matrix.msc1767.text": "Утвердить?"},
            "kind": "org.matrix.msc3381.poll.undisclosed",
            "max_selections": 1,
            "answers": [
                {"id": "for", "org.matrix.msc1767.text": "За"},
                {"id": "against", "org.matrix.msc1767.text": "Против"},
            ],
        },
        "org.matrix.msc1767.text": "Утвердить?\n1. За\n2. Против",
    }
    disclosed = poll_start_content("q", [("a", "A"), ("b", "B")], True, "q")
    assert (
        disclosed["org.matrix.msc3381.poll.start"]["kind"] == "org.matrix.msc3381.poll.disclosed"
    )


def test_vote_poll() -> None:
    state = seed_vote(answers=0, disclosed=True)
    content = vote_poll_content(state)
    poll = content["org.matrix.msc3381.poll.start"]
    assert poll["question"] == {"org.matrix.msc1767.text": state.request.question}
    assert poll["kind"] == "org.matrix.msc3381.poll.disclosed"
    assert [a["id"] for a in poll["answers"]] == ["for", "against", "abstain"]
    assert content["org.matrix.msc1767.text"] == voting_card(state).body
    ended = close(state, CloseReason.DEADLINE, T0)
    end = vote_poll_end_content(EventId("$poll"), ended, Locale.EN)
    assert end["org.matrix.msc1767.text"] == vote_result_card(ended, Locale.EN).body


def test_poll_end() -> None:
    assert poll_end_content(EventId("$poll"), "Голосование завершено") == {
        "m.relates_to": {"rel_type": "m.reference", "event_id": "$poll"},
        "org.matrix.msc3381.poll.end": {},
        "org.matrix.msc1767.text": "Голосование завершено",
    }


@pytest.mark.parametrize("key", ["org.matrix.msc3381.poll.response", "m.poll.response"])
def test_poll_response(key: str) -> None:
    relation = {"rel_type": "m.reference", "event_id": "$poll"}
    content = {"m.relates_to": relation, key: {"answers": ["for"]}}
    assert parse_poll_response(content) == ("$poll", ("for",))
    spoiled = {"m.relates_to": relation, key: {"answers": [1]}}
    assert parse_poll_response(spoiled) == ("$poll", ())
    assert parse_poll_response({"m.relates_to": relation, key: {}}) == ("$poll", ())


@pytest.mark.parametrize(
    "content",
    [
        {},
        {"m.poll.response": {"answers": ["for"]}},
        {"m.relates_to": {"rel_type": "m.replace", "event_id": "$p"}, "m.poll.response": {}},
        {"m.relates_to": {"rel_type": "m.reference"}, "m.poll.response": {}},
        {"m.relates_to": {"rel_type": "m.reference", "event_id": ""}, "m.poll.response": {}},
        {"m.relates_to": "x", "m.poll.response": {}},
        {"m.relates_to": {"rel_type": "m.reference", "event_id": "$p"}, "m.poll.response": []},
        {"m.relates_to": {"rel_type": "m.reference", "event_id": "$p"}, "body": "За"},
    ],
)
def test_not_a_poll_response(content: dict[str, Any]) -> None:
    assert parse_poll_response(content) is None


@given(st.dictionaries(st.text(max_size=40), st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=10), c, max_size=3),
    max_leaves=10,
)))  # fmt: skip
def test_poll_response_parser_never_raises(content: dict[str, Any]) -> None:
    parsed = parse_poll_response(content)
    if parsed is not None:
        assert isinstance(parsed[0], str)
        assert all(isinstance(a, str) for a in parsed[1])


def test_card_and_edit_contents() -> None:
    card = Card("Проголосовало 6 из 10", "<p>Проголосовало 6 из 10</p>")
    assert card_content(card) == {
        "msgtype": "m.notice",
        "body": "Проголосовало 6 из 10",
        "format": "org.matrix.custom.html",
        "formatted_body": "<p>Проголосовало 6 из 10</p>",
        "m.mentions": {},
    }
    edit = edit_content(EventId("$card"), card_content(card))
    assert edit == {
        "msgtype": "m.notice",
        "body": "* Проголосовало 6 из 10",
        "format": "org.matrix.custom.html",
        "formatted_body": "* <p>Проголосовало 6 из 10</p>",
        "m.new_content": card_content(card),
        "m.relates_to": {"rel_type": "m.replace", "event_id": "$card"},
        "m.mentions": {},
    }
    text = card_content(card, "m.text")
    assert edit_content(EventId("$c"), text)["m.new_content"]["msgtype"] == "m.text"


def test_pinned_events() -> None:
    assert pinned_events_content([EventId("$a"), EventId("$b"), EventId("$a")]) == {
        "pinned": ["$a", "$b"]
    }
