"""The assistant's cards: help built from the command table, hints, confirmations, status,
tasks, search results, reminders and requests, in Russian and English, each within the size
a Matrix event (and its edit) allows."""

from __future__ import annotations

import json
import re
import string
from datetime import UTC, datetime, timedelta, timezone
from html.parser import HTMLParser
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.domain.answers import (
    Found,
    OpenApproval,
    OpenVote,
    ProcurementLine,
    RoomLink,
    RoomStatus,
    Task,
    confirm_card,
    decision_title,
    every_word,
    help_card,
    not_allowed_card,
    phrase_card,
    procurements_card,
    question_card,
    reminder_card,
    request_answer_card,
    say,
    search_card,
    status_card,
    summary_card,
    tasks_card,
    unknown_command_card,
)
from bridge.domain.approval import Decision
from bridge.domain.card import BODY_BYTES, HTML_BYTES, LINE_CHARS, Card
from bridge.domain.commands import COMMANDS, SPECS, Command, CommandSpec, Place, Role, visible
from bridge.domain.events import MAX_CONTENT_BYTES, card_content, edit_content
from bridge.domain.ids import EventId, UserId
from bridge.domain.locale import Locale
from bridge.domain.phrases import BUTTONS, PHRASES
from bridge.domain.request_form import DEFAULT_FIELDS, FieldKind, FormField
from bridge.domain.words import WORDS

MSK = timezone(timedelta(hours=3))
T0 = datetime(2026, 4, 14, 12, 0, tzinfo=MSK)
URL = "https://matrix.to/#/!org:corp.example/$event?via=corp.example"
ALLOWED_TAGS = {"b", "i", "br", "p", "ul", "li", "code", "h4", "a"}
# A display name, a room name, a question: as long as anything people set.
LONG = "Заместитель генерального директора «по закупкам» & <снабжению> " * 300
MEMBERS = tuple(UserId(f"@member{i}:corp.example") for i in range(200))
ROLE_SETS = [
    frozenset(),
    frozenset({Role.SUPPLIER}),
    frozenset({Role.MANAGER}),
    frozenset({Role.TEAM}),
    frozenset({Role.LOGISTICS}),
    frozenset({Role.COMMISSION}),
    frozenset({Role.APPROVER}),
    frozenset(Role),
]


# --- checks ----------------------------------------------------------------------------------


class _Html(HTMLParser):
    """Tags in order, nesting checked, and the visible text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))
        if tag != "br":
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.open, f"</{tag}> closes nothing"
        assert self.open.pop() == tag, f"</{tag}> closes another tag"

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def html_text(card: Card) -> str:
    parser = _Html()
    parser.feed(card.html)
    parser.close()
    assert not parser.open, parser.open
    for tag, attrs in parser.tags:
        assert tag in ALLOWED_TAGS, tag
        for name, value in attrs:
            assert (tag, name) == ("a", "href"), (tag, name)
            assert value is not None
            assert value.startswith("https://")
    return "".join(parser.text)


def json_bytes(text: str) -> int:
    return len(json.dumps(text, ensure_ascii=False).encode("utf-8", "surrogatepass")) - 2


def assert_fits(card: Card) -> None:
    """Within the card's budgets, well-formed, and small enough to be edited in place."""
    assert json_bytes(card.body) <= BODY_BYTES
    assert json_bytes(card.html) <= HTML_BYTES
    html_text(card)
    edit = edit_content(EventId("$card"), card_content(card))
    assert len(json.dumps(edit, ensure_ascii=False).encode()) < MAX_CONTENT_BYTES
    for line in card.body.split("\n"):
        assert len(line) <= LINE_CHARS + len("• ")


def items(card: Card) -> list[str]:
    return [line[2:] for line in card.body.split("\n") if line.startswith("• ")]


def left_out(card: Card, locale: Locale) -> list[int]:
    """N of each «… и ещё N» line that ends a cut list."""
    pattern = re.escape(WORDS[locale]["more_items"]).replace(r"\{count\}", r"(\d+)")
    return [int(m.group(1)) for m in re.finditer(f"^{pattern}$", card.body, re.MULTILINE)]


def said(locale: Locale, key: str, **values: object) -> str:
    return PHRASES[locale][key].format(**values)


def place_roles() -> list[tuple[Place, frozenset[Role]]]:
    return [(place, roles) for place in Place for roles in ROLE_SETS]


# --- the words ------------------------------------------------------------------------------


