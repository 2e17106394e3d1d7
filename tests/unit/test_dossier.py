"""The procurement dossier: what an auditor reads of a procurement's audit log."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.domain.dossier import LogEntry, RoomInfo, render_dossier
from bridge.domain.locale import Locale

PROCUREMENT = "P-26908"
ORG_ROOM = "!org:corp.example"
TORGPROFI_ROOM = "!torgprofi:corp.example"
STROYSNAB_ROOM = "!stroysnab:corp.example"
ROOMS = {
    ORG_ROOM: RoomInfo("Закупка 26908 — организация", "organisation"),
    TORGPROFI_ROOM: RoomInfo("ООО «ТоргПрофи»", "supplier"),
    STROYSNAB_ROOM: RoomInfo('<script>alert("room")</script> СтройСнаб', "supplier"),
}
BOT = "@procurement:corp.example"
IVANOVA = "@ivanova:corp.example"
PETROV = "@petrov:corp.example"
SALES = "@sales:torgprofi.example"
INTRUDER = "@intruder:evil.example"
OFFER_SHA = "ab" * 32
BIG_PAYLOAD_SHA = "cd" * 32
SPEC_SHA = "ef" * 32
SIGNATURE_SHA = "12" * 32
START = 1_764_579_600_000  # 2025-12-01 09:00:00 UTC


def blob_href(sha256: str) -> str:
    # The dossier sits in OUT/dossier/<procurement>/, the blobs in OUT/blobs/.
    return f"../../blobs/{sha256}"


class Log:
    """Entries as the log writes them, numbered and timed one minute apart."""

    def __init__(self) -> None:
        self.entries: list[LogEntry] = []

    def fact(
        self,
        kind: str,
        payload: Mapping[str, Any] | None,
        *,
        room: str | None = None,
        subject: str | None = None,
        procurement: str | None = PROCUREMENT,
        payload_sha256: str = "00" * 32,
    ) -> int:
        index = len(self.entries) + 1
        obj: dict[str, Any] = {
            "index": index,
            "kind": kind,
            "time": START + index * 60_000,
            "procurement": procurement,
            "room": room,
            "subject": subject,
            "payload_sha256": payload_sha256,
        }
        if payload is not None:
            obj["payload"] = payload
        self.entries.append(LogEntry.from_json(obj))
        return index

    def event(
        self,
        room: str,
        event_type: str,
        sender: str,
        content: Mapping[str, Any],
        *,
        payload_extra: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> str:
        """A Matrix event as the bridge logs it: of a room, naming no procurement."""
        event_id = f"$e{len(self.entries) + 1}"
        event = {
            "event_id": event_id,
            "type": event_type,
            "sender": sender,
            "origin_server_ts": START + (len(self.entries) + 1) * 60_000,
            "content": dict(content),
            **fields,
        }
        payload = {"event": event, "redacted": False, **(payload_extra or {})}
        self.fact("matrix.event", payload, room=room, subject=event_id, procurement=None)
        return event_id

    def join(self, room: str, user: str, name: str) -> None:
        content = {"membership": "join", "displayname": name}
        self.event(room, "m.room.member", user, content, state_key=user)

    def say(self, room: str, sender: str, body: str, **content: Any) -> str:
        return self.event(
            room, "m.room.message", sender, {"msgtype": "m.text", "body": body, **content}
        )


def procurement_log() -> Log:
    """A small procurement: its organisation's chat with a poll, two supplier chats, the
    vote, an approval signed once validly and once not, and an intruder removed."""
    log = Log()
    log.event(ORG_ROOM, "m.room.name", BOT, {"name": "Закупка 26908"}, state_key="")
    log.join(ORG_ROOM, IVANOVA, "Иванова Анна")
    log.join(ORG_ROOM, PETROV, "Петров Пётр")
    log.say(ORG_ROOM, IVANOVA, "Коллеги, коммерческие предложения ждём до пятницы.")

    log.join(TORGPROFI_ROOM, SALES, "ТоргПрофи <script>alert(1)</script>")
    offer = log.say(TORGPROFI_ROOM, SALES, "Цена 50 000 ₽ без НДС")
    log.event(
        TORGPROFI_ROOM,
        "m.room.message",
        SALES,
        {
            "msgtype": "m.file",
            "body": "КП ТоргПрофи.pdf",
            "filename": "КП ТоргПрофи.pdf",
            "info": {"size": 250_880, "mimetype": "application/pdf"},
            "url": "mxc://torgprofi.example/offer",
        },
        payload_extra={"file": {"sha256": OFFER_SHA, "size": 250_880}},
    )
    log.event(
        TORGPROFI_ROOM,
        "m.room.message",
        SALES,
        {
            "msgtype": "m.text",
            "body": "* Цена 48 801,24 ₽ без НДС",
            "m.new_content": {"msgtype": "m.text", "body": "Цена 48 801,24 ₽ без НДС"},
            "m.relates_to": {"rel_type": "m.replace", "event_id": offer},
        },
    )
    bribe = log.say(TORGPROFI_ROOM, SALES, "Предлагаем скидку 5% лично вам")
    log.event(TORGPROFI_ROOM, "m.room.redaction", SALES, {"reason": "ошибся чатом"}, redacts=bribe)
    log.fact(
        "incident", {"what": "redaction", "event_id": bribe, "by": SALES}, room=TORGPROFI_ROOM
    )

    log.say(
        STROYSNAB_ROOM,
        SALES,
        "<script>alert('xss')</script> \x00 " + "Оченьдлинноеслово" * 40,
        format="org.matrix.custom.html",
        formatted_body="<img src=x onerror=alert(1)>",
    )
    log.event(
        STROYSNAB_ROOM, "m.room.member", INTRUDER, {"membership": "join"}, state_key=INTRUDER
    )
    log.event(
        STROYSNAB_ROOM,
        "m.room.member",
        BOT,
        {"membership": "leave", "reason": "не участник поставщика"},
        state_key=INTRUDER,
    )
    log.fact(
        "enforcement",
        {"effect": "Kick", "room_key": "supplier:2", "target": INTRUDER, "detail": "not invited"},
        room=STROYSNAB_ROOM,
        subject=STROYSNAB_ROOM,
    )

    poll = log.event(
        ORG_ROOM,
        "org.matrix.msc3381.poll.start",
        BOT,
        {
            "org.matrix.msc3381.poll.start": {
                "question": {"org.matrix.msc1767.text": "Выбрать ООО «ТоргПрофи»?"},
                "kind": "org.matrix.msc3381.poll.undisclosed",
                "max_selections": 1,
                "answers": [
                    {"id": "for", "org.matrix.msc1767.text": "За"},
                    {"id": "against", "org.matrix.msc1767.text": "Против"},
                ],
            },
            "org.matrix.msc1767.text": "Выбрать ООО «ТоргПрофи»?",
        },
    )
    for voter, answer in ((IVANOVA, "for"), (PETROV, "against")):
        response = log.event(
            ORG_ROOM,
            "org.matrix.msc3381.poll.response",
            voter,
            {
                "m.relates_to": {"rel_type": "m.reference", "event_id": poll},
                "org.matrix.msc3381.poll.response": {"answers": [answer]},
            },
        )
        ballot = {"vote": "V-7", "voter": voter, "answers": [answer], "event_id": response}
        log.fact("vote.ballot", ballot, room=ORG_ROOM, subject="V-7")
    log.fact(
        "vote.result",
        {
            "vote": "V-7",
            "question": "Выбрать ООО «ТоргПрофи»?",
            "outcome": "tie",
            "counts": {"for": 1, "against": 1},
            "quorum": 2,
            "voters": 2,
        },
        room=ORG_ROOM,
        subject="V-7",
    )

    log.fact(
        "approval.decision",
        {
            "approval": "A-3",
            "approver": IVANOVA,
            "decision": "approve",
            "reason": None,
            "event_id": "$approve-ivanova",
            "signature": {"verdict": "valid", "signer": "Иванова Анна Сергеевна", "detail": None},
        },
        subject="A-3",
    )
    log.fact(
        "approval.decision",
        {
            "approval": "A-3",
            "approver": PETROV,
            "decision": "reject",
            "reason": "Срок поставки не устраивает",
            "event_id": "$reject-petrov",
            "signature": {"verdict": "invalid", "signer": None, "detail": "certificate expired"},
        },
        subject="A-3",
    )
    log.fact("approval.outcome", {"approval": "A-3", "outcome": "rejected"}, subject="A-3")

    bridge_records(log)
    log.fact("webhook", {"id": "wh-1", "type": "procurement.upserted", "body": '{"a":"<b>"}'})
    log.fact("callback", {"id": "cb-1", "type": "vote.completed", "body": {"vote_id": "V-7"}})
    log.fact("callback.answer", {"id": "cb-1", "status": None, "error": "connection refused"})
    log.fact("audit.future", {"something": "new"}, subject="X-1")
    log.event(ORG_ROOM, "org.example.custom", IVANOVA, {"colour": "teal"})
    log.fact("webhook", None, subject="wh-big", payload_sha256=BIG_PAYLOAD_SHA)
    for procurement in ("P-1", None):
        log.fact(
            "matrix.event",
            {"event": {"type": "m.room.message", "content": {"body": "secret of P-1"}}},
            room="!other:corp.example",
            procurement=procurement,
        )
    return log


def bridge_records(log: Log) -> None:
    """Facts in the form the bridge records them: a document it kept, a signature checked on
    that document, a vote's tally and an undelivered callback."""
    spec = log.event(
        ORG_ROOM,
        "m.room.message",
        PETROV,
        {"msgtype": "m.file", "body": "ТЗ.docx", "info": {"size": 12_000}, "url": "mxc://hs/tz"},
    )
    log.fact(
        "document",
        {
            "document_id": "D-1",
            "event_id": spec,
            "filename": "ТЗ.docx",
            "mime_type": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "size": 12_000,
            "sha256": SPEC_SHA,
            "uploader": PETROV,
            "source": "matrix",
            "caption": None,
            "file": {"sha256": SPEC_SHA, "size": 12_000},
        },
        room=ORG_ROOM,
        subject="D-1",
    )
    log.fact(
        "approval.signature",
        {
            "approval": "A-3",
            "approver": PETROV,
            "event_id": "$sig-petrov",
            "signature_file": {"sha256": SIGNATURE_SHA, "size": 2_048},
            "document": {"sha256": SPEC_SHA, "size": 12_000},
            "verdict": "invalid",
            "details": {
                "ok": False,
                "failed_check": "validity",
                "reason": "сертификат просрочен",
                "signer_subject": "CN=Петров Пётр",
            },
        },
        subject="A-3",
    )
    log.fact(
        "vote.result",
        {
            "vote": "V-8",
            "vote_id": "V-8",
            "closed_by": "deadline",
            "cancel_reason": None,
            "tally": {
                "options": [
                    {"id": "for", "label": "За", "count": 0},
                    {"id": "against", "label": "Против", "count": 0},
                ],
                "turnout": 0,
                "voters": 3,
                "quorum": 2,
                "quorum_reached": False,
                "outcome": None,
            },
            "ballots": [
                {
                    "user": INTRUDER,
                    "ts": "2025-12-01T12:00:00+03:00",
                    "answers": ["for"],
                    "option": "for",
                    "counted": False,
                    "ignored": "not_a_voter",
                }
            ],
        },
        room=ORG_ROOM,
        subject="V-8",
    )
    answer = {"id": "cb-0", "delivered": False, "error": "HTTP 503", "parked": True}
    log.fact("callback.answer", answer)


