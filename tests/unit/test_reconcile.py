"""The reconciliation diff: effects that bring Matrix to the plan, idempotently."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from bridge.domain.ids import ApprovalId, ProcurementId, RoomId, RoomKey, SupplierId, UserId
from bridge.domain.locale import Locale
from bridge.domain.plan import AVATAR_KINDS, ApprovalRoomInput, Plan, RoomSpec, plan_rooms
from bridge.domain.reconcile import (
    CreateRoom,
    Effect,
    Invite,
    Kick,
    ObservedRoom,
    SetAccessRules,
    SetAvatar,
    SetContext,
    SetName,
    SetPowerLevels,
    SetSpaceChild,
    SetSpaceParent,
    SetTopic,
    diff,
    phases,
    room_of,
    rooms_needed,
    takes_access_away,
)
from bridge.domain.snapshot import Commission, Shipment, Snapshot, Specification, Stage, Supplier

BOT = UserId("@procbot:corp.example")
STRANGER = UserId("@stranger:evil.example")
MANAGER = UserId("@konovalov:corp.example")
KIRILLOV = UserId("@kirillov:corp.example")
STAFF = tuple(UserId(f"@staff{i}:corp.example") for i in range(4))
NOTHING: frozenset[str] = frozenset()
TORGPROFI = SupplierId("torgprofi")


def design_snapshot(stage: Stage, **changes: Any) -> Snapshot:
    """The DESIGN §4.1 example at `stage`."""
    snapshot = Snapshot(
        id=ProcurementId("26908"),
        version=7,
        number="26908",
        title="Поставка арматуры А500С",
        object=None,
        organization=None,
        url=None,
        stage=stage,
        manager=MANAGER,
        team=(UserId("@ivanova:corp.example"),),
        logistics=(UserId("@sklad:corp.example"),),
        suppliers=(Supplier(TORGPROFI, "ООО «ТоргПрофи»", (KIRILLOV,)),),
        commission=Commission(None, "Комиссия № 15000.16969", None, (STAFF[2], STAFF[3])),
        specifications=(Specification("K987-02.02-001", TORGPROFI),),
        shipments=(Shipment("SH-1", TORGPROFI, "in_transit"),),
    )
    return dataclasses.replace(snapshot, **changes)


def bare_snapshot(stage: Stage) -> Snapshot:
    return design_snapshot(stage, specifications=(), shipments=())


def _key_of(effect: Effect) -> RoomKey:
    if isinstance(effect, CreateRoom):
        return effect.spec.key
    if isinstance(effect, SetSpaceChild):
        return effect.space_key
    return effect.key


def created(spec: RoomSpec) -> ObservedRoom:
    """What CreateRoom leaves: the room with its name, topic, context and policy, nobody in it."""
    return ObservedRoom(
        key=spec.key,
        room_id=RoomId(f"!{spec.key}"),
        name=spec.name,
        topic=spec.topic,
        context=spec.context,
        members=frozenset({BOT}),
        archived=spec.archived,
        power_levels_ok=True,
        access_ok=True,
    )


def apply(
    effects: Iterable[Effect], observed: Iterable[ObservedRoom]
) -> dict[RoomKey, ObservedRoom]:
    """A tiny homeserver: applies effects as `matrix/` would, checking each is applicable."""
    rooms = {room.key: room for room in observed}
    for effect in effects:
        if isinstance(effect, CreateRoom):
            assert effect.spec.key not in rooms
            rooms[effect.spec.key] = created(effect.spec)
            continue
        key = _key_of(effect)
        room = rooms[key]  # a room is created before anything refers to it
        match effect:
            case SetPowerLevels(archived=archived):
                room = dataclasses.replace(room, archived=archived, power_levels_ok=True)
            case SetAccessRules():
                room = dataclasses.replace(room, access_ok=True)
            case SetName(name=name):
                room = dataclasses.replace(room, name=name)
            case SetTopic(topic=topic):
                room = dataclasses.replace(room, topic=topic)
            case SetContext(context=context):
                room = dataclasses.replace(room, context=context)
            case SetAvatar(url=url):
                room = dataclasses.replace(room, avatar=url)
            case Kick(user=user):
                assert user in room.members
                assert user != BOT
                room = dataclasses.replace(room, members=room.members - {user})
            case Invite(user=user):
                assert user not in room.members
                assert user != BOT
                room = dataclasses.replace(room, members=room.members | {user})
            case SetSpaceParent(parent_key=parent, present=present):
                assert parent in rooms
                parents = room.parents | {parent} if present else room.parents - {parent}
                room = dataclasses.replace(room, parents=parents)
            case SetSpaceChild(child_key=child, present=present, order=order):
                assert child in rooms
                children = dict(room.children)
                if present:
                    children[child] = order
                else:
                    children.pop(child, None)
                room = dataclasses.replace(room, children=children)
        rooms[key] = room
    return rooms


def converge(plan: Plan, observed: Iterable[ObservedRoom]) -> dict[RoomKey, ObservedRoom]:
    observed = list(observed)
    return apply(diff(plan, observed, bot=BOT), observed)


def assert_matches(plan: Plan, rooms: dict[RoomKey, ObservedRoom]) -> None:
    for spec in plan.specs:
        room = rooms[spec.key]
        assert (room.name, room.topic, room.context) == (spec.name, spec.topic, spec.context)
        assert room.members - {BOT} == spec.members
        assert room.archived is spec.archived
        assert room.power_levels_ok
        assert room.access_ok
        assert room.parents == (frozenset() if spec.parent is None else {spec.parent})
        if spec.is_space:
            assert room.children == {
                child: rooms_spec(plan, child).order for child in plan.children[spec.key]
            }


def rooms_spec(plan: Plan, key: str) -> RoomSpec:
    spec = plan.get(key)
    assert spec is not None
    return spec


# --- examples ---------------------------------------------------------------------------------


def test_a_new_procurement_is_created_spaces_first_then_filled() -> None:
    plan = plan_rooms(design_snapshot(Stage.OFFERS), (), NOTHING, Locale.RU)
    effects = diff(plan, [], bot=BOT)

    creates = [e.spec.key for e in effects if isinstance(e, CreateRoom)]
    assert creates == [spec.key for spec in plan.specs]
    assert creates[0] == "space"
    assert effects[: len(creates)] == [CreateRoom(spec) for spec in plan.specs]
    assert Invite(RoomKey("supplier:torgprofi"), KIRILLOV) in effects
    assert (
        SetSpaceParent(
            RoomKey("supplier:torgprofi"), RoomKey("supplier-space:torgprofi"), present=True
        )
        in effects
    )
    assert (
        SetSpaceChild(
            RoomKey("category:suppliers"), RoomKey("supplier:torgprofi"), present=True, order="1"
        )
        in effects
    )
    assert not any(isinstance(e, Kick) for e in effects)
    assert_matches(plan, apply(effects, []))


def test_a_room_that_matches_gets_nothing() -> None:
    plan = plan_rooms(design_snapshot(Stage.OFFERS), (), NOTHING, Locale.RU)
    rooms = converge(plan, [])
    assert diff(plan, rooms.values(), bot=BOT) == []


PICTURES = {kind: f"mxc://hs/{kind}" for kind in AVATAR_KINDS}


def test_rooms_show_the_picture_of_their_kind_and_archives_the_archive_one() -> None:
    offers = plan_rooms(bare_snapshot(Stage.OFFERS), (), NOTHING, Locale.RU)
    rooms = converge(offers, [])  # made before the pictures were uploaded
    effects = diff(offers, rooms.values(), bot=BOT, avatars=PICTURES)
    assert {e.key: e.url for e in effects if isinstance(e, SetAvatar)} == {
        RoomKey("space"): "mxc://hs/space",
        RoomKey("category:suppliers"): "mxc://hs/space",
        RoomKey("supplier-space:torgprofi"): "mxc://hs/space",
        RoomKey("org"): "mxc://hs/org",
        RoomKey("supplier:torgprofi"): "mxc://hs/supplier",
    }
    rooms = apply(effects, rooms.values())
    assert diff(offers, rooms.values(), bot=BOT, avatars=PICTURES) == []

    contract = plan_rooms(bare_snapshot(Stage.CONTRACT), (), frozenset(rooms), Locale.RU)
    closing = diff(contract, rooms.values(), bot=BOT, avatars=PICTURES)
    assert SetAvatar(RoomKey("supplier:torgprofi"), "mxc://hs/archive") in closing
    # A picture not uploaded yet holds nothing up and changes nothing.
    assert not any(
        isinstance(e, SetAvatar) for e in diff(contract, rooms.values(), bot=BOT, avatars={})
    )


def test_closing_a_stage_locks_renames_and_moves_its_rooms_to_the_archive() -> None:
    offers = plan_rooms(bare_snapshot(Stage.OFFERS), (), NOTHING, Locale.RU)
    rooms = converge(offers, [])
    contract = plan_rooms(bare_snapshot(Stage.CONTRACT), (), frozenset(rooms), Locale.RU)
    effects = diff(contract, rooms.values(), bot=BOT)
    supplier = RoomKey("supplier:torgprofi")
    archive = RoomKey("category:archive")

    # Locks come first, the new archive space only after them.
    assert effects[0] == SetPowerLevels(RoomKey("supplier-space:torgprofi"), archived=True)
    created = effects.index(CreateRoom(rooms_spec(contract, archive)))
    assert all(not isinstance(e, SetPowerLevels) for e in effects[created:])
    mine = [e for e in effects if _key_of(e) == supplier]
    assert mine[:2] == [
        SetPowerLevels(supplier, archived=True),
        SetName(supplier, "[Архив] ООО «ТоргПрофи» · закупка 26908"),
    ]
    assert SetSpaceChild(RoomKey("category:suppliers"), supplier, False, None) in effects
    assert SetSpaceChild(archive, supplier, True, "1") in effects
    # Supplier rooms keep pointing at their supplier's space, never into the internal one.
    assert not any(isinstance(e, SetSpaceParent) and e.key == supplier for e in effects)
    # Archived rooms keep their members: history stays readable.
    assert not any(isinstance(e, Kick) for e in effects)
    assert_matches(contract, apply(effects, rooms.values()))


def test_a_removed_supplier_is_kicked_and_its_room_leaves_its_space() -> None:
    offers = plan_rooms(bare_snapshot(Stage.OFFERS), (), NOTHING, Locale.EN)
    rooms = converge(offers, [])
    removed = plan_rooms(
        design_snapshot(Stage.OFFERS, suppliers=(), specifications=(), shipments=()),
        (),
        frozenset(rooms),
        Locale.EN,
    )
    effects = diff(removed, rooms.values(), bot=BOT)
    supplier = RoomKey("supplier:torgprofi")
    space = RoomKey("supplier-space:torgprofi")

    reason = "Not a participant of this chat according to the procurement system"
    assert Kick(supplier, KIRILLOV, reason) in effects
    assert Kick(space, KIRILLOV, reason) in effects
    assert SetSpaceParent(supplier, space, present=False) in effects
    assert SetSpaceParent(supplier, RoomKey("category:archive"), present=True) in effects
    assert SetSpaceChild(space, supplier, False, None) in effects
    assert_matches(removed, apply(effects, rooms.values()))


def test_outsiders_are_kicked_and_drifted_policy_is_restored_but_the_bot_stays() -> None:
    plan = plan_rooms(design_snapshot(Stage.OFFERS), (), NOTHING, Locale.RU)
    rooms = converge(plan, [])
    org = RoomKey("org")
    rooms[org] = dataclasses.replace(
        rooms[org],
        members=rooms[org].members | {STRANGER},
        power_levels_ok=False,
        access_ok=False,
        name="Взломано",
    )

    effects = diff(plan, rooms.values(), bot=BOT)
    assert effects == [
        SetPowerLevels(org, archived=False),
        SetAccessRules(org),
        Kick(org, STRANGER, "Не участник этого чата по данным системы закупок"),
        SetName(org, "Чат организации по закупке 26908"),
    ]


def test_access_is_taken_away_everywhere_before_any_is_given() -> None:
    """A member moved from one supplier to another is out of every room of the first before
    being invited into any room of the second, whatever order the rooms come in."""
    two = design_snapshot(
        Stage.OFFERS,
        suppliers=(
            Supplier(SupplierId("torgprofi"), "ООО «ТоргПрофи»", (KIRILLOV,)),
            Supplier(SupplierId("stalinvest"), "ООО «СтальИнвест»", ()),
        ),
        specifications=(),
        shipments=(),
    )
    rooms = converge(plan_rooms(two, (), NOTHING, Locale.RU), [])
    moved = dataclasses.replace(
        two,
        suppliers=(
            Supplier(SupplierId("torgprofi"), "ООО «ТоргПрофи»", ()),
            Supplier(SupplierId("stalinvest"), "ООО «СтальИнвест»", (KIRILLOV,)),
        ),
    )
    plan = plan_rooms(moved, (), frozenset(rooms), Locale.RU)
    effects = diff(plan, rooms.values(), bot=BOT)
    kicks = [i for i, e in enumerate(effects) if isinstance(e, Kick)]
    invites = [i for i, e in enumerate(effects) if isinstance(e, Invite)]
    assert kicks
    assert invites
    assert max(kicks) < min(invites)
    assert_matches(plan, apply(effects, rooms.values()))


def test_a_manager_who_left_is_invited_again() -> None:
    plan = plan_rooms(design_snapshot(Stage.OFFERS), (), NOTHING, Locale.RU)
    rooms = converge(plan, [])
    org = RoomKey("org")
    rooms[org] = dataclasses.replace(rooms[org], members=rooms[org].members - {MANAGER})
    assert diff(plan, rooms.values(), bot=BOT) == [Invite(org, MANAGER)]


def test_rooms_outside_the_plan_are_left_alone() -> None:
    plan = plan_rooms(design_snapshot(Stage.OFFERS), (), NOTHING, Locale.RU)
    rooms = converge(plan, [])
    stray = ObservedRoom(
        key=RoomKey("something-else"),
        room_id=RoomId("!x"),
        name=None,
        topic=None,
        context=None,
        members=frozenset({STRANGER}),
        archived=False,
        power_levels_ok=False,
        access_ok=False,
    )
    assert diff(plan, [*rooms.values(), stray], bot=BOT) == []


def test_a_reordered_space_child_gets_its_order_back() -> None:
    plan = plan_rooms(design_snapshot(Stage.OFFERS), (), NOTHING, Locale.RU)
    rooms = converge(plan, [])
    space = RoomKey("space")
    rooms[space] = dataclasses.replace(
        rooms[space], children={**rooms[space].children, RoomKey("org"): None}
    )
    assert diff(plan, rooms.values(), bot=BOT) == [
        SetSpaceChild(space, RoomKey("org"), present=True, order="0")
    ]


def test_a_whole_lifecycle_converges_at_every_step() -> None:
    approval = ApprovalRoomInput(ApprovalId("A-1"), "ТКА", STAFF[0], (STAFF[1],), False)
    rooms: dict[RoomKey, ObservedRoom] = {}
    for stage in [*Stage]:
        plan = plan_rooms(design_snapshot(stage), (approval,), frozenset(rooms), Locale.RU)
        rooms = converge(plan, rooms.values())
        assert_matches(plan, rooms)
        assert diff(plan, rooms.values(), bot=BOT) == []
    assert rooms[RoomKey("supplier:torgprofi")].archived
    assert rooms[RoomKey("approval:A-1")].archived


# --- properties ----------------------------------------------------------------------------

SUPPLIER_IDS = ("torgprofi", "metall", "a.b-c/1")
KEY_UNIVERSE = sorted(
    {"org", "commission", "space", "category:archive", "category:suppliers", "approval:A-9"}
    | {f"{kind}:{s}" for kind in ("supplier", "supplier-space") for s in SUPPLIER_IDS}
    | {"specification:S-9", "shipment:SH-9"}
)
staff_lists = st.lists(st.sampled_from(STAFF), unique=True, max_size=3).map(tuple)


def supplier_people(supplier_id: str) -> list[UserId]:
    return [UserId(f"@{supplier_id}.{i}:supplier.example") for i in range(3)]


@st.composite
def snapshots(draw: st.DrawFn) -> Snapshot:
    """Varied valid snapshots: suppliers with their own people, specs and shipments of them."""
    supplier_ids = draw(st.lists(st.sampled_from(SUPPLIER_IDS), unique=True))
    suppliers = tuple(
        Supplier(
            SupplierId(sid),
            sid,
            tuple(sorted(draw(st.sets(st.sampled_from(supplier_people(sid)))))),
        )
        for sid in supplier_ids
    )
    specs: tuple[Specification, ...] = ()
    shipments: tuple[Shipment, ...] = ()
    if supplier_ids:
        owner = st.sampled_from([SupplierId(sid) for sid in supplier_ids])
        specs = tuple(
            Specification(spec_id, draw(owner))
            for spec_id in sorted(draw(st.sets(st.sampled_from(["S-1", "S-2"]))))
        )
        shipments = tuple(
            Shipment(shipment_id, draw(owner), draw(st.sampled_from([None, "received"])))
            for shipment_id in sorted(draw(st.sets(st.sampled_from(["SH-1", "SH-2"]))))
        )
    commission = Commission(None, None, None, draw(staff_lists)) if draw(st.booleans()) else None
    return design_snapshot(
        draw(st.sampled_from(Stage)),
        manager=draw(st.sampled_from(STAFF)),
        team=draw(staff_lists),
        logistics=draw(staff_lists),
        suppliers=suppliers,
        commission=commission,
        specifications=specs,
        shipments=shipments,
    )


approval_inputs = st.lists(
    st.builds(
        ApprovalRoomInput,
        st.sampled_from([ApprovalId("A-1"), ApprovalId("A-2")]),
        st.just("ТКА"),
        st.sampled_from(STAFF),
        staff_lists,
        st.booleans(),
    ),
    max_size=2,
    unique_by=lambda a: a.approval_id,
).map(tuple)
known_keys = st.frozensets(st.sampled_from(KEY_UNIVERSE))
locales = st.sampled_from(Locale)


@st.composite
def observations(draw: st.DrawFn, plan: Plan) -> list[ObservedRoom]:
    """Any state Matrix may be in for a plan: missing rooms, drift, strangers, odd relations."""
    present = [spec for spec in plan.specs if draw(st.booleans())]
    # Relations name only rooms the bridge knows (matrix/reconciler.observe drops the rest).
    keys = [spec.key for spec in present]
    space_keys = [spec.key for spec in present if spec.is_space]
    people = sorted({m for spec in plan.specs for m in spec.members} | {STRANGER, BOT})
    observed = []
    for spec in present:
        observed.append(
            ObservedRoom(
                key=spec.key,
                room_id=RoomId(f"!{spec.key}"),
                name=draw(st.sampled_from([spec.name, "другое", None])),
                topic=draw(st.sampled_from([spec.topic, None])),
                context=draw(st.sampled_from([spec.context, None, {"stage": "request"}])),
                members=draw(st.frozensets(st.sampled_from(people))),
                archived=draw(st.booleans()),
                power_levels_ok=draw(st.booleans()),
                access_ok=draw(st.booleans()),
                parents=draw(st.frozensets(st.sampled_from(space_keys)))
                if space_keys
                else frozenset(),
                children=draw(
                    st.dictionaries(st.sampled_from(keys), st.sampled_from([None, "0", "1", "9"]))
                )
                if spec.is_space and keys
                else {},
            )
        )
    return observed


@given(st.data(), snapshots(), approval_inputs, known_keys, locales)
def test_the_diff_converges_and_is_idempotent(
    data: st.DataObject,
    snapshot: Snapshot,
    approvals: tuple[ApprovalRoomInput, ...],
    known: frozenset[str],
    locale: Locale,
) -> None:
    plan = plan_rooms(snapshot, approvals, known, locale)
    observed = data.draw(observations(plan))
    effects = diff(plan, observed, bot=BOT)

    after = apply(effects, observed)
    assert diff(plan, after.values(), bot=BOT) == []
    assert_matches(plan, after)

    planned = {spec.key for spec in plan.specs}
    assert all(_key_of(e) in planned for e in effects)
    assert not any(isinstance(e, Kick | Invite) and e.user == BOT for e in effects)
    seen = {room.key for room in observed}
    creates = [e for e in effects if isinstance(e, CreateRoom)]
    assert all(e.spec.key not in seen for e in creates)
    assert [e.spec.is_space for e in creates] == sorted(
        (e.spec.is_space for e in creates), reverse=True
    )
    # Everything that takes access away comes before anything that gives it.
    taking = [i for i, e in enumerate(effects) if _takes_away(e)]
    giving = [i for i, e in enumerate(effects) if not _takes_away(e)]
    assert not taking or not giving or max(taking) < min(giving)


@given(st.data(), snapshots(), approval_inputs, known_keys, locales)
def test_side_by_side_in_any_interleaving_the_diff_converges_taking_away_first(
    data: st.DataObject,
    snapshot: Snapshot,
    approvals: tuple[ApprovalRoomInput, ...],
    known: frozenset[str],
    locale: Locale,
) -> None:
    """The phases' lanes applied as `matrix/` applies them, in whatever order they happen to
    interleave: a lane whose next change needs a room not there yet waits for it."""
    plan = plan_rooms(snapshot, approvals, known, locale)
    observed = data.draw(observations(plan))
    effects = diff(plan, observed, bot=BOT)
    taking, giving = phases(effects)

    assert sorted(map(repr, [e for lane in taking.lanes + giving.lanes for e in lane])) == sorted(
        map(repr, effects)
    )
    assert all(_takes_away(e) for lane in taking.lanes for e in lane)
    assert not any(_takes_away(e) for lane in giving.lanes for e in lane)
    for lane in taking.lanes + giving.lanes:
        assert len({room_of(e) for e in lane}) == 1
        assert [effects.index(e) for e in lane] == sorted(effects.index(e) for e in lane)

    rooms = {room.key: room for room in observed}
    for phase in (taking, giving):
        lanes = [list(lane) for lane in phase.lanes]
        while any(lanes):
            ready = [
                lane for lane in lanes if lane and all(k in rooms for k in rooms_needed(lane[0]))
            ]
            assert ready, "every lane waits for a room no lane creates"
            lane = ready[data.draw(st.integers(0, len(ready) - 1))]
            rooms = apply([lane.pop(0)], rooms.values())
    assert diff(plan, rooms.values(), bot=BOT) == []
    assert_matches(plan, rooms)


def test_a_member_moved_between_suppliers_is_taken_out_in_one_phase_and_let_in_in_the_next() -> (
    None
):
    rooms = converge(plan_rooms(bare_snapshot(Stage.OFFERS), (), NOTHING, Locale.RU), [])
    moved = design_snapshot(
        Stage.OFFERS,
        suppliers=(
            Supplier(TORGPROFI, "ООО «ТоргПрофи»", ()),
            Supplier(SupplierId("stalinvest"), "ООО «СтальИнвест»", (KIRILLOV,)),
        ),
        specifications=(),
        shipments=(),
    )
    plan = plan_rooms(moved, (), frozenset(rooms), Locale.RU)
    taking, giving = phases(diff(plan, rooms.values(), bot=BOT))

    reason = "Не участник этого чата по данным системы закупок"
    assert set(taking.lanes) == {
        (Kick(RoomKey("supplier-space:torgprofi"), KIRILLOV, reason),),
        (Kick(RoomKey("supplier:torgprofi"), KIRILLOV, reason),),
    }
    assert all(takes_access_away(e) for lane in taking.lanes for e in lane)
    # The new supplier's room is made once its space is there, with its member in it.
    new_room = RoomKey("supplier:stalinvest")
    (lane,) = [lane for lane in giving.lanes if room_of(lane[0]) == new_room]
    assert isinstance(lane[0], CreateRoom)
    assert rooms_needed(lane[0]) == (RoomKey("supplier-space:stalinvest"),)
    assert Invite(new_room, KIRILLOV) in lane
    listing = SetSpaceChild(RoomKey("category:suppliers"), new_room, present=True, order="1")
    assert rooms_needed(listing) == (RoomKey("category:suppliers"), new_room)
    assert any(listing in lane for lane in giving.lanes)


def _takes_away(effect: Effect) -> bool:
    if isinstance(effect, SetSpaceParent | SetSpaceChild):
        return not effect.present
    return isinstance(effect, SetPowerLevels | SetAccessRules | Kick)
