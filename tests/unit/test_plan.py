"""The room plan: which rooms and spaces a snapshot implies, and who may see what."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.domain.ids import ApprovalId, ProcurementId, RoomKey, SupplierId, UserId
from bridge.domain.locale import Locale
from bridge.domain.plan import (
    COMMISSION_KEY,
    ORG_KEY,
    SPACE_KEY,
    ApprovalRoomInput,
    Category,
    Plan,
    RoomKind,
    RoomSpec,
    category_key,
    parse_room_key,
    plan_rooms,
    room_key,
    supplier_space_key,
)
from bridge.domain.snapshot import (
    LIFECYCLE,
    Commission,
    Shipment,
    Snapshot,
    Specification,
    Stage,
    Supplier,
    parse_snapshot,
)

# The DESIGN §4.1 example's data.
EXAMPLE: dict[str, Any] = {
    "id": "26908",
    "version": 7,
    "number": "26908",
    "title": "Поставка арматуры А500С",
    "object": {"id": "lakhta-2", "name": "Лахта Центр, корпус 2"},
    "organization": "Газпром_Сибирь",
    "url": "https://erp.example/procurements/26908",
    "stage": "offers",
    "manager": "@konovalov:corp.example",
    "team": ["@ivanova:corp.example"],
    "logistics": ["@sklad:corp.example"],
    "suppliers": [
        {"id": "torgprofi", "name": "ООО «ТоргПрофи»", "members": ["@kirillov:corp.example"]}
    ],
    "commission": {
        "id": "15000.16969",
        "name": "Комиссия № 15000.16969 от 30.11.2022",
        "chair": "@petrov:corp.example",
        "members": ["@petrov:corp.example", "@kononov:corp.example"],
    },
    "specifications": [{"id": "K987-02.02-001", "supplier_id": "torgprofi"}],
    "shipments": [{"id": "SH-1", "supplier_id": "torgprofi", "status": "in_transit"}],
}
MANAGER = UserId("@konovalov:corp.example")
TEAM = UserId("@ivanova:corp.example")
SKLAD = UserId("@sklad:corp.example")
PETROV = UserId("@petrov:corp.example")
KONONOV = UserId("@kononov:corp.example")
KIRILLOV = UserId("@kirillov:corp.example")
NOTHING: frozenset[str] = frozenset()


def design_snapshot(stage: Stage = Stage.OFFERS, **changes: Any) -> Snapshot:
    snapshot = dataclasses.replace(parse_snapshot(EXAMPLE), stage=stage)
    return dataclasses.replace(snapshot, **changes)


def bare_snapshot(stage: Stage) -> Snapshot:
    """The DESIGN example without specifications and shipments."""
    return design_snapshot(stage, specifications=(), shipments=())


def keys(specs: tuple[RoomSpec, ...]) -> set[str]:
    return {spec.key for spec in specs}


def open_keys(plan: Plan) -> set[str]:
    return {room.key for room in plan.rooms if not room.archived}


def archived_keys(plan: Plan) -> set[str]:
    return {room.key for room in plan.rooms if room.archived}


def spec_of(plan: Plan, key: str) -> RoomSpec:
    spec = plan.get(key)
    assert spec is not None, key
    return spec


def lifecycle(
    snapshots: list[Snapshot], approvals: tuple[ApprovalRoomInput, ...] = ()
) -> list[Plan]:
    """Plan each snapshot in turn, as the bridge would after creating what the last planned."""
    known: frozenset[str] = frozenset()
    plans = []
    for snapshot in snapshots:
        plan = plan_rooms(snapshot, approvals, known, Locale.RU)
        known |= keys(plan.specs)
        plans.append(plan)
    return plans


# --- the DESIGN example, stage by stage ----------------------------------------------------


def test_the_example_opens_rooms_stage_by_stage_and_archives_closed_stages() -> None:
    plans = dict(
        zip(Stage, lifecycle([bare_snapshot(stage) for stage in LIFECYCLE]), strict=False)
    )
    supplier = "supplier:torgprofi"

    assert open_keys(plans[Stage.REQUEST]) == {"org"}
    assert archived_keys(plans[Stage.REQUEST]) == set()
    assert open_keys(plans[Stage.OFFERS]) == {"org", supplier}
    assert open_keys(plans[Stage.COMMISSION]) == {"org", supplier, "commission"}
    for stage in (Stage.CONTRACT, Stage.DELIVERY, Stage.WAREHOUSE):
        assert open_keys(plans[stage]) == {"org"}
        assert archived_keys(plans[stage]) == {supplier, "commission"}
    assert open_keys(plans[Stage.COMPLETED]) == set()
    assert archived_keys(plans[Stage.COMPLETED]) == {"org", supplier, "commission"}


def test_the_example_spaces_follow_their_rooms() -> None:
    plans = dict(
        zip(Stage, lifecycle([bare_snapshot(stage) for stage in LIFECYCLE]), strict=False)
    )

    assert keys(plans[Stage.REQUEST].spaces) == {"space"}
    assert keys(plans[Stage.OFFERS].spaces) == {
        "space",
        "category:suppliers",
        "supplier-space:torgprofi",
    }
    assert keys(plans[Stage.COMMISSION].spaces) == {
        "space",
        "category:suppliers",
        "category:commission",
        "supplier-space:torgprofi",
    }
    contract = plans[Stage.CONTRACT]
    assert keys(contract.spaces) == {
        "space",
        "category:suppliers",
        "category:commission",
        "category:archive",
        "supplier-space:torgprofi",
    }
    # The losing supplier's space holds only archives now, so it is one too.
    assert spec_of(contract, "supplier-space:torgprofi").archived
    assert contract.children[RoomKey("category:archive")] == ("supplier:torgprofi", "commission")
    assert contract.children[RoomKey("category:suppliers")] == ()
    assert contract.children[RoomKey("space")] == (
        "org",
        "category:suppliers",
        "category:commission",
        "category:archive",
    )


def test_specifications_and_shipments_are_open_while_listed_until_the_end() -> None:
    plans = lifecycle([design_snapshot(stage) for stage in LIFECYCLE])
    spec, shipment = "specification:K987-02.02-001", "shipment:SH-1"
    for stage, plan in zip(LIFECYCLE, plans, strict=True):
        if stage is Stage.COMPLETED:
            assert {spec, shipment} <= archived_keys(plan)
        else:
            assert {spec, shipment} <= open_keys(plan)
            assert not spec_of(plan, "supplier-space:torgprofi").archived


def test_a_received_shipment_is_archived_and_one_never_opened_is_not_created() -> None:
    received = (Shipment("SH-1", SupplierId("torgprofi"), "received"),)
    first, second = lifecycle(
        [design_snapshot(Stage.DELIVERY), design_snapshot(Stage.DELIVERY, shipments=received)]
    )
    assert "shipment:SH-1" in open_keys(first)
    assert "shipment:SH-1" in archived_keys(second)

    never = plan_rooms(design_snapshot(Stage.DELIVERY, shipments=received), (), NOTHING, Locale.RU)
    assert never.get("shipment:SH-1") is None


def test_a_procurement_cancelled_during_offers_archives_what_exists_and_opens_nothing() -> None:
    offers, cancelled = lifecycle([bare_snapshot(Stage.OFFERS), bare_snapshot(Stage.CANCELLED)])
    assert open_keys(cancelled) == set()
    assert archived_keys(cancelled) == {"org", "supplier:torgprofi"}
    assert cancelled.get("commission") is None
    assert keys(cancelled.spaces) == keys(offers.spaces) | {"category:archive"}


def test_a_procurement_first_seen_closed_plans_nothing() -> None:
    plan = plan_rooms(design_snapshot(Stage.COMPLETED), (), NOTHING, Locale.RU)
    assert plan.specs == ()
    assert plan.children == {}


def test_a_stage_moved_back_reopens_its_rooms() -> None:
    *_, back = lifecycle(
        [
            bare_snapshot(Stage.COMMISSION),
            bare_snapshot(Stage.CONTRACT),
            bare_snapshot(Stage.COMMISSION),
        ]
    )
    assert open_keys(back) == {"org", "supplier:torgprofi", "commission"}


# --- names, topics, context ------------------------------------------------------------------


def test_names_in_russian_follow_the_seed() -> None:
    approval = ApprovalRoomInput(ApprovalId("A-17"), "ТКА № 234/01-02", MANAGER, (TEAM,), False)
    plan = plan_rooms(design_snapshot(Stage.COMMISSION), (approval,), NOTHING, Locale.RU)
    names: dict[str, str] = {spec.key: spec.name for spec in plan.specs}

    assert names == {
        "space": "Закупка 26908 · Поставка арматуры А500С",
        "category:suppliers": "Чаты с поставщиками",
        "category:commission": "Чаты комиссии закупки",
        "category:approvals": "Чаты согласования",
        "category:specifications": "Чаты спецификации",
        "category:shipments": "Чаты отгрузочных ведомостей",
        "supplier-space:torgprofi": "Закупка 26908 · ООО «ТоргПрофи»",
        "org": "Чат организации по закупке 26908",
        "supplier:torgprofi": "ООО «ТоргПрофи» · закупка 26908",
        "commission": "Комиссия № 15000.16969 от 30.11.2022",
        "approval:A-17": "Согласование: ТКА № 234/01-02",
        "specification:K987-02.02-001": "Спецификация № K987-02.02-001",
        "shipment:SH-1": "Отгрузочная ведомость SH-1",
    }
    assert spec_of(plan, "supplier:torgprofi").topic == (
        "Переговоры менеджера с поставщиком ООО «ТоргПрофи». "
        "Закупка 26908 «Поставка арматуры А500С»; объект: Лахта Центр, корпус 2"
    )


def test_names_in_english() -> None:
    approval = ApprovalRoomInput(ApprovalId("A-17"), "TCA 234/01-02", MANAGER, (TEAM,), False)
    plan = plan_rooms(design_snapshot(Stage.COMMISSION), (approval,), NOTHING, Locale.EN)
    names: dict[str, str] = {spec.key: spec.name for spec in plan.specs}

    assert names["space"] == "Procurement 26908 · Поставка арматуры А500С"
    assert names["category:suppliers"] == "Supplier chats"
    assert names["category:shipments"] == "Shipping list chats"
    assert names["org"] == "Procurement 26908 organisation chat"
    assert names["supplier:torgprofi"] == "ООО «ТоргПрофи» · procurement 26908"
    assert names["approval:A-17"] == "Approval: TCA 234/01-02"
    assert names["specification:K987-02.02-001"] == "Specification No. K987-02.02-001"
    assert names["shipment:SH-1"] == "Shipping list SH-1"
    assert spec_of(plan, "org").topic == (
        "Internal chat of the manager and the procurement team. "
        "Procurement 26908 “Поставка арматуры А500С”; site: Лахта Центр, корпус 2"
    )


def test_archives_are_named_so_in_both_languages() -> None:
    known = frozenset({"org", "supplier:torgprofi"})
    ru = plan_rooms(design_snapshot(Stage.COMPLETED), (), known, Locale.RU)
    en = plan_rooms(design_snapshot(Stage.COMPLETED), (), known, Locale.EN)
    assert spec_of(ru, "org").name == "[Архив] Чат организации по закупке 26908"
    assert (
        spec_of(en, "supplier:torgprofi").name == "[Archive] ООО «ТоргПрофи» · procurement 26908"
    )
    assert spec_of(ru, "category:archive").name == "Архив"


def test_without_number_object_or_commission_name_the_fallbacks_read_well() -> None:
    snapshot = design_snapshot(
        Stage.COMMISSION,
        number=None,
        object=None,
        commission=Commission(None, None, None, (PETROV,)),
    )
    plan = plan_rooms(snapshot, (), NOTHING, Locale.RU)
    assert spec_of(plan, "commission").name == "Комиссия закупки 26908"
    assert spec_of(plan, "org").topic == (
        "Внутренний чат менеджера и команды закупки. Закупка 26908 «Поставка арматуры А500С»"
    )


def test_the_context_says_what_a_room_is_about() -> None:
    plan = plan_rooms(design_snapshot(Stage.OFFERS), (), NOTHING, Locale.RU)
    assert spec_of(plan, "specification:K987-02.02-001").context == {
        "procurement_id": "26908",
        "number": "26908",
        "title": "Поставка арматуры А500С",
        "stage": "offers",
        "kind": "specification",
        "key": "specification:K987-02.02-001",
        "archived": False,
        "supplier_id": "torgprofi",
        "object": {"id": "lakhta-2", "name": "Лахта Центр, корпус 2"},
        "url": "https://erp.example/procurements/26908",
    }
    assert spec_of(plan, "category:suppliers").context["kind"] == "space"
    assert spec_of(plan, "org").context["supplier_id"] is None


# --- membership and confidentiality ---------------------------------------------------------


def test_the_example_members_of_each_room() -> None:
    approval = ApprovalRoomInput(ApprovalId("A-17"), "ТКА", TEAM, (PETROV, MANAGER), False)
    plan = plan_rooms(design_snapshot(Stage.COMMISSION), (approval,), NOTHING, Locale.RU)
    members: dict[str, frozenset[UserId]] = {spec.key: spec.members for spec in plan.specs}
    internal = {MANAGER, TEAM, SKLAD, PETROV, KONONOV}

    assert members["org"] == {MANAGER, TEAM}
    assert members["supplier:torgprofi"] == {MANAGER, KIRILLOV}
    assert members["commission"] == {MANAGER, PETROV, KONONOV}
    assert members["approval:A-17"] == {MANAGER, TEAM, PETROV}
    assert members["specification:K987-02.02-001"] == {MANAGER, TEAM, KIRILLOV}
    assert members["shipment:SH-1"] == {MANAGER, SKLAD, KIRILLOV}
    assert members["supplier-space:torgprofi"] == {KIRILLOV}
    for space in plan.spaces:
        if space.supplier_id is None:
            assert space.members == internal


def test_supplier_visible_rooms_point_only_to_their_supplier_space() -> None:
    plan = plan_rooms(design_snapshot(Stage.OFFERS), (), NOTHING, Locale.RU)
    for key, category in [
        ("supplier:torgprofi", "category:suppliers"),
        ("specification:K987-02.02-001", "category:specifications"),
        ("shipment:SH-1", "category:shipments"),
    ]:
        room = spec_of(plan, key)
        assert room.parent == "supplier-space:torgprofi"
        assert room.listed_in == {category, "supplier-space:torgprofi"}
        assert room.supplier_id == "torgprofi"
    assert spec_of(plan, "org").parent == "space"
    assert spec_of(plan, "supplier-space:torgprofi").parent is None
    assert spec_of(plan, "supplier-space:torgprofi").listed_in == frozenset()


def test_a_removed_supplier_loses_its_rooms_and_space() -> None:
    plan = plan_rooms(
        design_snapshot(Stage.OFFERS, suppliers=(), specifications=(), shipments=()),
        (),
        frozenset(
            {
                "supplier:torgprofi",
                "supplier-space:torgprofi",
                "specification:K987-02.02-001",
                "shipment:SH-1",
            }
        ),
        Locale.RU,
    )
    for key in ["supplier:torgprofi", "specification:K987-02.02-001", "shipment:SH-1"]:
        room = spec_of(plan, key)
        assert room.archived
        assert room.members == {MANAGER}
        assert room.supplier_id is None
        assert room.parent == "category:archive"
        assert room.listed_in == {"category:archive"}
    space = spec_of(plan, "supplier-space:torgprofi")
    assert (space.archived, space.members, space.supplier_id) == (True, frozenset(), None)
    assert plan.children[RoomKey("supplier-space:torgprofi")] == ()
    assert space.name == "[Архив] Закупка 26908 · torgprofi"
    assert spec_of(plan, "supplier:torgprofi").name == "[Архив] torgprofi · закупка 26908"


def test_removed_team_members_lose_access_to_internal_rooms_and_spaces() -> None:
    plan = plan_rooms(design_snapshot(Stage.OFFERS, team=()), (), NOTHING, Locale.RU)
    assert all(TEAM not in spec.members for spec in plan.specs)


def test_an_approver_who_is_a_supplier_member_is_kept_out_of_internal_rooms() -> None:
    approval = ApprovalRoomInput(ApprovalId("A-1"), "ТКА", MANAGER, (KIRILLOV, PETROV), False)
    plan = plan_rooms(design_snapshot(Stage.OFFERS), (approval,), NOTHING, Locale.RU)
    assert spec_of(plan, "approval:A-1").members == {MANAGER, PETROV}
    assert KIRILLOV not in spec_of(plan, "space").members


def test_approvals_open_until_closed_and_vanished_ones_keep_the_manager() -> None:
    open_approval = ApprovalRoomInput(ApprovalId("A-1"), "ТКА", TEAM, (PETROV,), False)
    closed = dataclasses.replace(open_approval, closed=True)
    snapshot = design_snapshot(Stage.CONTRACT)

    assert "approval:A-1" in open_keys(plan_rooms(snapshot, (open_approval,), NOTHING, Locale.RU))
    assert plan_rooms(snapshot, (closed,), NOTHING, Locale.RU).get("approval:A-1") is None
    known = frozenset({"approval:A-1"})
    archived = spec_of(plan_rooms(snapshot, (closed,), known, Locale.RU), "approval:A-1")
    assert (archived.archived, archived.members) == (True, frozenset({MANAGER, TEAM, PETROV}))
    gone = spec_of(plan_rooms(snapshot, (), known, Locale.RU), "approval:A-1")
    assert (gone.archived, gone.members, gone.name) == (
        True,
        frozenset({MANAGER}),
        "[Архив] Согласование: A-1",
    )
    completed = design_snapshot(Stage.COMPLETED)
    assert spec_of(
        plan_rooms(completed, (open_approval,), known, Locale.RU), "approval:A-1"
    ).archived


def test_a_known_commission_room_without_a_commission_keeps_the_manager() -> None:
    plan = plan_rooms(
        design_snapshot(Stage.COMMISSION, commission=None),
        (),
        frozenset({"commission"}),
        Locale.RU,
    )
    room = spec_of(plan, "commission")
    assert (room.archived, room.members, room.name) == (
        True,
        frozenset({MANAGER}),
        "[Архив] Комиссия закупки 26908",
    )


def test_a_known_category_that_is_empty_stays_and_unknown_keys_are_ignored() -> None:
    known = frozenset({"category:approvals", "category:nonsense", "supplier:", "chat:x", "space"})
    plan = plan_rooms(bare_snapshot(Stage.REQUEST), (), known, Locale.RU)
    assert keys(plan.specs) == {"space", "category:approvals", "org"}
    assert plan.children[RoomKey("category:approvals")] == ()


# --- keys --------------------------------------------------------------------------------------


def test_room_keys() -> None:
    assert room_key(RoomKind.ORG) == ORG_KEY == "org"
    assert room_key(RoomKind.COMMISSION) == COMMISSION_KEY == "commission"
    assert room_key(RoomKind.SUPPLIER, "torgprofi") == "supplier:torgprofi"
    assert room_key(RoomKind.APPROVAL, "A-17") == "approval:A-17"
    assert room_key(RoomKind.SPECIFICATION, "174/741") == "specification:174/741"
    assert room_key(RoomKind.SHIPMENT, "SH-1") == "shipment:SH-1"
    assert category_key(Category.ARCHIVE) == "category:archive"
    assert supplier_space_key(SupplierId("torgprofi")) == "supplier-space:torgprofi"
    with pytest.raises(ValueError, match="needs a subject"):
        room_key(RoomKind.SUPPLIER)


@pytest.mark.parametrize(
    ("key", "parsed"),
    [
        ("org", (RoomKind.ORG, None)),
        ("commission", (RoomKind.COMMISSION, None)),
        ("supplier:torgprofi", (RoomKind.SUPPLIER, "torgprofi")),
        ("approval:A-17", (RoomKind.APPROVAL, "A-17")),
        ("specification:174/741", (RoomKind.SPECIFICATION, "174/741")),
        ("shipment:SH-1", (RoomKind.SHIPMENT, "SH-1")),
        ("org:x", None),
        ("commission:", None),
        ("supplier", None),
        ("supplier:", None),
        ("space", None),
        ("category:archive", None),
        ("supplier-space:torgprofi", None),
        ("", None),
    ],
)
def test_parse_room_key(key: str, parsed: object) -> None:
    assert parse_room_key(key) == parsed


# --- properties ----------------------------------------------------------------------------

STAFF = tuple(UserId(f"@staff{i}:corp.example") for i in range(6))
SUPPLIER_IDS = ("torgprofi", "metall", "beton", "a.b-c/1")
SPEC_IDS = ("K987-02.02-001", "S-2", "S-3")
SHIPMENT_IDS = ("SH-1", "SH-2", "SH-3")
APPROVAL_IDS = ("A-1", "A-2", "A-3")
KEY_UNIVERSE = sorted(
    {
        "org",
        "commission",
        "space",
        "nonsense",
        "supplier:",
        "category:nonsense",
        *(f"category:{c.value}" for c in Category),
        *(f"supplier:{s}" for s in SUPPLIER_IDS),
        *(f"supplier-space:{s}" for s in SUPPLIER_IDS),
        *(f"specification:{s}" for s in SPEC_IDS),
        *(f"shipment:{s}" for s in SHIPMENT_IDS),
        *(f"approval:{a}" for a in APPROVAL_IDS),
    }
)


def supplier_people(supplier_id: str) -> list[UserId]:
    return [UserId(f"@{supplier_id}.{i}:supplier.example") for i in range(3)]


staff_lists = st.lists(st.sampled_from(STAFF), unique=True, max_size=4).map(tuple)


@st.composite
def snapshots(draw: st.DrawFn) -> Snapshot:
    supplier_ids = draw(st.lists(st.sampled_from(SUPPLIER_IDS), unique=True, max_size=4))
    suppliers = tuple(
        Supplier(
            SupplierId(sid),
            f"ООО «{sid}»",
            tuple(draw(st.lists(st.sampled_from(supplier_people(sid)), unique=True))),
        )
        for sid in supplier_ids
    )
    commission = None
    if draw(st.booleans()):
        members = draw(staff_lists)
        with_chair = draw(st.booleans())
        chair = draw(st.sampled_from(members)) if members and with_chair else None
        commission = Commission(draw(st.none() | st.just("15000.16969")), None, chair, members)
    specs: tuple[Specification, ...] = ()
    shipments: tuple[Shipment, ...] = ()
    if supplier_ids:
        specs = tuple(
            Specification(spec_id, SupplierId(draw(st.sampled_from(supplier_ids))))
            for spec_id in draw(st.lists(st.sampled_from(SPEC_IDS), unique=True))
        )
        shipments = tuple(
            Shipment(
                shipment_id,
                SupplierId(draw(st.sampled_from(supplier_ids))),
                draw(st.sampled_from([None, "in_transit", "received"])),
            )
            for shipment_id in draw(st.lists(st.sampled_from(SHIPMENT_IDS), unique=True))
        )
    return Snapshot(
        id=ProcurementId("26908"),
        version=draw(st.integers(0, 100)),
        number=draw(st.none() | st.just("26908")),
        title="Поставка арматуры А500С",
        object=None,
        organization=None,
        url=None,
        stage=draw(st.sampled_from(Stage)),
        manager=draw(st.sampled_from(STAFF)),
        team=draw(staff_lists),
        logistics=draw(staff_lists),
        suppliers=suppliers,
        commission=commission,
        specifications=specs,
        shipments=shipments,
    )


approval_inputs = st.lists(st.sampled_from(APPROVAL_IDS), unique=True).flatmap(
    lambda approval_ids: st.tuples(
        *(
            st.builds(
                ApprovalRoomInput,
                st.just(ApprovalId(approval_id)),
                st.just(f"Документ {approval_id}"),
                st.sampled_from(STAFF),
                staff_lists,
                st.booleans(),
            )
            for approval_id in approval_ids
        )
    )
)
known_keys = st.frozensets(st.sampled_from(KEY_UNIVERSE))
locales = st.sampled_from(Locale)


def as_json(snapshot: Snapshot) -> dict[str, Any]:
    document: dict[str, Any] = {
        "id": snapshot.id,
        "version": snapshot.version,
        "number": snapshot.number,
        "title": snapshot.title,
        "stage": snapshot.stage.value,
        "manager": snapshot.manager,
        "team": list(snapshot.team),
        "logistics": list(snapshot.logistics),
        "suppliers": [
            {"id": s.id, "name": s.name, "members": list(s.members)} for s in snapshot.suppliers
        ],
        "specifications": [
            {"id": s.id, "supplier_id": s.supplier_id} for s in snapshot.specifications
        ],
        "shipments": [
            {"id": s.id, "supplier_id": s.supplier_id, "status": s.status}
            for s in snapshot.shipments
        ],
    }
    if snapshot.commission is not None:
        c = snapshot.commission
        document["commission"] = {
            "id": c.id,
            "name": c.name,
            "chair": c.chair,
            "members": list(c.members),
        }
    return document


def expected_rooms(
    snapshot: Snapshot, approvals: tuple[ApprovalRoomInput, ...]
) -> dict[str, tuple[bool, set[UserId]]]:
    """DESIGN §3's table, written out independently: key → (open, members)."""
    s = snapshot
    live = s.stage not in (Stage.COMPLETED, Stage.CANCELLED)
    suppliers = {supplier.id: supplier for supplier in s.suppliers}
    rooms: dict[str, tuple[bool, set[UserId]]] = {"org": (live, {s.manager, *s.team})}
    for supplier in s.suppliers:
        rooms[f"supplier:{supplier.id}"] = (
            s.stage in (Stage.OFFERS, Stage.COMMISSION),
            {s.manager, *supplier.members},
        )
    if s.commission is not None:
        rooms["commission"] = (s.stage is Stage.COMMISSION, {s.manager, *s.commission.members})
    for a in approvals:
        rooms[f"approval:{a.approval_id}"] = (
            live and not a.closed,
            {s.manager, a.initiator, *a.approvers},
        )
    for spec in s.specifications:
        rooms[f"specification:{spec.id}"] = (
            live,
            {s.manager, *s.team, *suppliers[spec.supplier_id].members},
        )
    for shipment in s.shipments:
        rooms[f"shipment:{shipment.id}"] = (
            live and shipment.status != "received",
            {s.manager, *s.logistics, *suppliers[shipment.supplier_id].members},
        )
    return rooms