@pytest.fixture(scope="module")
def log() -> Log:
    return procurement_log()


@pytest.fixture(scope="module")
def pages(log: Log) -> dict[str, str]:
    return render_dossier(PROCUREMENT, log.entries, ROOMS, Locale.RU, blob_href)


def index_of(log: Log, text: str) -> int:
    """The log number of the entry whose payload mentions `text`."""
    return next(e.index for e in log.entries if text in repr(e.payload))


def test_the_dossier_has_an_index_and_a_transcript_per_room(pages: dict[str, str]) -> None:
    assert sorted(pages) == ["index.html", "rooms/1.html", "rooms/2.html", "rooms/3.html"]
    index = pages["index.html"]
    assert "Досье закупки P-26908" in index
    for number, info in enumerate(ROOMS.values(), start=1):
        assert f'href="rooms/{number}.html">{escape(info.name)}</a>' in index
    assert "ООО «ТоргПрофи»" in index
    assert "Чат с поставщиком" in index


def test_every_transcript_holds_its_room_alone(pages: dict[str, str]) -> None:
    org, torgprofi, stroysnab = pages["rooms/1.html"], pages["rooms/2.html"], pages["rooms/3.html"]
    assert "коммерческие предложения ждём до пятницы" in org
    assert "коммерческие предложения" not in torgprofi + stroysnab
    assert "Цена 50 000 ₽ без НДС" in torgprofi
    assert "Цена" not in org + stroysnab


