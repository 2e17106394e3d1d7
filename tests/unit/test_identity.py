"""A room's party for good: over any history of snapshots (ids dropped and reused, suppliers
renamed, people moved between suppliers), no room is planned for two suppliers' people."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.domain.identity import retired_key, rooms_to_retire, shown_subject
from bridge.domain.ids import ProcurementId, RoomKey, SupplierId, UserId
from bridge.domain.locale import Locale
from bridge.domain.plan import plan_rooms
from bridge.domain.snapshot import Shipment, Snapshot, Specification, Stage, Supplier

MANAGER = UserId("@manager:corp.example")
TEAM = (UserId("@team:corp.example"),)
SUPPLIER_IDS = ("alfa", "beta", "gamma")
PEOPLE = tuple(UserId(f"@person{i}:supplier.example") for i in range(6))
STAGES = (Stage.REQUEST, Stage.OFFERS, Stage.COMMISSION, Stage.CONTRACT, Stage.COMPLETED)


def snapshot(
    version: int,
    stage: Stage,
    suppliers: tuple[Supplier, ...],
    specifications: tuple[Specification, ...] = (),
    shipments: tuple[Shipment, ...] = (),
) -> Snapshot:
    return Snapshot(
        id=ProcurementId("26908"),
        version=version,
        number="26908",
        title="Поставка арматуры",
        object=None,
        organization=None,
        url=None,
        stage=stage,
        manager=MANAGER,
        team=TEAM,
        logistics=(),
        suppliers=suppliers,
        specifications=specifications,
        shipments=shipments,
    )


@st.composite
def histories(draw: st.DrawFn) -> list[Snapshot]:
    """Snapshots in order: suppliers come and go under the same ids (renamed), people move
    between them, specifications and shipments are dropped and listed again for anyone."""
    history = []
    for version in range(draw(st.integers(1, 7))):
        present = draw(st.lists(st.sampled_from(SUPPLIER_IDS), unique=True))
        owner_of = {
            person: draw(st.sampled_from([None, *present])) if present else None
            for person in PEOPLE
        }
        suppliers = tuple(
            Supplier(
                SupplierId(sid),
                draw(st.sampled_from([f"ООО «{sid}»", f"АО «{sid}-новое»"])),
                tuple(p for p in PEOPLE if owner_of[p] == sid),
            )
            for sid in present
        )
        specs: tuple[Specification, ...] = ()
        shipments: tuple[Shipment, ...] = ()
        if present:
            supplier = st.sampled_from([SupplierId(s) for s in present])
            specs = tuple(
                Specification(spec_id, draw(supplier))
                for spec_id in draw(st.lists(st.sampled_from(["S-1", "S-2"]), unique=True))
            )
            shipments = tuple(
                Shipment(shipment_id, draw(supplier), draw(st.sampled_from([None, "received"])))
                for shipment_id in draw(st.lists(st.sampled_from(["SH-1"]), unique=True))
            )
        history.append(
            snapshot(version, draw(st.sampled_from(STAGES)), suppliers, specs, shipments)
        )
    return history


@dataclass
class Store:
    """What the reconciler keeps of each room: its key (which may change when it is retired),
    the party it was bound to at creation, and every party whose people it was planned for."""

    rooms: dict[str, int] = field(default_factory=dict)  # key → room
    party: dict[int, SupplierId | None] = field(default_factory=dict)
    planned_for: dict[int, set[tuple[str, int]]] = field(default_factory=dict)


@settings(max_examples=300, deadline=None)
@given(histories())
def test_no_room_is_ever_planned_for_two_suppliers_people(history: list[Snapshot]) -> None:
    store = Store()
    # A supplier id that leaves the snapshot and comes back may be another company: each
    # stretch of presence is a party of its own.
    epoch: dict[str, int] = {}
    previous: set[str] = set()
    for current in history:
        present = {s.id for s in current.suppliers}
        for sid in present - previous:
            epoch[sid] = epoch.get(sid, 0) + 1
        previous = present
        party_of = {person: (s.id, epoch[s.id]) for s in current.suppliers for person in s.members}

        # What the reconciler does before planning: retire what would change hands.
        parties = {key: store.party[room] for key, room in store.rooms.items()}
        for key in rooms_to_retire(current, parties):
            new_key = retired_key(key, store.rooms)
            store.rooms[new_key] = store.rooms.pop(key)

        plan = plan_rooms(current, (), frozenset(RoomKey(k) for k in store.rooms), Locale.RU)
        for spec in plan.specs:
            if spec.key not in store.rooms:
                room = len(store.party)
                store.rooms[spec.key] = room
                store.party[room] = spec.supplier_id
            room = store.rooms[spec.key]
            bound = store.party[room]
            assert spec.supplier_id in (None, bound), f"{spec.key} changed hands"
            planned = store.planned_for.setdefault(room, set())
            planned |= {party_of[m] for m in spec.members if m in party_of}
            assert len(planned) <= 1, f"{spec.key} planned for {planned}"
            if bound is None:
                assert not planned, f"{spec.key} is internal, planned for {planned}"


def test_a_specification_moved_to_another_supplier_retires_its_room() -> None:
    alfa = Supplier(SupplierId("alfa"), "ООО «Альфа»", (PEOPLE[0],))
    beta = Supplier(SupplierId("beta"), "ООО «Бета»", (PEOPLE[1],))
    moved = snapshot(2, Stage.OFFERS, (alfa, beta), (Specification("S-1", beta.id),))
    parties = {"specification:S-1": alfa.id, "supplier:alfa": alfa.id, "org": None}
    assert rooms_to_retire(moved, parties) == [RoomKey("specification:S-1")]


def test_a_dropped_supplier_retires_its_rooms_and_keeps_the_rest() -> None:
    alfa = Supplier(SupplierId("alfa"), "ООО «Альфа»", (PEOPLE[0],))
    dropped = snapshot(3, Stage.OFFERS, ())
    parties = {
        "supplier:alfa": alfa.id,
        "supplier-space:alfa": alfa.id,
        "specification:S-1#1": alfa.id,  # retired already: left alone
        "commission": None,
        "approval:A-1": None,
    }
    assert rooms_to_retire(dropped, parties) == [
        RoomKey("supplier-space:alfa"),
        RoomKey("supplier:alfa"),
    ]


def test_a_retired_key_is_free_and_says_what_it_was() -> None:
    taken = {"shipment:SH-1", "shipment:SH-1#1"}
    assert retired_key("shipment:SH-1", taken) == "shipment:SH-1#2"
    assert shown_subject("SH-1#2") == "SH-1"
    plan = plan_rooms(
        snapshot(1, Stage.OFFERS, ()), (), frozenset({RoomKey("shipment:SH-1#1")}), Locale.RU
    )
    spec = plan.get("shipment:SH-1#1")
    assert spec is not None
    assert spec.name == "[Архив] Отгрузочная ведомость SH-1"
    assert spec.members == {MANAGER}
    assert spec.archived