def test_every_phrase_and_button_is_in_both_languages() -> None:
    assert set(PHRASES[Locale.RU]) == set(PHRASES[Locale.EN])
    assert set(BUTTONS[Locale.RU]) == set(BUTTONS[Locale.EN])
    for key in PHRASES[Locale.RU]:
        ru, en = PHRASES[Locale.RU][key], PHRASES[Locale.EN][key]
        assert ru.strip()
        assert en.strip()
        # The same placeholders, so that either language formats with the same values.
        assert sorted(_fields(ru)) == sorted(_fields(en)), key


def _fields(phrase: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(phrase) if name]


def test_every_menu_command_has_a_button() -> None:
    for command in (Command.STATUS, Command.TASKS, Command.SEARCH, Command.REQUEST, Command.HELP):
        for locale in Locale:
            assert BUTTONS[locale][command.value]


def test_every_word_is_every_command_s_words() -> None:
    words = every_word()
    for spec in COMMANDS:
        for locale in Locale:
            assert set(spec.words[locale]) <= words
    assert "помощь" in words
    assert "help" in words
    assert "ещё" in words
    assert "еще" in words


# --- help --------------------------------------------------------------------------------------


def _help_item(spec: CommandSpec, locale: Locale) -> str:
    usage = " ".join(part for part in (spec.word(locale), spec.usage[locale]) if part)
    return f"{usage} — {spec.help[locale]}"


@pytest.mark.parametrize("locale", list(Locale))
@pytest.mark.parametrize(("place", "roles"), place_roles())
def test_help_lists_exactly_the_commands_allowed_here(
    locale: Locale, place: Place, roles: frozenset[Role]
) -> None:
    specs = visible(roles, place)
    card = help_card(specs, locale)
    assert_fits(card)
    assert items(card) == [_help_item(spec, locale) for spec in specs]
    shown = {spec.command for spec in specs}
    for spec in COMMANDS:
        if spec.command not in shown:
            assert f"• {spec.word(locale)}" not in card.body, spec.command
            assert f"<code>{spec.word(locale)}" not in card.html, spec.command
    # The other language's words of these commands, and only of these.
    other = Locale.EN if locale is Locale.RU else Locale.RU
    aliases = card.body.split("\n")[-1]
    words = ", ".join(spec.word(other) for spec in specs)
    assert aliases == said(locale, "help_aliases", words=words)


def test_a_supplier_s_help_says_nothing_of_decisions_votes_or_requests() -> None:
    for locale in Locale:
        card = help_card(visible({Role.SUPPLIER}, Place.SUPPLIER), locale)
        for command in (Command.APPROVE, Command.REJECT, Command.VOTE, Command.REQUEST):
            for word in SPECS[command].words[locale]:
                assert not any(item.startswith(word) for item in items(card)), word
            assert _help_item(SPECS[command], locale) not in card.body


def test_an_approver_s_help_shows_the_decisions_with_what_they_take() -> None:
    card = help_card(visible({Role.APPROVER}, Place.APPROVAL), Locale.RU)
    assert "• согласовать [комментарий] — " in card.body
    assert "• отклонить <причина> — " in card.body
    assert "<code>отклонить &lt;причина&gt;</code>" in card.html
    assert "approve, reject" in card.body


def test_help_in_english() -> None:
    card = help_card(visible({Role.MANAGER}, Place.ORG), Locale.EN)
    assert card.body.split("\n")[0] == PHRASES[Locale.EN]["help_title"]
    assert "• search <words> — " in card.body
    assert "• request — " in card.body
    assert "помощь, статус" in card.body
    assert "<h4>What I can do</h4>" in card.html


def test_the_direct_chat_s_help_mentions_its_buttons() -> None:
    specs = visible({Role.MANAGER}, Place.DIRECT)
    for locale in Locale:
        with_buttons = help_card(specs, locale, buttons=True)
        without = help_card(specs, locale)
        assert PHRASES[locale]["help_buttons"] in with_buttons.body
        assert PHRASES[locale]["help_buttons"] not in without.body
        assert_fits(with_buttons)


def test_help_of_the_whole_table_fits() -> None:
    for locale in Locale:
        card = help_card(COMMANDS, locale)
        assert_fits(card)
        assert len(items(card)) == len(COMMANDS)


# --- hints and confirmations ---------------------------------------------------------------


