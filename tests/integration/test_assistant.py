"""The assistant as people use it from Element: every command by every role in every place,
decisions that count only once clicked, buttons that do what typing does, status and tasks."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from bridge.core import BridgeCore
from bridge.demo.seed import seed_vote
from bridge.domain.answers import not_allowed_card, say
from bridge.domain.commands import SPECS, Command, Place, Role
from bridge.domain.locale import Locale

from ..cast import Cast, make_cast
from ..conftest import StartBridge
from ..erp import ERP
from ..matrix_user import Event, MatrixUser
from ..receiver import Receiver
from ..talk import (
    BOT,
    answers,
    ask,
    body,
    buttons_on,
    click,
    html,
    open_dm,
    press,
    reply_to,
    rooms_of,
)
from ..waiting import wait_for

DOCUMENT = b"%PDF-1.7\n% TKA 234/01-02\n" + bytes(range(64))
POLL_START = "org.matrix.msc3381.poll.start"
RESPONSE = "org.matrix.msc3381.poll.response"

# What each command is typed as in the test; a new command must be added here. With an
# argument and no «!», a command of no use in a room is taken for chat (checked below).
TYPED = {
    Command.HELP: "помощь",
    Command.STATUS: "статус",
    Command.TASKS: "мои задачи",
    Command.SEARCH: "поиск арматура",
    Command.MORE: "ещё",
    Command.VOTE: "голосование",
    Command.DOCUMENTS: "документы",
    Command.SEEN: "!кто видел TKA",
    Command.APPROVE: "согласовать",
    Command.REJECT: "!отклонить Цена завышена",
    Command.REQUEST: "заявка",
    Command.CANCEL: "отмена",
}
# These two go last, one at a time: «заявка» starts a conversation that «отмена» ends.
LAST = (Command.REQUEST, Command.CANCEL)


def refused(command: Command, roles: frozenset[Role]) -> str:
    return not_allowed_card(SPECS[command], roles, Locale.RU).body


def approval_request(cast: Cast, approval_id: str, approvers: list[MatrixUser]) -> dict[str, Any]:
    return {
        "procurement_id": cast.procurement_id,
        "approval_id": approval_id,
        "initiator": cast.manager.user_id,
        "document": {
            "type": "Торгово-коммерческий анализ (ТКА)",
            "number": "234/01-02",
            "filename": "TKA_234-01-02.pdf",
            "content_base64": base64.b64encode(DOCUMENT).decode(),
            "sha256": hashlib.sha256(DOCUMENT).hexdigest(),
        },
        "mode": "parallel",
        "group": "Руководители",
        "approvers": [a.user_id for a in approvers],
        "require_signature": False,
        "deadline": (datetime.now(UTC) + timedelta(days=5)).isoformat(),
    }


class Everyone:
    """A procurement at its commission stage with every kind of room: who is where."""

    def __init__(self, cast: Cast) -> None:
        self.cast = cast
        s0, s1 = cast.suppliers[0], cast.suppliers[1]
        manager, (team,), (logistics,) = cast.manager, cast.team, cast.logistics
        com0, com1 = cast.commission
        supplier0, supplier1 = f"supplier:{s0.id}", f"supplier:{s1.id}"
        everything = {"org", supplier0, supplier1, "commission"}
        everything |= {"approval:A-1", "specification:SP-1", "shipment:SH-1"}
        # Each person's rooms and the roles the procurement gives them.
        self.people: list[tuple[MatrixUser, set[str], frozenset[Role]]] = [
            (manager, everything, frozenset({Role.MANAGER})),
            (team, {"org", "specification:SP-1"}, frozenset({Role.TEAM})),
            (logistics, {"shipment:SH-1"}, frozenset({Role.LOGISTICS})),
            (com0, {"commission"}, frozenset({Role.COMMISSION})),
            (com1, {"commission", "approval:A-1"}, frozenset({Role.COMMISSION})),
            (
                s0.members[0],
                {supplier0, "specification:SP-1", "shipment:SH-1"},
                frozenset({Role.SUPPLIER}),
            ),
            (s1.members[0], {supplier1}, frozenset({Role.SUPPLIER})),
        ]
        self.approver = com1

    def snapshot(self) -> dict[str, Any]:
        s0 = self.cast.suppliers[0]
        return self.cast.snapshot(
            "commission",
            specifications=[{"id": "SP-1", "supplier_id": s0.id}],
            shipments=[{"id": "SH-1", "supplier_id": s0.id, "status": "in_transit"}],
        )

    async def open(self, erp: ERP) -> dict[str, dict[str, str]]:
        """Everything set up and joined; each person's rooms by key, "dm" their direct chat."""
        await erp.upsert(self.snapshot())
        status, answer = await erp.send(
            "approval.requested", approval_request(self.cast, "A-1", [self.approver])
        )
        assert status == 202, answer
        found: dict[str, dict[str, str]] = {}
        for user, keys, _ in self.people:
            rooms = await rooms_of(user, keys)
            found[user.user_id] = {key: rooms[key] for key in keys} | {"dm": await open_dm(user)}
        return found


