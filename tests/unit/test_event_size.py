"""Every event the bot sends fits in a Matrix event (65,536 bytes of canonical JSON): cards
stay within their budget even when edited, and `fit_content` cuts whatever else is too large."""

from __future__ import annotations

import json
from datetime import timedelta
from html import escape
from html.parser import HTMLParser
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from bridge.domain.approval import Decision, decide
from bridge.domain.card import BODY_BYTES, HTML_BYTES, LINE_CHARS, Card
from bridge.domain.cards import (
    approval_card,
    documents_card,
    live_vote_card,
    open_votes_card,
    seen_card,
    vote_result_card,
    vote_status_card,
    voting_card,
)
from bridge.domain.events import (
    CUT_MARK,
    MAX_CONTENT_BYTES,
    POLL_START,
    TEXT,
    card_content,
    content_bytes,
    edit_content,
    fit_content,
    poll_start_content,
    vote_poll_content,
)
from bridge.domain.ids import DocumentId, EventId, ProcurementId, RoomId, RoomKey, UserId
from bridge.domain.locale import Locale
from bridge.domain.registry import DocumentSource, RegisteredDocument, Sighting
from bridge.domain.vote import CloseReason, apply_answer, close, open_vote, parse_vote_request
from bridge.domain.words import WORDS

from .test_cards import COMMISSION, KONOVALOV, T0, approval, check_html, vote_data

MATRIX_EVENT_BYTES = 65_536
RELATION = {"m.in_reply_to": {"event_id": "$question:corp.example"}}


def json_bytes(content: dict[str, Any]) -> int:
    return len(json.dumps(content, ensure_ascii=False).encode("utf-8", "surrogatepass"))


def text_bytes(text: str) -> int:
    return len(json.dumps(text, ensure_ascii=False).encode()) - 2