def supplier_members(snapshot: Snapshot) -> set[UserId]:
    return {m for s in snapshot.suppliers for m in s.members}


@given(snapshots())
def test_generated_snapshots_are_valid_contract_input(snapshot: Snapshot) -> None:
    assert parse_snapshot(as_json(snapshot)) == snapshot


@given(snapshots(), approval_inputs)
def test_each_person_gets_exactly_the_rooms_of_the_table(
    snapshot: Snapshot, approvals: tuple[ApprovalRoomInput, ...]
) -> None:
    plan = plan_rooms(snapshot, approvals, NOTHING, Locale.RU)
    expected = {
        key: members
        for key, (is_open, members) in expected_rooms(snapshot, approvals).items()
        if is_open
    }

    assert {room.key: set(room.members) for room in plan.rooms} == expected
    assert not any(room.archived for room in plan.rooms)
    people = set(STAFF) | supplier_members(snapshot)
    for person in people:
        mine = {room.key for room in plan.rooms if person in room.members}
        assert mine == {key for key, members in expected.items() if person in members}


@given(snapshots(), approval_inputs, known_keys, locales)
def test_known_rooms_are_never_lost_and_closed_ones_are_archived(
    snapshot: Snapshot,
    approvals: tuple[ApprovalRoomInput, ...],
    known: frozenset[str],
    locale: Locale,
) -> None:
    plan = plan_rooms(snapshot, approvals, known, locale)
    expected = expected_rooms(snapshot, approvals)
    known_rooms = {key for key in known if parse_room_key(key) is not None}
    known_spaces = {key for key in known if key.startswith(("supplier-space:", "space"))} | (
        {f"category:{c.value}" for c in Category} & known
    )

    assert keys(plan.rooms) == {k for k, (is_open, _) in expected.items() if is_open} | known_rooms
    assert known_spaces <= keys(plan.spaces)
    for room in plan.rooms:
        if room.key in expected:
            is_open, members = expected[room.key]
            assert room.archived is not is_open
            assert room.members == members
        else:  # its subject left the snapshot
            assert room.archived
            assert room.members == {snapshot.manager}
            assert room.supplier_id is None