def test_an_unknown_command_is_named_and_escaped() -> None:
    card = unknown_command_card("<b>foo</b>&", Locale.RU)
    assert card.body == said(Locale.RU, "unknown", word="<b>foo</b>&")
    assert "&lt;b&gt;foo&lt;/b&gt;&amp;" in card.html
    assert "<b>" not in card.html
    assert html_text(card) == card.body


def test_a_command_not_for_here_is_named_in_the_card_s_language() -> None:
    spec = SPECS[Command.APPROVE]
    assert "«согласовать»" in not_allowed_card(spec, {Role.APPROVER}, Locale.RU).body
    assert '"approve"' in not_allowed_card(spec, {Role.APPROVER}, Locale.EN).body


def test_a_refusal_says_who_a_command_is_for_or_where_it_works() -> None:
    request = not_allowed_card(SPECS[Command.REQUEST], {Role.SUPPLIER}, Locale.RU).body
    assert request == (
        "Команда «заявка» — для менеджера закупки и команды закупки; вам она недоступна. "
        "«помощь» — что можно вам."
    )
    tasks = not_allowed_card(SPECS[Command.TASKS], {Role.MANAGER}, Locale.RU).body
    assert tasks.startswith("Команда «мои задачи» работает в личном чате с помощником.")
    documents = not_allowed_card(SPECS[Command.DOCUMENTS], {Role.TEAM}, Locale.EN).body
    assert documents.startswith('"documents" works in the procurement\'s chats.')
    here = not_allowed_card(SPECS[Command.REQUEST], {Role.TEAM}, Locale.RU).body
    assert "в чате организации и в личном чате с помощником" in here


@pytest.mark.parametrize("locale", list(Locale))
def test_one_line_phrases_are_themselves(locale: Locale) -> None:
    for key in ("cancelled", "nothing_to_cancel", "search_none", "no_tasks", "confirm_expired"):
        card = phrase_card(key, locale)
        assert card.body == PHRASES[locale][key]
        assert html_text(card) == card.body


def test_a_decision_to_confirm_says_what_and_why() -> None:
    approve = decision_title(Decision.APPROVED, "ТКА № 234/01-02", "Без замечаний", Locale.RU)
    assert approve == "согласовать «ТКА № 234/01-02» с комментарием «Без замечаний»"
    reject = decision_title(Decision.REJECTED, "ТКА № 234/01-02", "Дорого", Locale.RU)
    assert reject == "отклонить «ТКА № 234/01-02» по причине «Дорого»"
    assert decision_title(Decision.APPROVED, "TKA", None, Locale.EN) == 'approve "TKA"'
    assert decision_title(Decision.REJECTED, "TKA", "", Locale.EN) == 'reject "TKA"'


@pytest.mark.parametrize("locale", list(Locale))
def test_a_confirmation_with_a_huge_comment_fits(locale: Locale) -> None:
    comment = "Цена завышена & «условия» <неприемлемы>; " * 2000
    card = confirm_card(decision_title(Decision.REJECTED, LONG, comment, locale), locale)
    assert_fits(card)
    assert card.body.split("\n")[0].endswith("…")
    assert BUTTONS[locale]["confirm"] in card.body


# --- status --------------------------------------------------------------------------------


def room_status(**changes: Any) -> RoomStatus:
    values: dict[str, Any] = {
        "number": "26908",
        "title": "Поставка арматуры А500С",
        "stage": "Рассмотрение комиссией",
        "stage_since": datetime(2026, 4, 1, 9, 0, tzinfo=MSK),
        "votes": (),
        "approvals": (),
        "documents_pending": 0,
        "rooms": (),
        "show_people": True,
    }
    values.update(changes)
    return RoomStatus(**values)


def test_a_quiet_room_s_status() -> None:
    card = status_card(room_status(), None, Locale.RU)
    assert card.body.split("\n") == [
        "Статус закупки 26908",
        "«Поставка арматуры А500С»",
        "Этап: Рассмотрение комиссией с 01.04.2026",
        PHRASES[Locale.RU]["nothing_open"],
    ]
    assert_fits(card)


