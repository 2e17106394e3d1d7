"""Procurement rooms as people see them: who is where, names, policy, archives, enforcement."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from mautrix.errors import MatrixRequestError

from bridge.core import BridgeCore

from ..cast import Cast, make_cast
from ..erp import ERP
from ..matrix_user import MatrixUser
from ..waiting import wait_for

BOT = "@procbot:localhost"


def expected_keys(cast: Cast, stage: str) -> dict[str, set[str]]:
    """DESIGN §3, written out by hand for the stages these tests use."""
    s0, s1 = (s.id for s in cast.suppliers[:2])
    categories = {"category:suppliers"}
    commission_keys: set[str] = set()
    if stage == "commission":
        categories.add("category:commission")
        commission_keys = {"commission"}
    internal = {"space"} | categories
    people = {
        cast.manager.user_id: internal
        | {"org", f"supplier:{s0}", f"supplier:{s1}"}
        | commission_keys,
        cast.team[0].user_id: internal | {"org"},
        cast.logistics[0].user_id: internal,
        cast.suppliers[0].members[0].user_id: {f"supplier:{s0}", f"supplier-space:{s0}"},
        cast.suppliers[1].members[0].user_id: {f"supplier:{s1}", f"supplier-space:{s1}"},
    }
    for member in cast.commission:
        people[member.user_id] = internal | commission_keys
    return people


async def join_everything(cast: Cast, stage: str) -> dict[str, dict[str, str]]:
    """Each person accepts their invites; returns their rooms by key."""
    expected = expected_keys(cast, stage)
    seen = {}
    for person in cast.everyone:
        await person.accept_invites(len(expected[person.user_id]))
        seen[person.user_id] = await person.rooms_by_key()
    return seen


async def test_each_person_sees_exactly_their_rooms(
    bridge: BridgeCore, erp: ERP, user_factory: Any
) -> None:
    cast = await make_cast(user_factory)
    outsider = await user_factory("outsider")
    await erp.upsert(cast.snapshot("offers"))
    seen = await join_everything(cast, "offers")
    expected = expected_keys(cast, "offers")
    for person in cast.everyone:
        assert set(seen[person.user_id]) == expected[person.user_id], person.user_id

    manager = cast.manager
    rooms = seen[manager.user_id]
    torgprofi = cast.suppliers[0]
    supplier_room = rooms[f"supplier:{torgprofi.id}"]
    name = (await manager.state_event(supplier_room, "m.room.name"))["name"]
    assert "ООО «ТоргПрофи»" in name
    assert "26908" in name
    org_name = (await manager.state_event(rooms["org"], "m.room.name"))["name"]
    assert org_name.startswith("Чат организации по закупке")
    space_name = (await manager.state_event(rooms["space"], "m.room.name"))["name"]
    assert space_name == "Закупка 26908 · Поставка арматуры А500С"
    category = (await manager.state_event(rooms["category:suppliers"], "m.room.name"))["name"]
    assert category == "Чаты с поставщиками"
    topic = (await manager.state_event(supplier_room, "m.room.topic"))["topic"]
    assert "26908" in topic

    context = await manager.context(supplier_room)
    assert context["procurement_id"] == cast.procurement_id
    assert context["kind"] == "supplier"
    assert context["stage"] == "offers"
    assert context["object"]["name"] == "Лахта Центр, корпус 2"

    for room_id in rooms.values():
        levels = await manager.state_event(room_id, "m.room.power_levels")
        assert levels["users"] == {}  # room version 12: the creating bot is above all levels
        assert levels["events_default"] == 0
        assert levels["events"]["m.room.redaction"] == 150
        assert levels["events"]["m.room.power_levels"] == 150
        assert levels["redact"] == levels["invite"] == levels["kick"] == 150
        create = await manager.state_event(room_id, "m.room.create")
        assert create["room_version"] == "12"
        assert create["m.federate"] is False
        rules = await manager.state_event(room_id, "m.room.join_rules")
        assert rules["join_rule"] == "invite"
        assert (await manager.state_event(room_id, "m.room.guest_access"))[
            "guest_access"
        ] == "forbidden"

    # The bot's first message in a room is its context card.
    card = await manager.wait_for_event(
        supplier_room, lambda e: e["type"] == "m.room.message" and e["sender"] == BOT
    )
    assert "Системный помощник: чат создан" in card["content"]["body"]

    # Nobody else: no invites, and an invite-only room cannot be joined.
    await outsider.sync()
    assert outsider.invites == {}
    with pytest.raises(MatrixRequestError):
        await outsider.join(supplier_room)

    # The procurement system's "open chat" button.
    status, procurement = await erp.get(f"/api/v1/procurements/{cast.procurement_id}")
    assert status == 200
    listed = {room["key"]: room for room in procurement["rooms"]}
    assert listed[f"supplier:{torgprofi.id}"]["room_id"] == supplier_room
    assert listed[f"supplier:{torgprofi.id}"]["link"] == f"https://matrix.to/#/{supplier_room}"
    assert listed[f"supplier:{torgprofi.id}"]["archived"] is False
    assert procurement["stage"] == "offers"


async def probe(attacker: MatrixUser, victim: Any, victim_rooms: set[str]) -> list[str]:
    """Everything a supplier's member can ask; returns what names the other supplier."""
    leaks: list[str] = []
    secrets = {victim.id, victim.name, *victim_rooms, *(m.user_id for m in victim.members)}

    def check(where: str, value: Any) -> None:
        text = str(value)
        leaks.extend(f"{where}: {secret}" for secret in secrets if secret in text)

    await attacker.sync()
    check("invites", attacker.invites)
    joined = await attacker.joined_rooms()
    check("joined rooms", joined)
    for room_id in joined:
        check(f"state of {room_id}", await attacker.room_state(room_id))
        check(f"timeline of {room_id}", attacker.timeline.get(room_id, []))
        members = await attacker.request("GET", f"/_matrix/client/v3/rooms/{room_id}/members")
        check(f"members of {room_id}", members)
        try:
            hierarchy = await attacker.request(
                "GET", f"/_matrix/client/v1/rooms/{room_id}/hierarchy"
            )
            check(f"hierarchy of {room_id}", hierarchy)
        except MatrixRequestError:
            pass
    directory = await attacker.request("POST", "/_matrix/client/v3/publicRooms", {})
    check("room directory", directory)
    for member in victim.members:
        for term in (member.user_id, member.user_id[1:].split(":")[0]):
            found = await attacker.request(
                "POST", "/_matrix/client/v3/user_directory/search", {"search_term": term}
            )
            check("user directory", found["results"])
    for room_id in victim_rooms:
        with contextlib.suppress(MatrixRequestError):
            check(
                "victim room hierarchy",
                await attacker.request("GET", f"/_matrix/client/v1/rooms/{room_id}/hierarchy"),
            )
    for guess in (f"#{victim.id}:localhost", f"#supplier-{victim.id}:localhost"):
        with contextlib.suppress(MatrixRequestError):
            check(
                "alias",
                await attacker.request(
                    "GET", f"/_matrix/client/v3/directory/room/{guess.replace('#', '%23')}"
                ),
            )
    return leaks