@given(snapshots(), approval_inputs, known_keys, locales)
def test_suppliers_never_learn_about_each_other(
    snapshot: Snapshot,
    approvals: tuple[ApprovalRoomInput, ...],
    known: frozenset[str],
    locale: Locale,
) -> None:
    plan = plan_rooms(snapshot, approvals, known, locale)
    everyone_outside = supplier_members(snapshot)
    for supplier in snapshot.suppliers:
        others = everyone_outside - set(supplier.members)
        own_space = supplier_space_key(supplier.id)
        for member in supplier.members:
            for spec in plan.specs:
                if member not in spec.members:
                    continue
                assert spec.supplier_id == supplier.id
                assert not spec.members & others
                assert spec.parent in (None, own_space)
                assert supplier.id in spec.key or spec.key.startswith(
                    ("specification:", "shipment:")
                )
                for child_key in plan.children.get(spec.key, ()):
                    child = spec_of(plan, child_key)
                    assert child.supplier_id == supplier.id
                    assert not child.members & others
    for spec in plan.specs:
        if spec.supplier_id is None:
            assert not spec.members & everyone_outside, spec.key
        else:
            # A supplier-visible room carries m.space.parent only to its own supplier's space.
            assert spec.parent in (None, supplier_space_key(spec.supplier_id))
            supplier = next(s for s in snapshot.suppliers if s.id == spec.supplier_id)
            assert not spec.members & (everyone_outside - set(supplier.members))


