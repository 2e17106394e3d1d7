"""What a person is in a procurement: the roles that commands are allowed by."""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from bridge.domain.commands import INTERNAL, Role
from bridge.domain.ids import ProcurementId, SupplierId, UserId
from bridge.domain.people import roles_of
from bridge.domain.snapshot import Commission, Snapshot, Stage, Supplier, parse_snapshot

MANAGER = UserId("@konovalov:corp.example")
TEAM = UserId("@ivanova:corp.example")
SKLAD = UserId("@sklad:corp.example")
PETROV = UserId("@petrov:corp.example")  # chairs the commission
KONONOV = UserId("@kononov:corp.example")
KIRILLOV = UserId("@kirillov:corp.example")  # ТоргПрофи
SIDOROV = UserId("@sidorov:other.example")  # СтальМаш
OUTSIDER = UserId("@stranger:corp.example")
APPROVER = UserId("@petrenko:corp.example")

# The DESIGN §4.1 example's data, with a second supplier.
EXAMPLE: dict[str, Any] = {
    "id": "26908",
    "version": 7,
    "number": "26908",
    "title": "Поставка арматуры А500С",
    "stage": "commission",
    "manager": MANAGER,
    "team": [TEAM],
    "logistics": [SKLAD],
    "suppliers": [
        {"id": "torgprofi", "name": "ООО «ТоргПрофи»", "members": [KIRILLOV]},
        {"id": "stalmash", "name": "АО «СтальМаш»", "members": [SIDOROV]},
    ],
    "commission": {
        "id": "15000.16969",
        "name": "Комиссия № 15000.16969 от 30.11.2022",
        "chair": PETROV,
        "members": [PETROV, KONONOV],
    },
}
SNAPSHOT = parse_snapshot(EXAMPLE)


def test_each_person_of_the_example_has_their_role() -> None:
    assert roles_of(SNAPSHOT, MANAGER) == {Role.MANAGER}
    assert roles_of(SNAPSHOT, TEAM) == {Role.TEAM}
    assert roles_of(SNAPSHOT, SKLAD) == {Role.LOGISTICS}
    assert roles_of(SNAPSHOT, PETROV) == {Role.COMMISSION}
    assert roles_of(SNAPSHOT, KONONOV) == {Role.COMMISSION}
    assert roles_of(SNAPSHOT, KIRILLOV) == {Role.SUPPLIER}
    assert roles_of(SNAPSHOT, SIDOROV) == {Role.SUPPLIER}


def test_a_stranger_has_no_role() -> None:
    assert roles_of(SNAPSHOT, OUTSIDER) == frozenset()
    assert roles_of(SNAPSHOT, UserId("")) == frozenset()
    # Ids are compared exactly: no case folding, no other server.
    assert roles_of(SNAPSHOT, UserId("@Konovalov:corp.example")) == frozenset()
    assert roles_of(SNAPSHOT, UserId("@konovalov:other.example")) == frozenset()


def test_an_approver_is_one_where_the_approvals_say_so() -> None:
    assert roles_of(SNAPSHOT, APPROVER, [APPROVER]) == {Role.APPROVER}
    assert roles_of(SNAPSHOT, APPROVER) == frozenset()
    assert roles_of(SNAPSHOT, APPROVER, [PETROV, KONONOV]) == frozenset()
    assert roles_of(SNAPSHOT, PETROV, [APPROVER, PETROV]) == {Role.COMMISSION, Role.APPROVER}


def test_the_approvers_may_be_any_iterable() -> None:
    assert roles_of(SNAPSHOT, APPROVER, (u for u in [MANAGER, APPROVER])) == {Role.APPROVER}
    assert roles_of(SNAPSHOT, APPROVER, {APPROVER}) == {Role.APPROVER}
    assert roles_of(SNAPSHOT, APPROVER, iter(())) == frozenset()


def test_one_person_may_hold_several_roles() -> None:
    snapshot = dataclasses.replace(
        SNAPSHOT,
        team=(TEAM, MANAGER),
        logistics=(SKLAD, MANAGER),
        commission=Commission(None, None, MANAGER, (MANAGER, KONONOV)),
    )
    assert roles_of(snapshot, MANAGER, [MANAGER]) == INTERNAL
    assert roles_of(snapshot, TEAM) == {Role.TEAM}


def test_without_a_commission_nobody_is_on_it() -> None:
    snapshot = dataclasses.replace(SNAPSHOT, commission=None)
    assert roles_of(snapshot, PETROV) == frozenset()
    assert roles_of(snapshot, MANAGER) == {Role.MANAGER}


def test_without_suppliers_nobody_is_one() -> None:
    snapshot = dataclasses.replace(SNAPSHOT, suppliers=())
    assert roles_of(snapshot, KIRILLOV) == frozenset()


def test_a_supplier_s_people_are_never_the_buyer_s() -> None:
    # parse_snapshot keeps suppliers outsiders: their members have no internal role.
    for supplier in SNAPSHOT.suppliers:
        for member in supplier.members:
            assert roles_of(SNAPSHOT, member) & INTERNAL == frozenset()


def test_the_roles_are_a_frozenset() -> None:
    roles = roles_of(SNAPSHOT, MANAGER)
    assert isinstance(roles, frozenset)
    hash(roles)


POOL = [UserId(f"@user{i}:corp.example") for i in range(8)]


@st.composite
def snapshots(draw: st.DrawFn) -> Snapshot:
    people = st.lists(st.sampled_from(POOL), unique=True, max_size=4).map(tuple)
    suppliers = tuple(
        Supplier(SupplierId(f"s{i}"), f"Поставщик {i}", members)
        for i, members in enumerate(draw(st.lists(people, max_size=3)))
    )
    commission = draw(st.none() | people.map(lambda m: Commission(None, None, None, m)))
    return Snapshot(
        id=ProcurementId("26908"),
        version=1,
        number=None,
        title="Закупка",
        object=None,
        organization=None,
        url=None,
        stage=draw(st.sampled_from(list(Stage))),
        manager=draw(st.sampled_from(POOL)),
        team=draw(people),
        logistics=draw(people),
        suppliers=suppliers,
        commission=commission,
    )


@given(snapshots(), st.sampled_from(POOL), st.lists(st.sampled_from(POOL), max_size=3))
def test_each_role_is_exactly_its_membership(
    snapshot: Snapshot, user: UserId, approvers: list[UserId]
) -> None:
    roles = roles_of(snapshot, user, approvers)
    assert (Role.MANAGER in roles) == (user == snapshot.manager)
    assert (Role.TEAM in roles) == (user in snapshot.team)
    assert (Role.LOGISTICS in roles) == (user in snapshot.logistics)
    members = snapshot.commission.members if snapshot.commission else ()
    assert (Role.COMMISSION in roles) == (user in members)
    assert (Role.APPROVER in roles) == (user in approvers)
    assert (Role.SUPPLIER in roles) == any(user in s.members for s in snapshot.suppliers)
    # Internal roles but the approver's come from the snapshot's internal people.
    assert bool(roles & (INTERNAL - {Role.APPROVER})) == (user in snapshot.internal_people)