def test_senders_are_shown_by_name_with_their_matrix_id(pages: dict[str, str]) -> None:
    org = pages["rooms/1.html"]
    assert "Иванова Анна" in org
    assert IVANOVA in org
    assert "2025-12-01 09:04:00 UTC" in org  # the fourth entry, a minute apart


def test_an_edit_keeps_the_original_visible(log: Log, pages: dict[str, str]) -> None:
    torgprofi = pages["rooms/2.html"]
    edit = index_of(log, "m.replace")
    assert "Цена 48 801,24 ₽ без НДС" in torgprofi
    assert "Цена 50 000 ₽ без НДС" in torgprofi
    assert f'исправлено: <a href="#e{edit}">№ {edit}</a>' in torgprofi
    assert "было: Цена 50 000 ₽ без НДС" in torgprofi


def test_a_deleted_message_is_shown_with_its_original_and_who_deleted_it(
    log: Log, pages: dict[str, str]
) -> None:
    torgprofi = pages["rooms/2.html"]
    redaction = index_of(log, "ошибся чатом")
    assert "Предлагаем скидку 5% лично вам" in torgprofi
    assert "🗑 Удалено:" in torgprofi
    assert f'<a href="#e{redaction}">№ {redaction}</a>' in torgprofi
    assert "причина: ошибся чатом" in torgprofi
    assert "удаление сообщения" in pages["index.html"]  # the incident