@given(snapshots(), approval_inputs, known_keys, locales)
def test_the_plan_is_well_formed(
    snapshot: Snapshot,
    approvals: tuple[ApprovalRoomInput, ...],
    known: frozenset[str],
    locale: Locale,
) -> None:
    plan = plan_rooms(snapshot, approvals, known, locale)
    space_keys = [space.key for space in plan.spaces]
    all_keys = [spec.key for spec in plan.specs]
    archive = category_key(Category.ARCHIVE)
    prefix = "[Архив] " if locale is Locale.RU else "[Archive] "

    assert len(set(all_keys)) == len(all_keys)
    assert all(space.is_space and space.kind is None for space in plan.spaces)
    assert all(not room.is_space and room.kind is not None for room in plan.rooms)
    assert set(plan.children) == set(space_keys)
    for spec in plan.specs:
        assert spec.listed_in <= set(space_keys)
        if spec.parent is not None:
            assert spec.parent in spec.listed_in
            # Parents come first, so they exist before a child needs them.
            assert space_keys.index(spec.parent) < all_keys.index(spec.key)
        assert spec.name.startswith(prefix) is spec.archived
        assert spec.context["key"] == spec.key
        assert spec.context["archived"] is spec.archived
        assert spec.context["stage"] == snapshot.stage.value
    for space in space_keys:
        listed = [spec.key for spec in plan.specs if space in spec.listed_in]
        assert set(plan.children[space]) == set(listed)
        assert len(plan.children[space]) == len(listed)
    for room in plan.rooms:
        internal = [s for s in room.listed_in if not s.startswith("supplier-space:")]
        assert len(internal) == 1
        assert (internal[0] == archive) is room.archived
        assert len(room.listed_in) == (1 if room.supplier_id is None else 2)
    for category in plan.spaces:
        if category.key.startswith("category:"):
            assert plan.children[category.key] or category.key in known
            assert category.parent == SPACE_KEY
    if plan.rooms:
        assert plan.spaces[0].key == SPACE_KEY
    assert SPACE_KEY not in {spec.key for spec in plan.rooms}