def test_a_status_with_what_is_open() -> None:
    vote = OpenVote("Утвердить спецификацию?", "Проголосовало 1 из 2", T0, (MEMBERS[1],))
    approval = OpenApproval("ТКА № 234/01-02", (MEMBERS[2],), document_pending=False)
    pending = OpenApproval("Договор", (), document_pending=True)
    status = room_status(
        votes=(vote,),
        approvals=(approval, pending),
        documents_pending=2,
        rooms=(RoomLink("Комиссия", URL),),
        stage_since=None,
    )
    card = status_card(status, {MEMBERS[1]: "Петров П. П."}, Locale.RU)
    assert_fits(card)
    assert items(card) == [
        "Голосование «Утвердить спецификацию?»: Проголосовало 1 из 2, до 14.04.2026 12:00 "
        "(UTC+03:00); не ответили: Петров П. П.",
        f"Согласование «ТКА № 234/01-02»: решение за {MEMBERS[2]}",
        "Согласование «Договор»: документ ещё не получен",
        "Документы в пути: 2",
        f"Комиссия — {URL}",
    ]
    assert "Этап: Рассмотрение комиссией" in card.body.split("\n")


def test_a_supplier_is_not_told_who_has_not_answered() -> None:
    vote = OpenVote("Вопрос", "1 из 2", T0, (MEMBERS[1],))
    approval = OpenApproval("ТКА", (MEMBERS[2],), document_pending=False)
    card = status_card(
        room_status(votes=(vote,), approvals=(approval,), show_people=False), {}, Locale.EN
    )
    assert MEMBERS[1] not in card.body
    assert MEMBERS[2] not in card.body
    assert PHRASES[Locale.EN]["not_answered"] not in card.body
    assert 'Approval "ТКА": …' in card.body


@pytest.mark.parametrize("locale", list(Locale))
def test_a_status_with_everything_open_fits(locale: Locale) -> None:
    members = MEMBERS[:50]
    votes = tuple(
        OpenVote(f"{LONG[:1000]} {i}", "Проголосовало 0 из 50", T0, members) for i in range(100)
    )
    approvals = tuple(
        OpenApproval(f"Документ {i} {LONG[:500]}", members, document_pending=i % 2 == 0)
        for i in range(100)
    )
    rooms = tuple(RoomLink(f"{LONG[:300]} {i}", f"{URL}{i}") for i in range(100))
    names = dict.fromkeys(members, LONG[:200])
    status = room_status(
        title=LONG,
        number="9" * 100,
        stage=LONG,
        votes=votes,
        approvals=approvals,
        documents_pending=10**6,
        rooms=rooms,
    )
    card = status_card(status, names, locale)
    assert_fits(card)
    # Both lists cut: what is open (100 votes, 100 approvals, the documents) and the rooms.
    cut = left_out(card, locale)
    assert len(cut) == 2
    assert len(items(card)) + sum(cut) == 201 + 100


def test_procurements_in_the_direct_chat() -> None:
    assert procurements_card([], Locale.RU).body == PHRASES[Locale.RU]["no_procurements"]
    lines = [
        ProcurementLine("26908", "Арматура", "Предложения", 2, URL),
        ProcurementLine("26909", "Бетон", "Договор", 0, None),
    ]
    card = procurements_card(lines, Locale.RU)
    assert items(card) == [
        f"№ 26908 «Арматура» — Предложения; ждёт вас: 2 — {URL}",
        "№ 26909 «Бетон» — Договор",
    ]
    assert_fits(card)
    # Titles and numbers as long as a snapshot allows.
    many = [ProcurementLine("9" * 100, LONG[:500], LONG[:100], i, URL) for i in range(1000)]
    assert_fits(procurements_card(many, Locale.EN))


# --- tasks ---------------------------------------------------------------------------------


def test_tasks_say_what_where_and_until_when() -> None:
    assert tasks_card([], Locale.EN).body == PHRASES[Locale.EN]["no_tasks"]
    tasks = [
        Task("vote", "Утвердить спецификацию?", "26908", T0, URL),
        Task("approval", "ТКА № 234/01-02", "26908", T0, URL),
        Task("approval", "Договор", "26909", None, URL),
    ]
    card = tasks_card(tasks, Locale.RU)
    assert_fits(card)
    assert items(card) == [
        f"Голосование «Утвердить спецификацию?» — закупка 26908, до 14.04.2026 12:00 "
        f"(UTC+03:00) — {URL}",
        f"Согласование «ТКА № 234/01-02» — закупка 26908, до 14.04.2026 12:00 (UTC+03:00) — {URL}",
        f"Согласование «Договор» — закупка 26909 — {URL}",
    ]
    assert card.html.count('<a href="https://matrix.to/') == 3