class _Lines(HTMLParser):
    """The card's HTML read back as the body's lines; fails on tags that do not nest."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("h4", "p", "br", "li"):
            self.lines.append("• " if tag == "li" else "")
        if tag != "br":
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.open, f"</{tag}> closes nothing"
        assert self.open.pop() == tag, f"</{tag}> closes another tag"

    def handle_data(self, data: str) -> None:
        self.lines[-1] += data


def assert_consistent(card: Card) -> None:
    """The HTML is well formed and shows exactly what the body says (for texts without line
    breaks: a line break in a text is one in the body and a mere space in the HTML)."""
    check_html(card)
    parser = _Lines()
    parser.feed(card.html)
    parser.close()
    assert not parser.open, f"left open: {parser.open}"
    assert parser.lines == [line for line in card.body.split("\n") if line]


def assert_fits(card: Card) -> None:
    assert text_bytes(card.body) <= BODY_BYTES
    assert text_bytes(card.html) <= HTML_BYTES
    assert_consistent(card)
    assert json_bytes(edit_content(EventId("$x"), card_content(card))) < MAX_CONTENT_BYTES


def document(index: int, name: str) -> RegisteredDocument:
    return RegisteredDocument(
        doc_id=DocumentId(f"{index:032x}"),
        procurement_id=ProcurementId("26908"),
        room_id=RoomId("!supplier:corp.example"),
        room_key=RoomKey("supplier:torgprofi"),
        event_id=EventId(f"$doc{index}"),
        filename=name,
        mime_type="application/pdf",
        size=1024 * index,
        sha256="ab" * 32,
        uploader=KONOVALOV,
        uploaded_at=T0 + timedelta(minutes=index),
        source=DocumentSource.USER,
        caption=None,
    )


# --- cards -----------------------------------------------------------------------------


@pytest.mark.parametrize("locale", list(Locale))
def test_documents_card_with_two_thousand_documents(locale: Locale) -> None:
    name = "Коммерческое предложение поставщика на поставку оборудования " * 4
    documents = [document(i, f"{name}№ {i}.pdf") for i in range(2000)]
    card = documents_card(documents, {KONOVALOV: "Коновалов Александр Сергеевич"}, locale)
    assert_fits(card)
    body = card.body.split("\n")
    shown = [line for line in body if line.startswith("• ")]
    assert 0 < len(shown) < 2000
    # The newest are what people ask for: the earlier ones are counted above them.
    assert body[1] == WORDS[locale]["earlier_items"].format(count=2000 - len(shown))
    assert body[1].startswith("… ")
    assert shown[-1].startswith(f"• {name}№ 1999.pdf")
    assert body[-1] == WORDS[locale]["documents_note"]
    assert card.html.count("<li>") == len(shown)


def test_documents_card_within_budget_lists_all() -> None:
    documents = [document(i, f"Спецификация {i}.pdf") for i in range(20)]
    card = documents_card(documents)
    assert card.body.count("\n• ") == 20
    assert "… и ещё" not in card.body


@pytest.mark.parametrize("locale", list(Locale))
def test_approval_card_with_a_huge_rejection_comment(locale: Locale) -> None:
    comment = "Цена завышена & «условия» <неприемлемы>; " * 1500
    assert len(comment) > 60_000
    state, _ = decide(approval(), KONOVALOV, Decision.REJECTED, comment, None, T0)
    card = approval_card(state, locale)
    assert_fits(card)
    step = next(line for line in card.body.split("\n") if line.startswith("• 1."))
    assert len(step) == len("• ") + LINE_CHARS
    assert step.endswith("…")
    reason = card.body.split("\n")[-1]
    assert reason.startswith(WORDS[locale]["reason"])
    assert len(reason) == LINE_CHARS
    assert reason.endswith("…")


def test_approval_card_with_a_hundred_verbose_approvers() -> None:
    approvers = [UserId(f"@approver{i}:corp.example") for i in range(100)]
    names = dict.fromkeys(approvers, "Заместитель генерального директора по закупкам " * 3)
    state = approval(mode="parallel", approvers=approvers, require_signature=False)
    for user in approvers[:60]:
        state, _ = decide(state, user, Decision.APPROVED, "Согласен без замечаний " * 60, None, T0)
    card = approval_card(state, Locale.RU, names)
    assert_fits(card)
    assert "… и ещё" in card.body
    # The route is open: who decides now is still said, after the cut list.
    assert WORDS[Locale.RU]["how_to_decide"] in card.body


def test_seen_card_with_five_thousand_sightings() -> None:
    sightings = [
        Sighting(UserId(f"@member{i}:corp.example"), T0 + timedelta(seconds=i))
        for i in range(5000)
    ]
    names = {s.user: f"Участник комиссии по закупкам № {i}" for i, s in enumerate(sightings)}
    card = seen_card(document(1, "Протокол.pdf"), sightings, names)
    assert_fits(card)
    body = card.body.split("\n")
    shown = sum(line.startswith("• ") for line in body)
    assert body[-2] == f"… и ещё {5000 - shown}"
    assert body[-1] == WORDS[Locale.RU]["seen_note"]


def long_vote(label: str, question: str) -> Any:
    options = [{"id": f"o{i}", "label": f"{label[: 200 - 3]}{i:02d}"} for i in range(20)]
    data = vote_data(question=question[:1000], options=options, quorum=1)
    data["subject"]["supplier"] = label[:300]
    state = open_vote(parse_vote_request(data), COMMISSION)
    return apply_answer(state, COMMISSION[0], ["o1"], T0)


one_line = st.characters(codec="utf-8", exclude_characters="\n\r")


@given(st.text(one_line | st.sampled_from("<&\"'\x01"), min_size=1))
@settings(max_examples=30, deadline=None)
def test_vote_cards_with_the_longest_texts_fit(unit: str) -> None:
    text = (unit * (1000 // len(unit) + 1)).strip() or "x"
    state = long_vote(text + "x" * 200, text + "?" * 1000)
    ended = close(state, CloseReason.CANCELLED, T0, cancel_reason=text[:1000])
    for card in (live_vote_card(state), live_vote_card(ended), vote_result_card(ended)):
        assert_fits(card)
    content = vote_poll_content(state)
    assert json_bytes(content) < MAX_CONTENT_BYTES
    assert fit_content(content) == content


def test_open_votes_card_with_hundreds_of_votes() -> None:
    state = long_vote("Вариант ответа " * 20, "Утвердить спецификацию? " * 50)
    card = open_votes_card([state] * 300, dict.fromkeys(COMMISSION, "Член комиссии " * 10))
    assert_fits(card)
    assert card.body.endswith("\n…")


@given(st.text(st.sampled_from("<>&\"'ёa \x01") | one_line, min_size=1))
@settings(max_examples=50, deadline=None)
def test_a_cut_line_never_breaks_the_html(unit: str) -> None:
    comment = (unit * (3000 // len(unit) + 1)).strip() or "x"
    state, _ = decide(approval(), KONOVALOV, Decision.REJECTED, comment, None, T0)
    for locale in Locale:
        assert_fits(approval_card(state, locale, {KONOVALOV: comment}))


@pytest.mark.parametrize("locale", list(Locale))
def test_the_live_vote_card_within_budget_is_terms_then_progress(locale: Locale) -> None:
    state = long_vote("За", "Утвердить?")
    for vote in (state, close(state, CloseReason.DEADLINE, T0)):
        terms, progress = voting_card(vote, locale), vote_status_card(vote, locale)
        assert live_vote_card(vote, locale) == Card(
            f"{terms.body}\n\n{progress.body}", terms.html + progress.html
        )
        assert "…" not in terms.body + progress.body


# --- fit_content -----------------------------------------------------------------------

_characters = (
    st.characters(min_codepoint=0x0400, max_codepoint=0x04FF)
    | st.sampled_from(["😀", "👩‍💻", "🇷🇺", "\x00", "\n", "\t", '"', "\\", "<", "&", "\u2028"])
    | st.characters(max_codepoint=0x1F)
    | st.characters()
)
_units = st.lists(_characters, min_size=1, max_size=40).map("".join)


def repeats(most: int) -> st.SearchStrategy[int]:
    # Half of the texts are large: hypothesis itself prefers small numbers.
    return st.integers(0, most) | st.integers(most // 4, most)


# Up to 200,000 characters: hypothesis cannot draw that many one by one, so a drawn unit is
# repeated and a drawn tail keeps the text from being a plain repetition.
bodies = st.builds(
    lambda repeated, tail: repeated + tail,
    _units.flatmap(lambda unit: repeats(200_000 // len(unit)).map(lambda n: unit * n)),
    st.lists(_characters, max_size=50).map("".join),
)


def message(body: str, shape: str) -> dict[str, Any]:
    if shape == "plain":
        return {"msgtype": "m.text", "body": body}
    html = f"<p>{escape(body)}</p>"
    if shape == "reply":
        return {
            "msgtype": "m.notice",
            "body": body,
            "format": "org.matrix.custom.html",
            "formatted_body": html,
            "m.relates_to": RELATION,
        }
    return edit_content(EventId("$card:corp.example"), card_content(Card(body, html)))


@given(bodies, st.sampled_from(["plain", "reply", "edit"]))
@settings(max_examples=60, deadline=None)
def test_fit_content_always_fits(body: str, shape: str) -> None:
    content = message(body, shape)
    fitted = fit_content(content)
    assert content_bytes(fitted) <= MAX_CONTENT_BYTES
    assert json_bytes(fitted) < MATRIX_EVENT_BYTES
    assert fitted["msgtype"] == content["msgtype"]
    assert fitted.get("m.relates_to") == content.get("m.relates_to")
    if "m.new_content" in content:
        assert fitted["m.new_content"]["msgtype"] == content["m.new_content"]["msgtype"]
    if content_bytes(content) <= MAX_CONTENT_BYTES:
        assert fitted == content
    elif fitted["body"] != content["body"]:
        assert "formatted_body" not in fitted
        assert fitted["body"].endswith(CUT_MARK)
        assert content["body"].startswith(fitted["body"][: -len(CUT_MARK)])


def test_fit_content_keeps_what_fits_and_the_html_first() -> None:
    card = card_content(Card("Итоги голосования", "<p>Итоги голосования</p>"))
    assert fit_content(card) == card
    body = "Позиция спецификации: кабель ВВГнг 3×2,5. " * 1000  # ~75 KB in UTF-8
    content = {"msgtype": "m.notice", "body": body, "format": "org.matrix.custom.html"}
    content["formatted_body"] = "<p>x</p>"
    fitted = fit_content(content, marker=WORDS[Locale.RU]["message_cut"])
    assert "formatted_body" not in fitted
    assert "format" not in fitted
    assert fitted["body"].endswith("… (сообщение сокращено)")
    assert content_bytes(fitted) <= MAX_CONTENT_BYTES
    assert content_bytes(fitted) > MAX_CONTENT_BYTES - 100  # cut no more than needed


def test_an_edit_drops_the_fallbacks_html_before_the_new_contents() -> None:
    body = "Строка карточки. " * 500  # ~15 KB: the edit is too large only with both HTMLs
    edit = edit_content(EventId("$card"), card_content(Card(body, f"<p>{body}</p>")))
    fitted = fit_content(edit)
    assert "formatted_body" not in fitted
    assert fitted["m.new_content"] == edit["m.new_content"]
    assert fitted["body"] == edit["body"]
    assert fitted["m.relates_to"] == edit["m.relates_to"]


NOTICES = (
    "**Внимание**, участники: срок подачи [предложений](https://erp.example/26908) "
    "продлён до *20.04.2022*; цена `< 1 000 000 ₽` & «условия» прежние.\n"
    "- пункт спецификации\n- ещё пункт\n\n",
    # Quotes and ampersands take 5-6 bytes each in the HTML: the worst a notice can be.
    '> **"ООО "Ромашка" & Ко"** & "Лютик & Co" <поставщики>\n\n',
)


@pytest.mark.parametrize("paragraph", NOTICES)
def test_a_notice_from_the_longest_markdown(paragraph: str) -> None:
    markdown = (paragraph * (16_000 // len(paragraph) + 1))[:16_000]
    renderer = MarkdownIt("js-default", {"html": False, "linkify": False, "breaks": True})
    content = {
        "msgtype": "m.notice",
        "body": markdown,
        "format": "org.matrix.custom.html",
        "formatted_body": renderer.render(markdown).strip(),
        "m.mentions": {},
    }
    fitted = fit_content(content)
    assert content_bytes(fitted) <= MAX_CONTENT_BYTES
    assert fitted["body"] == markdown  # the Markdown alone always fits
    assert fitted["m.mentions"] == {}
    for edited in (edit_content(EventId("$n"), content), edit_content(EventId("$n"), fitted)):
        assert content_bytes(fit_content(edited)) <= MAX_CONTENT_BYTES


def test_a_poll_with_long_answers_keeps_its_answers() -> None:
    answers = [(f"option-{i}", f"Вариант {i}: " + "поставка в срок " * 700) for i in range(20)]
    content = poll_start_content("Утвердить? " * 2000, answers, False, "Опрос " * 10_000)
    fitted = fit_content(content)
    assert content_bytes(fitted) <= MAX_CONTENT_BYTES
    poll = fitted[POLL_START]
    assert [a["id"] for a in poll["answers"]] == [answer_id for answer_id, _ in answers]
    assert poll["kind"] == content[POLL_START]["kind"]
    assert poll["max_selections"] == 1
    for answer, (_, label) in zip(poll["answers"], answers, strict=True):
        assert answer[TEXT].endswith(CUT_MARK)
        assert label.startswith(answer[TEXT][: -len(CUT_MARK)])
    assert fitted[TEXT].startswith("Опрос ")


def test_a_poll_cuts_its_fallback_first() -> None:
    answers = [("for", "За"), ("against", "Против")]
    content = poll_start_content("Утвердить?", answers, True, "Опрос " * 20_000)
    fitted = fit_content(content)
    assert fitted[POLL_START] == content[POLL_START]
    assert fitted[TEXT].endswith(CUT_MARK)
    assert content_bytes(fitted) <= MAX_CONTENT_BYTES


def test_what_cannot_be_cut_is_refused() -> None:
    answers = [(f"answer-{i:05d}-" + "x" * 20, "Да") for i in range(3000)]
    with pytest.raises(ValueError, match="bytes"):
        fit_content(poll_start_content("?", answers, True, "?"))
    with pytest.raises(ValueError, match="bytes"):
        fit_content({"pinned": [f"$event{i}:corp.example" for i in range(5000)]})