@given(snapshots(), approval_inputs, known_keys, locales, st.randoms())
def test_the_plan_is_deterministic_whatever_the_order_of_the_input(
    snapshot: Snapshot,
    approvals: tuple[ApprovalRoomInput, ...],
    known: frozenset[str],
    locale: Locale,
    random: Any,
) -> None:
    plan = plan_rooms(snapshot, approvals, known, locale)
    assert plan == plan_rooms(snapshot, approvals, known, locale)

    def shuffled(items: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(random.sample(items, len(items)))

    reordered = dataclasses.replace(
        snapshot,
        team=shuffled(snapshot.team),
        suppliers=shuffled(snapshot.suppliers),
        specifications=shuffled(snapshot.specifications),
        shipments=shuffled(snapshot.shipments),
    )
    assert plan_rooms(reordered, shuffled(approvals), frozenset(sorted(known)), locale) == plan


@given(st.lists(snapshots(), min_size=1, max_size=5), approval_inputs)
def test_along_any_history_existing_rooms_stay_planned(
    history: list[Snapshot], approvals: tuple[ApprovalRoomInput, ...]
) -> None:
    known: frozenset[str] = frozenset()
    for snapshot in history:
        plan = plan_rooms(snapshot, approvals, known, Locale.RU)
        assert known <= keys(plan.specs)
        known |= keys(plan.specs)


@given(snapshots(), approval_inputs)
def test_no_supplier_member_is_in_an_internal_space(
    snapshot: Snapshot, approvals: tuple[ApprovalRoomInput, ...]
) -> None:
    all_keys = frozenset(KEY_UNIVERSE)
    plan = plan_rooms(snapshot, approvals, all_keys, Locale.RU)
    internal_people = snapshot.internal_people | {
        user for a in approvals for user in (a.initiator, *a.approvers)
    }
    for space in plan.spaces:
        if not space.key.startswith("supplier-space:"):
            assert space.supplier_id is None
            assert space.members == internal_people
            assert not space.members & supplier_members(snapshot)