def place_of(key: str) -> Place:
    return Place.DIRECT if key == "dm" else Place(key.split(":")[0])


def roles_there(everyone: Everyone, user: MatrixUser, roles: frozenset[Role], key: str) -> Any:
    """The approver is one in their approval's room only."""
    if user is everyone.approver and key.startswith("approval:"):
        return roles | {Role.APPROVER}
    return roles


async def try_every_command(
    user: MatrixUser, room_id: str, place: Place, roles: frozenset[Role]
) -> list[str]:
    """Types every command here; what went wrong (an empty list when all is as the table
    says)."""
    problems: list[str] = []
    first = [c for c in Command if c not in LAST]
    replies = await answers(user, room_id, [TYPED[c] for c in first])
    replies += [await ask(user, room_id, TYPED[c]) for c in LAST]
    who = sorted(role.value for role in roles)
    for command, reply in zip([*first, *LAST], replies, strict=True):
        allowed = SPECS[command].allowed(roles, place)
        text = body(reply)
        if allowed and text == refused(command, roles):
            problems.append(f"{place.value}: {TYPED[command]!r} refused to {who}")
        if not allowed and text != refused(command, roles):
            problems.append(f"{place.value}: {TYPED[command]!r} allowed to {who}")
        if command is Command.HELP:
            for spec in SPECS.values():
                shown = f"<code>{spec.word(Locale.RU)}" in html(reply)
                if shown != spec.allowed(roles, place):
                    problems.append(f"{place.value}: help shows {spec.word(Locale.RU)}: {shown}")
    return problems


async def test_every_command_by_every_role_in_every_place(
    bridge: BridgeCore, erp: ERP, user_factory: Any
) -> None:
    assert set(TYPED) == set(Command)
    everyone = Everyone(await make_cast(user_factory, suppliers=2, commission=2))
    rooms = await everyone.open(erp)

    async def person(user: MatrixUser, roles: frozenset[Role]) -> list[str]:
        problems = []
        for key, room_id in rooms[user.user_id].items():
            there = roles_there(everyone, user, roles, key)
            problems += await try_every_command(user, room_id, place_of(key), there)
        return problems

    results = await asyncio.gather(*(person(u, r) for u, _, r in everyone.people))
    assert [p for found in results for p in found] == []

    # The table itself says what a procurement team expects.
    supplier = SPECS[Command.REQUEST]
    assert not supplier.allowed({Role.SUPPLIER}, Place.SUPPLIER)
    assert not SPECS[Command.APPROVE].allowed({Role.MANAGER}, Place.APPROVAL)
    assert SPECS[Command.APPROVE].allowed({Role.APPROVER}, Place.APPROVAL)
    assert not SPECS[Command.VOTE].allowed({Role.SUPPLIER}, Place.COMMISSION)

    # English commands, an unknown command with «!», and chat that is not a command.
    s1 = everyone.people[-1][0]
    dm = rooms[s1.user_id]["dm"]
    help_en, unknown = await answers(s1, dm, ["help", "!абракадабра"])
    assert "<code>статус" in html(help_en)
    assert "<code>заявка" not in html(help_en)
    assert body(unknown) == say(Locale.RU, "unknown", word="абракадабра")
    supplier_room = rooms[s1.user_id][f"supplier:{everyone.cast.suppliers[1].id}"]
    chats = [
        await s1.send_text(supplier_room, "Документы пришлю завтра"),
        await s1.send_text(supplier_room, "Согласовать сроки нужно до пятницы"),
    ]
    await ask(s1, supplier_room, "status")  # answered after the messages before it
    assert not any(reply_to(chat)(e) for chat in chats for e in s1.timeline[supplier_room])