def test_a_file_is_named_sized_and_linked_to_its_copy(pages: dict[str, str]) -> None:
    torgprofi, index = pages["rooms/2.html"], pages["index.html"]
    assert "КП ТоргПрофи.pdf" in torgprofi
    assert "245\u00a0КБ" in torgprofi
    assert f'href="../../../blobs/{OFFER_SHA}"' in torgprofi
    assert f'href="../../blobs/{OFFER_SHA}"' in index
    assert "КП ТоргПрофи.pdf" in index


def test_the_poll_and_the_vote_read_with_every_ballot(log: Log, pages: dict[str, str]) -> None:
    org, index = pages["rooms/1.html"], pages["index.html"]
    poll = index_of(log, "org.matrix.msc3381.poll.start")
    assert "📊 Опрос: Выбрать ООО «ТоргПрофи»?" in org
    assert f'ответ в опросе <a href="#e{poll}">№ {poll}</a> — За</div>' in org
    assert f'ответ в опросе <a href="#e{poll}">№ {poll}</a> — Против</div>' in org
    assert "Голосование V-7 — Выбрать ООО «ТоргПрофи»?" in index
    for entry in log.entries:
        if entry.kind == "vote.ballot":
            assert f'id="e{entry.index}"><span class="n">№ {entry.index}</span>' in index
    assert "Итог: tie" in index
    assert "кворум: 2" in index


def test_approvals_show_every_decision_and_the_signature_verdict(pages: dict[str, str]) -> None:
    index = pages["index.html"]
    assert "Согласование A-3" in index
    assert "✔ подпись действительна" in index
    assert "подписант: Иванова Анна Сергеевна" in index
    assert "✘ подпись недействительна" in index
    assert "certificate expired" in index
    assert "Срок поставки не устраивает" in index
    assert "Итог согласования: отклонено" in index


def test_a_kick_is_an_enforcement_and_a_grey_line(log: Log, pages: dict[str, str]) -> None:
    index, stroysnab = pages["index.html"], pages["rooms/3.html"]
    kick = index_of(log, "not invited")
    assert f"№ {kick}" in index
    assert "исключение из чата" in index
    assert INTRUDER in index
    assert f'исключение из чата — <span class="id">{INTRUDER}</span>' in stroysnab
    assert "причина: не участник поставщика" in stroysnab