async def test_suppliers_never_learn_about_each_other(
    bridge: BridgeCore, erp: ERP, user_factory: Any
) -> None:
    cast = await make_cast(user_factory, suppliers=3)
    await erp.upsert(cast.snapshot("offers"))
    for supplier in cast.suppliers:
        await supplier.members[0].accept_invites(2)
    rooms_of = {}
    for supplier in cast.suppliers:
        own = await wait_for(lambda s=supplier: _all_rooms(s.members[0], 2), what="their rooms")
        rooms_of[supplier.id] = {
            own[f"supplier:{supplier.id}"],
            own[f"supplier-space:{supplier.id}"],
        }
    # A bot reply inside each supplier room, to include in what is probed.
    for supplier in cast.suppliers:
        member = supplier.members[0]
        room_id = (await member.rooms_by_key())[f"supplier:{supplier.id}"]
        asked = await member.send_text(room_id, "помощь")
        await member.wait_for_event(
            room_id,
            lambda e, asked=asked: (
                e.get("content", {})
                .get("m.relates_to", {})
                .get("m.in_reply_to", {})
                .get("event_id")
                == asked
            ),
        )
    for attacker in cast.suppliers:
        for victim in cast.suppliers:
            if victim is attacker:
                continue
            leaks = await probe(attacker.members[0], victim, rooms_of[victim.id])
            assert leaks == [], f"{attacker.id} learns about {victim.id}: {leaks}"


async def _all_rooms(user: MatrixUser, count: int) -> dict[str, str] | None:
    await user.accept_invites(0)
    rooms = await user.rooms_by_key()
    return rooms if len(rooms) >= count else None