async def test_a_typed_decision_counts_only_once_its_own_person_clicks(
    bridge_with: StartBridge, erp: ERP, receiver: Receiver, user_factory: Any
) -> None:
    await bridge_with(callbacks__url=receiver.url)
    cast = await make_cast(user_factory, suppliers=1, commission=2)
    manager, approver = cast.manager, cast.commission[1]
    await erp.upsert(cast.snapshot("commission"))
    status, _ = await erp.send(
        "approval.requested", approval_request(cast, "A-1", [approver, manager])
    )
    assert status == 202
    room_id = (await rooms_of(approver, {"approval:A-1"}))["approval:A-1"]
    await rooms_of(manager, {"approval:A-1"})
    card = await approver.wait_for_event(room_id, is_approval_card)

    # A sentence that starts with the command's word asks; nothing is decided.
    asked = await ask(approver, room_id, "согласовать договор с поставщиком завтра обсудим")
    assert "Подтвердите" in body(asked)
    assert await buttons_on(approver, room_id, asked["event_id"], 2) == [
        "✅ Да",
        "✖️ Нет",
    ]
    # Someone else presses the confirmation: it is not theirs.
    await press(manager, room_id, asked, "✅ Да")
    await ask(manager, room_id, "статус")  # the click before it has been handled
    # The person declines; the confirmation is spent, a later click on it does nothing.
    declined = await click(approver, room_id, asked, "✖️ Нет")
    assert body(declined) == say(Locale.RU, "cancelled")
    await press(approver, room_id, asked, "✅ Да")
    await ask(approver, room_id, "статус")
    assert decisions(receiver) == []

    # Typed and confirmed: counts once, as the person's decision.
    asked = await ask(approver, room_id, "согласовать Замечаний нет")
    await click(approver, room_id, asked, "✅ Да")
    await wait_for(lambda: len(decisions(receiver)) == 1, what="the approval's step")
    (step,) = decisions(receiver)
    assert (step["approver"], step["decision"], step["comment"]) == (
        approver.user_id,
        "approved",
        "Замечаний нет",
    )
    # The card's own buttons: «Отклонить» asks for the reason, which rejects.
    await buttons_on(manager, room_id, card["event_id"], 2)
    question = await click(manager, room_id, card, "❌ Нет")
    assert body(question) == say(Locale.RU, "reason_ask")
    await manager.send_text(room_id, "Цена выше рыночной на 12%")
    await wait_for(lambda: completed(receiver), what="the outcome")
    assert completed(receiver)[0]["outcome"] == "rejected"
    assert completed(receiver)[0]["reason"] == "Цена выше рыночной на 12%"

    # The card shows both decisions, the typed one included.
    async def card_shows_both() -> bool:
        await approver.sync()
        shown = approver.shown(room_id, card["event_id"])
        return "согласовано" in shown and "Цена выше рыночной на 12%" in shown

    await wait_for(card_shows_both, what="the card to show both decisions")
    assert len(decisions(receiver)) == 2
    assert len(completed(receiver)) == 1


def is_approval_card(event: Event) -> bool:
    content = event.get("content", {})
    return (
        event["sender"] == BOT
        and content.get("body", "").startswith("Согласование:")
        and "m.relates_to" not in content
    )