def test_untrusted_text_is_escaped_and_never_markup(pages: dict[str, str]) -> None:
    for page in pages.values():
        assert "<script" not in page.lower()
        assert "<img" not in page.lower()
        assert "\x00" not in page
    stroysnab = pages["rooms/3.html"]
    assert "&lt;script&gt;alert(&#x27;xss&#x27;)&lt;/script&gt;" in stroysnab
    assert "ТоргПрофи &lt;script&gt;alert(1)&lt;/script&gt;" in pages["rooms/2.html"]
    assert "onerror" not in stroysnab  # the HTML body is never shown, only the plain one


def test_nothing_is_dropped_and_other_procurements_stay_out(
    log: Log, pages: dict[str, str]
) -> None:
    index = pages["index.html"]
    assert "audit.future" in index
    assert "something: &quot;new&quot;" in index
    assert "org.example.custom" in pages["rooms/1.html"]
    assert "connection refused" in index
    assert f'href="../../blobs/{BIG_PAYLOAD_SHA}"' in index
    assert "secret of P-1" not in "".join(pages.values())
    own = [e for e in log.entries if e.procurement == PROCUREMENT or e.room in ROOMS]
    for entry in own:
        assert f"№ {entry.index}" in "".join(pages.values())


def test_a_document_the_bridge_kept_is_linked_from_its_message(pages: dict[str, str]) -> None:
    org, index = pages["rooms/1.html"], pages["index.html"]
    assert "ТЗ.docx" in org
    assert f'href="../../../blobs/{SPEC_SHA}"' in org
    assert "📄 Документ <b>ТЗ.docx</b>" in index
    assert 'загрузил(а): <span class="who">Петров Пётр</span>' in index


def test_a_signature_shows_its_check_and_both_files(pages: dict[str, str]) -> None:
    index = pages["index.html"]
    assert (
        "✘ подпись недействительна</span>; подписант: CN=Петров Пётр; сертификат просрочен"
        in index
    )
    assert f'подписанный документ</a> <span class="id">sha256 {SPEC_SHA}</span>' in index
    assert f'файл подписи</a> <span class="id">sha256 {SIGNATURE_SHA}</span>' in index


def test_a_tally_reads_with_labels_and_the_ballots_it_did_not_count(pages: dict[str, str]) -> None:
    index = pages["index.html"]
    assert "Итог: решение не принято — кворум не набран" in index
    assert 'голоса: За <span class="id">for</span> — 0' in index
    assert "завершено: по истечении срока" in index
    assert "не учтён: не входит в число голосующих" in index


def test_an_undelivered_callback_says_so(pages: dict[str, str]) -> None:
    index = pages["index.html"]
    assert "Ответ на запрос cb-0 — не доставлен — " in index
    assert "HTTP 503" in index
    assert "попытки прекращены" in index


def test_the_index_says_how_to_verify(pages: dict[str, str]) -> None:
    index = pages["index.html"]
    assert "python -m bridge audit verify OUT/ --key VERIFIER" in index
    assert "OUT/checkpoint" in index


def test_the_pages_are_self_contained(pages: dict[str, str]) -> None:
    for page in pages.values():
        assert page.startswith("<!DOCTYPE html>")
        assert "default-src 'none'" in page
        assert "http://" not in page
        assert "https://" not in page


def test_english(log: Log) -> None:
    pages = render_dossier(PROCUREMENT, log.entries, ROOMS, Locale.EN, blob_href)
    index = pages["index.html"]
    assert '<html lang="en">' in index
    assert "Procurement dossier P-26908" in index
    assert "✘ signature INVALID" in index
    assert "How to verify" in index
    assert "Deleted by" in pages["rooms/2.html"]


def test_an_entry_with_a_broken_envelope_is_refused() -> None:
    with pytest.raises(ValueError, match="index"):
        LogEntry.from_json({"index": "41", "kind": "webhook", "time": 0})
    with pytest.raises(ValueError, match="payload"):
        LogEntry.from_json({"index": 41, "kind": "webhook", "time": 0, "payload": [1]})


# --- whatever the payloads hold ---------------------------------------------------------