@pytest.mark.parametrize("locale", list(Locale))
def test_a_thousand_tasks_fit(locale: Locale) -> None:
    tasks = [
        Task("vote" if i % 2 else "approval", LONG[:1000], "9" * 100, T0 if i % 3 else None, URL)
        for i in range(1000)
    ]
    card = tasks_card(tasks, locale)
    assert_fits(card)
    assert 0 < len(items(card)) < 1000
    assert card.body.split("\n")[-1] == WORDS[locale]["more_items"].format(
        count=1000 - len(items(card))
    )


# --- search --------------------------------------------------------------------------------


def hit(text: str, sender: str = "Иванова", room: str = "Чат организации") -> Found:
    return Found(sender, T0, room, text, URL)


def test_no_hits_and_no_more_hits() -> None:
    assert search_card("арматура", [], 0, False, Locale.RU).body == said(Locale.RU, "search_none")
    assert search_card("арматура", [], 10, False, Locale.RU).body == said(Locale.RU, "search_end")
    assert search_card("rebar", [], 0, True, Locale.EN).body == said(Locale.EN, "search_none")


def test_a_hit_shows_who_when_where_and_the_words_around_it() -> None:
    text = "Вступление " * 40 + "поставка арматуры задерживается на неделю" + " хвост" * 40
    card = search_card("арматура", [hit(text)], 0, False, Locale.RU)
    assert_fits(card)
    (line,) = items(card)
    assert line.startswith("Иванова, 14.04.2026 12:00 (UTC+03:00), Чат организации: …")
    assert "поставка арматуры задерживается" in line
    assert line.endswith(f"… — {URL}")
    assert f'<a href="{URL}">Чат организации</a>' in card.html.replace("&amp;", "&")
    assert card.body.split("\n")[0] == "Поиск: арматура"


def test_more_results_are_announced() -> None:
    hits = [hit(f"арматура {i}") for i in range(10)]
    card = search_card("арматура", hits, 20, True, Locale.EN)
    assert card.body.split("\n")[-1] == said(Locale.EN, "search_more", shown=30)
    last = search_card("арматура", hits, 20, False, Locale.EN)
    assert said(Locale.EN, "search_more", shown=30) not in last.body


def test_what_people_wrote_is_escaped_in_a_hit() -> None:
    evil = Found(
        '<img src=x onerror="alert(1)">',
        T0,
        "<script>room</script>",
        "<b>арматура</b> & «бетон»",
        'https://matrix.to/#/!r:x/$e"><script>',
    )
    card = search_card("<i>арматура</i>", [evil], 0, False, Locale.RU)
    assert "<img" not in card.html
    assert "<script" not in card.html
    assert "<b>арматура</b>" not in card.html
    assert "Поиск: <i>арматура</i>" in card.body
    html_text(card)


@pytest.mark.parametrize("locale", list(Locale))
def test_ten_hits_of_the_longest_messages_fit(locale: Locale) -> None:
    body = "арматура " + ("Коммерческое предложение & «условия» <поставки> " * 1400)[:65_000]
    hits = [
        Found(LONG, T0 + timedelta(minutes=i), LONG, body, URL + "x" * 2000) for i in range(10)
    ]
    card = search_card("арматура " * 1000, hits, 0, True, locale)
    assert_fits(card)
    assert card.body.split("\n")[0].endswith("…")  # the query, cut
    assert items(card)
    assert len(items(card)) + sum(left_out(card, locale)) == 10


def test_a_hit_s_snippet_stays_short() -> None:
    body = "слово " * 10_000 + "арматура " + "слово " * 10_000
    card = search_card("арматура", [hit(body, sender="И", room="Ч")], 0, False, Locale.RU)
    (line,) = items(card)
    piece = line.split(": ", 1)[1].rsplit(" — ", 1)[0]
    assert "арматура" in piece
    assert len(piece) <= 162


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.text("аяЁ az<>&\"'«»\n\t\x00😀", max_size=300),
            st.text("аяЁ az<>&\"'«»\n\x00", max_size=300),
        ),
        min_size=1,
        max_size=10,
    ),
    st.text("аяЁ az<>&\"'«»\n\x00", min_size=1, max_size=200),
)
def test_any_search_card_is_well_formed(texts: list[tuple[str, str]], query: str) -> None:
    hits = [Found(sender, T0, sender[::-1], text, URL) for text, sender in texts]
    for locale in Locale:
        assert_fits(search_card(query, hits, 0, True, locale))


# --- reminders and requests --------------------------------------------------------------------