async def test_nothing_is_deleted_and_power_cannot_be_taken(
    bridge: BridgeCore, erp: ERP, user_factory: Any
) -> None:
    cast = await make_cast(user_factory, suppliers=2, commission=0)
    admin = await user_factory("admin", admin=True)
    outsider = await user_factory("outsider")
    await erp.upsert(cast.snapshot("offers"))
    supplier = cast.suppliers[0].members[0]
    await supplier.accept_invites(2)
    room_id = (await supplier.rooms_by_key())[f"supplier:{cast.suppliers[0].id}"]
    said = await supplier.send_text(room_id, "Цена действительна до пятницы")

    # No one can delete even their own message.
    with pytest.raises(MatrixRequestError) as refused:
        await supplier.request(
            "PUT", f"/_matrix/client/v3/rooms/{room_id}/redact/{said}/r1", {"reason": "oops"}
        )
    assert refused.value.http_status == 403

    # A server admin makes themselves room admin (Synapse sends that as the bot) …
    await admin.request(
        "POST",
        f"/_synapse/admin/v1/rooms/{room_id}/make_room_admin",
        {"user_id": admin.user_id},
    )
    # … and still cannot force anyone in or re-permission the room …
    with pytest.raises(MatrixRequestError):
        await admin.request(
            "POST", f"/_synapse/admin/v1/join/{room_id}", {"user_id": outsider.user_id}
        )
    with pytest.raises(MatrixRequestError):
        await admin.request(
            "PUT",
            f"/_matrix/client/v3/rooms/{room_id}/state/m.room.power_levels/",
            {"users": {admin.user_id: 150}},
        )

    # … and the bridge takes the power away again and removes the uninvited admin.
    async def restored() -> bool:
        levels = await supplier.state_event(room_id, "m.room.power_levels")
        members = await supplier.request(
            "GET", f"/_matrix/client/v3/rooms/{room_id}/joined_members"
        )
        return levels["users"] == {} and admin.user_id not in members["joined"]

    await wait_for(restored, timeout=30, what="the power levels restored and the admin out")
    assert outsider.user_id not in str(
        await supplier.request("GET", f"/_matrix/client/v3/rooms/{room_id}/members")
    )


async def test_a_stranger_in_a_room_is_removed(
    bridge: BridgeCore, erp: ERP, user_factory: Any
) -> None:
    cast = await make_cast(user_factory, suppliers=2, commission=0)
    await erp.upsert(cast.snapshot("offers"))
    await cast.manager.accept_invites(5)
    rooms = await cast.manager.rooms_by_key()
    supplier_room = rooms[f"supplier:{cast.suppliers[0].id}"]
    leaver = cast.suppliers[0].members[0]
    await leaver.accept_invites(2)

    # The ERP removes the supplier's member: they lose access.
    cast.suppliers[0].members = []
    await erp.upsert(cast.snapshot("offers"))

    async def gone() -> bool:
        members = await cast.manager.request(
            "GET", f"/_matrix/client/v3/rooms/{supplier_room}/joined_members"
        )
        return leaver.user_id not in members["joined"]

    await wait_for(gone, timeout=30, what="the removed member kicked")


async def test_contract_stage_archives_supplier_and_commission_rooms(
    bridge: BridgeCore, erp: ERP, user_factory: Any
) -> None:
    cast = await make_cast(user_factory, suppliers=2, commission=2)
    await erp.upsert(cast.snapshot("commission"))
    expected = expected_keys(cast, "commission")
    supplier = cast.suppliers[0].members[0]
    member = cast.commission[0]
    for person in (cast.manager, supplier, member):
        await person.accept_invites(len(expected[person.user_id]))
    rooms = await cast.manager.rooms_by_key()
    supplier_room = rooms[f"supplier:{cast.suppliers[0].id}"]
    commission_room = rooms["commission"]
    before = await supplier.send_text(supplier_room, "Отгрузим в срок")
    await member.send_text(commission_room, "Предлагаю голосовать завтра")

    await erp.upsert(cast.snapshot("contract"))

    async def archived(user: MatrixUser, room_id: str) -> bool:
        levels = await user.state_event(room_id, "m.room.power_levels")
        name = (await user.state_event(room_id, "m.room.name"))["name"]
        return levels["events_default"] == 150 and name.startswith("[Архив] ")

    for user, room_id in ((supplier, supplier_room), (member, commission_room)):
        await wait_for(lambda u=user, r=room_id: archived(u, r), timeout=30, what="archived")
        with pytest.raises(MatrixRequestError) as refused:
            await user.send_text(room_id, "ещё одно сообщение")
        assert refused.value.http_status == 403

    # History stays readable.
    history = await supplier.request(
        "GET", f"/_matrix/client/v3/rooms/{supplier_room}/messages", query={"dir": "b"}
    )
    assert before in [e["event_id"] for e in history["chunk"]]

    # The rooms moved to the archive sub-space.
    async def moved() -> bool:
        mine = await cast.manager.rooms_by_key()
        if "category:archive" not in mine:
            await cast.manager.accept_invites(0)
            return False
        archive = await cast.manager.room_state(mine["category:archive"])
        children = {
            e["state_key"] for e in archive if e["type"] == "m.space.child" and e["content"]
        }
        suppliers = await cast.manager.room_state(mine["category:suppliers"])
        still = {
            e["state_key"] for e in suppliers if e["type"] == "m.space.child" and e["content"]
        }
        return {supplier_room, commission_room} <= children and supplier_room not in still

    await wait_for(moved, timeout=30, what="the archived rooms in the archive space")
    status, procurement = await erp.get(f"/api/v1/procurements/{cast.procurement_id}")
    assert status == 200
    listed = {room["key"]: room for room in procurement["rooms"]}
    assert listed["commission"]["archived"] is True
    assert listed["org"]["archived"] is False