def callbacks(receiver: Receiver, kind: str) -> list[dict[str, Any]]:
    return [r.body["data"] for r in receiver.delivered() if r.body["type"] == kind]


def decisions(receiver: Receiver) -> list[dict[str, Any]]:
    return callbacks(receiver, "approval.step_decided")


def completed(receiver: Receiver) -> list[dict[str, Any]]:
    return callbacks(receiver, "approval.completed")


async def test_status_tasks_and_the_direct_chat_menu(
    bridge: BridgeCore, erp: ERP, user_factory: Any
) -> None:
    cast = await make_cast(user_factory, suppliers=2, commission=2)
    await erp.upsert(cast.snapshot("commission"))
    manager, (com0, com1) = cast.manager, cast.commission
    supplier = cast.suppliers[0].members[0]
    commission = (await rooms_of(com0, {"commission"}))["commission"]
    await rooms_of(com1, {"commission"})
    await rooms_of(manager, {"commission", "org"})
    key = f"supplier:{cast.suppliers[0].id}"
    supplier_room = (await rooms_of(supplier, {key}))[key]
    vote = seed_vote(cast.procurement_id, "V-1", datetime.now(UTC) + timedelta(hours=3)) | {
        "quorum": 2
    }
    assert (await erp.send("vote.requested", vote))[0] == 202
    poll = await com0.wait_for_event(commission, lambda e: e["type"] == POLL_START)
    await com0.send_event(commission, RESPONSE, answer(poll["event_id"], "for"))

    async def status_shows(text: str) -> Event | None:
        reply = await ask(manager, commission, "статус")
        return reply if text in body(reply) else None

    status = await wait_for(lambda: status_shows("1 из 2"), what="the vote in the status")
    assert "Статус закупки 26908" in body(status)
    assert "Этап: Работа комиссии с " in body(status)
    assert "Утвердить спецификацию" in body(status)
    assert f"не ответили: {display(com1)}" in body(status)
    assert "https://matrix.to/#/" in html(status)  # the manager's other rooms

    # A supplier's status speaks of their own room only: no vote, no other supplier, nobody's
    # answers.
    theirs = body(await ask(supplier, supplier_room, "статус"))
    assert "Утвердить" not in theirs
    assert cast.suppliers[1].name not in theirs
    assert "не ответили" not in theirs

    # Tasks in the direct chat: the one who has not answered has the vote, with its link.
    dm = await open_dm(com1)
    tasks = await ask(com1, dm, "мои задачи")
    assert "Утвердить спецификацию" in body(tasks)
    assert f"https://matrix.to/#/{commission}" in html(tasks).replace("%21", "!")
    done = await open_dm(com0)
    assert body(await ask(com0, done, "мои задачи")).endswith(say(Locale.RU, "no_tasks"))

    # The menu: help in the direct chat carries buttons; a click does what typing does.
    menu = await ask(com1, dm, "помощь")
    keys = await buttons_on(com1, dm, menu["event_id"], 3)
    assert keys == ["📊 Статус", "📋 Задачи", "🔍 Поиск"]  # no «Заявка»: not theirs
    clicked = await click(com1, dm, menu, "📋 Задачи")
    assert body(clicked) == body(tasks)
    statuses = await click(com1, dm, menu, "📊 Статус")
    assert "26908" in body(statuses)
    assert "ждёт вас: 1" in body(statuses)
    asked = await click(com1, dm, menu, "🔍 Поиск")
    assert body(asked) == say(Locale.RU, "search_ask")
    found = await ask(com1, dm, "спецификации")
    assert "Утвердить спецификацию" in body(found)


def answer(poll_id: str, option: str) -> dict[str, Any]:
    return {
        RESPONSE: {"answers": [option]},
        "m.relates_to": {"rel_type": "m.reference", "event_id": poll_id},
    }


def display(user: MatrixUser) -> str:
    """How the bot names a person without a display name: their localpart."""
    return user.user_id.split(":")[0].removeprefix("@")