@pytest.mark.parametrize("locale", list(Locale))
def test_a_reminder_links_to_what_waits(locale: Locale) -> None:
    card = reminder_card(
        "reminder_vote", URL, locale, question="Утвердить?", number="26908", deadline="завтра"
    )
    assert_fits(card)
    assert card.body.split("\n")[0] == f"⏰ {PHRASES[locale]['reminder_title']}"
    assert said(
        locale, "reminder_vote", question="Утвердить?", number="26908", deadline="завтра"
    ) in (card.body)
    assert f"{PHRASES[locale]['open_link']} — {URL}" in card.body
    huge = reminder_card("reminder_approval", URL, locale, title=LONG, number=LONG, deadline=LONG)
    assert_fits(huge)


def test_a_question_card_says_the_step_the_options_and_the_problem() -> None:
    unit = DEFAULT_FIELDS[2]
    card = question_card(unit, 3, 5, said(Locale.RU, "invalid_choice", options="шт, т"), Locale.RU)
    assert_fits(card)
    assert card.body.split("\n") == [
        "Заявка",
        "Выберите один из вариантов: шт, т.",
        "Вопрос 3 из 5",
        "В каких единицах?",
        "Выберите кнопкой или напишите. шт · т · м · м² · м³ · компл",
        PHRASES[Locale.RU]["request_cancel_hint"],
    ]
    plain = question_card(DEFAULT_FIELDS[0], 1, 5, None, Locale.EN)
    assert plain.body.split("\n")[1:3] == ["Question 1 of 5", "What needs to be procured?"]
    assert PHRASES[Locale.EN]["request_options"] not in plain.body


def test_a_summary_lists_the_answers_in_the_fields_order() -> None:
    answers = {"unit": "т", "item": "Арматура А500С", "quantity": "12"}
    card = summary_card(DEFAULT_FIELDS, answers, Locale.RU)
    assert_fits(card)
    assert items(card) == [
        "Что нужно закупить: Арматура А500С",
        "Сколько: 12",
        "В каких единицах: т",
    ]
    assert BUTTONS[Locale.RU]["send"] in card.body.split("\n")[-1]


def test_the_procurement_system_s_answer() -> None:
    answers = {"item": "Арматура", "quantity": "12"}
    accepted = request_answer_card(True, "З-000123", None, DEFAULT_FIELDS, answers, Locale.RU)
    assert accepted.body.split("\n")[0] == "Заявка принята системой закупок: № З-000123"
    assert items(accepted) == ["Что нужно закупить: Арматура", "Сколько: 12"]
    rejected = request_answer_card(False, None, "Нет бюджета", DEFAULT_FIELDS, answers, Locale.EN)
    assert rejected.body.split("\n")[:2] == [
        "The procurement system rejected the request",
        "Reason: Нет бюджета",
    ]
    for card in (accepted, rejected):
        assert_fits(card)


@pytest.mark.parametrize("locale", list(Locale))
def test_the_largest_request_fits(locale: Locale) -> None:
    fields = tuple(
        FormField(f"f{i}", {Locale.RU: LONG[:2000], Locale.EN: LONG[:2000]}, FieldKind.TEXT)
        for i in range(20)
    )
    answers = {f.name: "щ" * 500 for f in fields}
    assert_fits(summary_card(fields, answers, locale))
    assert_fits(request_answer_card(True, "№" * 100, "п" * 1000, fields, answers, locale))
    assert_fits(request_answer_card(False, None, "п" * 1000, fields, answers, locale))
    choice = FormField("c", {Locale.RU: LONG, Locale.EN: LONG}, FieldKind.CHOICE, (LONG,) * 10)
    assert_fits(question_card(choice, 20, 20, LONG, locale))


def test_say_fills_in_the_values() -> None:
    assert say(Locale.RU, "search_more", shown=10) == "Показано 10. Ещё — «ещё» или кнопка ниже."
    assert say(Locale.EN, "cancelled") == "All right, cancelled."
    # A value with braces is inserted as it is, never formatted again.
    assert say(Locale.EN, "search_title", query="{0} {x}") == "Search: {0} {x}"


def test_a_deadline_in_utc_is_said_so() -> None:
    task = Task("vote", "Вопрос", "1", datetime(2026, 4, 14, 12, 0, tzinfo=UTC), URL)
    assert "14.04.2026 12:00 (UTC)" in tasks_card([task], Locale.RU).body
    assert "14 " in tasks_card([task], Locale.EN).body