EVENT_IDS = ["$a", "$b", "$c"]
SCRIPT = "<script>alert(1)</script>"
FIELDS = [
    "body", "msgtype", "filename", "info", "size", "sha256", "url", "m.relates_to", "rel_type",
    "event_id", "m.new_content", "key", "membership", "displayname", "reason", "redacts",
    "name", "topic", "join_rule", "org.matrix.msc3381.poll.start", "m.poll", "question",
    "answers", "id", "m.id", "org.matrix.msc1767.text", "m.text", "m.selections",
    "org.matrix.msc3381.poll.response", "m.in_reply_to", "vote", "voter", "outcome", "counts",
    "quorum", "voters", "approval", "approver", "decision", "signature", "verdict", "signer",
    "detail", "effect", "room_key", "target", "what", "by", "type", "status", "error", "file",
    "details", "tally", "options", "label", "count", "quorum_reached", "ballots", "counted",
    "ignored", "option", "user", "ts", "delivered", "parked", "signature_file", "document",
    "caption", "uploader", "source", "cancel_reason", "closed_by", "turnout", "failed_check",
]  # fmt: skip
EVENT_TYPES = [
    "m.room.message", "m.room.member", "m.room.redaction", "m.reaction", "m.room.name",
    "m.room.topic", "m.room.power_levels", "m.room.join_rules", "m.room.tombstone",
    "m.room.create", "org.matrix.msc3381.poll.start", "m.poll.start",
    "org.matrix.msc3381.poll.response", "m.poll.response", "org.matrix.msc3381.poll.end",
]  # fmt: skip
KINDS = [
    "matrix.event", "webhook", "callback", "callback.answer", "vote.ballot", "vote.result",
    "approval.decision", "approval.signature", "approval.outcome", "enforcement", "incident",
    "document",
]  # fmt: skip

texts = st.text() | st.sampled_from(
    [SCRIPT, "approve", "approved", "valid", "invalid", "join", "leave", "Kick", *EVENT_IDS]
)
file_refs = st.fixed_dictionaries(
    {"sha256": st.sampled_from([OFFER_SHA, SCRIPT]), "size": st.integers()}
)
keys = st.sampled_from(FIELDS) | st.text(max_size=6)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | texts | file_refs,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=12,
)
objects = st.dictionaries(keys, json_values, max_size=6)
events = st.fixed_dictionaries(
    {"type": st.sampled_from(EVENT_TYPES) | texts, "content": objects | json_values},
    optional={
        "event_id": st.sampled_from(EVENT_IDS) | json_values,
        "sender": texts | json_values,
        "state_key": texts | json_values,
        "redacts": st.sampled_from(EVENT_IDS) | json_values,
        "origin_server_ts": st.integers() | json_values,
    },
)
payloads = st.none() | objects | st.fixed_dictionaries({"event": events, "redacted": json_values})


@st.composite
def log_entries(draw: st.DrawFn) -> list[LogEntry]:
    entries = []
    for index in range(draw(st.integers(0, 8))):
        entries.append(
            LogEntry(
                index=index,
                kind=draw(st.sampled_from(KINDS) | st.text(max_size=10)),
                time=draw(st.integers(-(2**63) + 1, 2**63 - 1)),
                procurement=draw(st.sampled_from([PROCUREMENT, None, "P-1"])),
                room=draw(st.sampled_from([ORG_ROOM, TORGPROFI_ROOM, "!unknown:hs", None])),
                subject=draw(st.none() | texts),
                payload=draw(payloads),
                payload_sha256=draw(st.none() | st.sampled_from([OFFER_SHA, SCRIPT])),
            )
        )
    return entries


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    log_entries(),
    st.dictionaries(st.sampled_from([ORG_ROOM, "!x:hs"]), st.builds(RoomInfo, texts, texts)),
    st.sampled_from(Locale),
)
def test_any_payload_renders_escaped(
    entries: list[LogEntry], rooms: dict[str, RoomInfo], locale: Locale
) -> None:
    pages = render_dossier(PROCUREMENT, entries, rooms, locale, lambda sha: f"blobs/{sha}")
    for page in pages.values():
        assert "<script" not in page.lower()
        assert "\x00" not in page
