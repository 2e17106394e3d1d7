"""The `procurement.upserted` snapshot: parsing, checks with paths, stages."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.domain.errors import InvalidInput
from bridge.domain.ids import ProcurementId, SupplierId
from bridge.domain.ids import UserId as U
from bridge.domain.snapshot import (
    LIFECYCLE,
    Commission,
    ProcurementObject,
    Shipment,
    Snapshot,
    Specification,
    Stage,
    Supplier,
    parse_snapshot,
)

TORGPROFI = SupplierId("torgprofi")

# DESIGN §4.1, verbatim.
EXAMPLE_JSON = """
{"type": "procurement.upserted", "data": {
  "id": "26908", "version": 7,
  "number": "26908", "title": "Поставка арматуры А500С",
  "object": {"id": "lakhta-2", "name": "Лахта Центр, корпус 2"},
  "organization": "Газпром_Сибирь",
  "url": "https://erp.example/procurements/26908",
  "stage": "offers",
  "manager": "@konovalov:corp.example",
  "team": ["@ivanova:corp.example"],
  "logistics": ["@sklad:corp.example"],
  "suppliers": [{"id": "torgprofi", "name": "ООО «ТоргПрофи»",
                 "members": ["@kirillov:corp.example"]}],
  "commission": {"id": "15000.16969", "name": "Комиссия № 15000.16969 от 30.11.2022",
                 "chair": "@petrov:corp.example",
                 "members": ["@petrov:corp.example", "@kononov:corp.example"]},
  "specifications": [{"id": "K987-02.02-001", "supplier_id": "torgprofi"}],
  "shipments": [{"id": "SH-1", "supplier_id": "torgprofi", "status": "in_transit"}]
}}
"""


def example() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(EXAMPLE_JSON)["data"]
    return data


def minimal() -> dict[str, Any]:
    return {
        "id": "1",
        "version": 0,
        "title": "Закупка",
        "stage": "request",
        "manager": "@m:corp.example",
    }


def refused(data: object) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        parse_snapshot(data)
    return caught.value


def test_the_design_example_parses_into_every_field() -> None:
    snapshot = parse_snapshot(example())

    assert snapshot == Snapshot(
        id=ProcurementId("26908"),
        version=7,
        number="26908",
        title="Поставка арматуры А500С",
        object=ProcurementObject(id="lakhta-2", name="Лахта Центр, корпус 2"),
        organization="Газпром_Сибирь",
        url="https://erp.example/procurements/26908",
        stage=Stage.OFFERS,
        manager=U("@konovalov:corp.example"),
        team=(U("@ivanova:corp.example"),),
        logistics=(U("@sklad:corp.example"),),
        suppliers=(
            Supplier(id=TORGPROFI, name="ООО «ТоргПрофи»", members=(U("@kirillov:corp.example"),)),
        ),
        commission=Commission(
            id="15000.16969",
            name="Комиссия № 15000.16969 от 30.11.2022",
            chair=U("@petrov:corp.example"),
            members=(U("@petrov:corp.example"), U("@kononov:corp.example")),
        ),
        specifications=(Specification(id="K987-02.02-001", supplier_id=TORGPROFI),),
        shipments=(Shipment(id="SH-1", supplier_id=TORGPROFI, status="in_transit"),),
    )
    assert snapshot.display_number == "26908"
    assert snapshot.supplier(TORGPROFI) == snapshot.suppliers[0]
    assert snapshot.supplier(SupplierId("nobody")) is None
    assert snapshot.supplier_of(U("@kirillov:corp.example")) == snapshot.suppliers[0]
    assert snapshot.supplier_of(U("@petrov:corp.example")) is None
    assert snapshot.internal_people == {
        U("@konovalov:corp.example"),
        U("@ivanova:corp.example"),
        U("@sklad:corp.example"),
        U("@petrov:corp.example"),
        U("@kononov:corp.example"),
    }


def test_only_five_fields_are_required() -> None:
    snapshot = parse_snapshot(minimal())

    assert snapshot == Snapshot(
        id=ProcurementId("1"),
        version=0,
        number=None,
        title="Закупка",
        object=None,
        organization=None,
        url=None,
        stage=Stage.REQUEST,
        manager=U("@m:corp.example"),
    )
    assert snapshot.display_number == "1"
    assert snapshot.internal_people == {U("@m:corp.example")}


def test_null_optional_fields_read_as_absent() -> None:
    data = minimal() | {
        "number": None,
        "object": None,
        "team": None,
        "suppliers": None,
        "commission": None,
        "url": None,
    }
    assert parse_snapshot(data) == parse_snapshot(minimal())


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    data = example() | {"budget": {"amount": "1.00"}}
    data["suppliers"][0]["inn"] = "7800000000"
    assert parse_snapshot(data) == parse_snapshot(example())


@pytest.mark.parametrize("field", ["id", "version", "title", "stage", "manager"])
def test_a_missing_required_field_is_named(field: str) -> None:
    data = minimal()
    del data[field]
    error = refused(data)
    assert error.path == f"data.{field}"
    assert error.errcode == "M_MISSING_PARAM"


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (lambda d: d.update(version=-1), "data.version"),
        (lambda d: d.update(version=True), "data.version"),
        (lambda d: d.update(version="7"), "data.version"),
        (lambda d: d.update(version=2**63), "data.version"),
        (lambda d: d.update(stage="negotiation"), "data.stage"),
        (lambda d: d.update(title=""), "data.title"),
        (lambda d: d.update(title="   "), "data.title"),
        (lambda d: d.update(manager="konovalov"), "data.manager"),
        (lambda d: d.update(url="javascript:alert(1)"), "data.url"),
        (lambda d: d.update(url="https://erp.example/a b"), "data.url"),
        (lambda d: d.update(object={"id": "x"}), "data.object.name"),
        (lambda d: d.update(object="Лахта"), "data.object"),
        (lambda d: d.update(team="@a:corp.example"), "data.team"),
        (lambda d: d.update(team=["@ivanova:corp.example"] * 2), "data.team[1]"),
        (lambda d: d["logistics"].append("sklad"), "data.logistics[1]"),
        (lambda d: d["suppliers"][0]["members"].append("@Bad:x"), "data.suppliers[0].members[1]"),
        (lambda d: d["suppliers"][0].pop("name"), "data.suppliers[0].name"),
        (lambda d: d["suppliers"].append(7), "data.suppliers[1]"),
        (lambda d: d["commission"].update(members="all"), "data.commission.members"),
        (
            lambda d: d["specifications"][0].pop("supplier_id"),
            "data.specifications[0].supplier_id",
        ),
        (lambda d: d["shipments"][0].update(status=3), "data.shipments[0].status"),
    ],
)
def test_a_malformed_field_is_named(mutate: Any, path: str) -> None:
    data = example()
    mutate(data)
    assert refused(data).path == path


@pytest.mark.parametrize(
    "bad_id", ["a:b", "", "-x", ".", "..", "/etc", "a b", "ж", "a" * 101, "x\n", 5]
)
def test_ids_must_be_safe_in_room_keys(bad_id: object) -> None:
    damage: list[tuple[Callable[[dict[str, Any]], object], str]] = [
        (lambda d: d.update(id=bad_id), "data.id"),
        (lambda d: d["suppliers"][0].update(id=bad_id), "data.suppliers[0].id"),
        (lambda d: d["specifications"][0].update(id=bad_id), "data.specifications[0].id"),
        (lambda d: d["shipments"][0].update(id=bad_id), "data.shipments[0].id"),
    ]
    for field, path in damage:
        data = example()
        field(data)
        assert refused(data).path == path


def test_an_unsafe_id_gets_a_message_that_says_what_is_allowed() -> None:
    data = example()
    data["suppliers"][0]["id"] = "torg:profi"
    error = refused(data)
    assert error.error.startswith("'torg:profi' is not a valid id: use up to 100 letters")


@pytest.mark.parametrize("good_id", ["174/741-12.21-002", "K987-02.02-001", "a", "A_b.C-9/x"])
def test_ids_with_dots_dashes_and_slashes_are_fine(good_id: str) -> None:
    data = example()
    data["specifications"][0]["id"] = good_id
    assert parse_snapshot(data).specifications[0].id == good_id


def test_a_supplier_listed_twice_is_refused_at_the_second() -> None:
    data = example()
    data["suppliers"].append({"id": "torgprofi", "name": "Другой", "members": []})
    error = refused(data)
    assert (error.path, error.error) == (
        "data.suppliers[1].id",
        "supplier 'torgprofi' is listed twice",
    )


def test_specifications_and_shipments_must_name_a_listed_supplier() -> None:
    data = example()
    data["specifications"].append({"id": "S-2", "supplier_id": "metall"})
    error = refused(data)
    assert (error.path, error.errcode) == ("data.specifications[1].supplier_id", "M_INVALID_PARAM")

    data = example()
    data["shipments"][0]["supplier_id"] = "metall"
    assert refused(data).path == "data.shipments[0].supplier_id"


def test_specification_and_shipment_ids_are_unique() -> None:
    data = example()
    data["specifications"].append({"id": "K987-02.02-001", "supplier_id": "torgprofi"})
    assert refused(data).path == "data.specifications[1].id"

    data = example()
    data["shipments"].append({"id": "SH-1", "supplier_id": "torgprofi"})
    assert refused(data).path == "data.shipments[1].id"


def test_a_specification_and_a_shipment_may_share_an_id() -> None:
    data = example()
    data["shipments"][0]["id"] = "K987-02.02-001"
    assert parse_snapshot(data).shipments[0].id == "K987-02.02-001"


def test_the_chair_must_be_a_commission_member() -> None:
    data = example()
    data["commission"]["chair"] = "@ivanova:corp.example"
    error = refused(data)
    assert (error.path, error.errcode) == ("data.commission.chair", "M_INVALID_PARAM")

    data["commission"]["chair"] = None
    assert parse_snapshot(data).commission == Commission(
        id="15000.16969",
        name="Комиссия № 15000.16969 от 30.11.2022",
        chair=None,
        members=(U("@petrov:corp.example"), U("@kononov:corp.example")),
    )


def test_a_commission_may_be_just_its_members() -> None:
    data = minimal() | {"commission": {}}
    assert parse_snapshot(data).commission == Commission(None, None, None, ())


@pytest.mark.parametrize(
    "insider",
    [
        "@konovalov:corp.example",
        "@ivanova:corp.example",
        "@sklad:corp.example",
        "@kononov:corp.example",
    ],
)
def test_a_supplier_member_cannot_be_one_of_the_buyers_people(insider: str) -> None:
    data = example()
    data["suppliers"][0]["members"].append(insider)
    error = refused(data)
    assert (error.path, error.errcode) == ("data.suppliers[0].members[1]", "M_INVALID_PARAM")


def test_a_person_belongs_to_one_supplier_at_most() -> None:
    data = example()
    data["suppliers"].append(
        {"id": "metall", "name": "АО «Металл»", "members": ["@kirillov:corp.example"]}
    )
    error = refused(data)
    assert error.path == "data.suppliers[1].members[0]"
    assert "already a member of supplier 'torgprofi'" in error.error


def test_shipment_status_is_free_text_and_only_received_means_received() -> None:
    assert not Shipment("SH-1", TORGPROFI, "in_transit").received
    assert not Shipment("SH-1", TORGPROFI, None).received
    assert not Shipment("SH-1", TORGPROFI, "Received").received
    assert Shipment("SH-1", TORGPROFI, "received").received


def test_the_path_prefix_is_the_callers() -> None:
    data = example()
    data["team"] = [1]
    with pytest.raises(InvalidInput) as caught:
        parse_snapshot(data, path="body")
    assert caught.value.path == "body.team[0]"


def test_stages_follow_the_lifecycle_and_cancelled_is_outside_it() -> None:
    assert [s.value for s in LIFECYCLE] == [
        "request",
        "offers",
        "commission",
        "contract",
        "delivery",
        "warehouse",
        "completed",
    ]
    assert Stage.OFFERS.within(Stage.OFFERS, Stage.COMMISSION)
    assert Stage.COMMISSION.within(Stage.OFFERS, Stage.COMMISSION)
    assert not Stage.REQUEST.within(Stage.OFFERS, Stage.COMMISSION)
    assert not Stage.CONTRACT.within(Stage.OFFERS, Stage.COMMISSION)
    assert not Stage.CANCELLED.within(Stage.REQUEST, Stage.COMPLETED)
    assert Stage.DELIVERY.reached(Stage.CONTRACT)
    assert not Stage.OFFERS.reached(Stage.CONTRACT)
    assert not Stage.CANCELLED.reached(Stage.REQUEST)
    assert [s for s in Stage if s.closed] == [Stage.COMPLETED, Stage.CANCELLED]


# --- properties ---------------------------------------------------------------------------

# Explicit alphabets: Hypothesis builds its Unicode tables lazily, which is slow on a fresh CI.
TEXT = "azAZ09 @:._-/«»жЖё№\t\n\x00\u200b😀"
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True)
    | st.text(TEXT, max_size=20)
    | st.sampled_from(["@a:b.c", "offers", "torgprofi", "", "https://x.example"]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                ["id", "version", "title", "stage", "manager", "suppliers", "members", "name", "x"]
            ),
            children,
            max_size=6,
        )
    ),
    max_leaves=30,
)


@given(json_values)
def test_any_json_is_parsed_or_refused_with_invalid_input(data: object) -> None:
    try:
        parse_snapshot(data)
    except InvalidInput as error:
        path = error.path
    else:
        return
    assert path.startswith("data")


def _paths(value: object, path: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    found = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += _paths(item, (*path, i))
    return found


def _render(path: tuple[object, ...]) -> str:
    return "data" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


@settings(max_examples=300)
@given(st.data())
def test_a_damaged_example_is_refused_at_or_under_the_damage(data: st.DataObject) -> None:
    document = example()
    path = data.draw(st.sampled_from([p for p in _paths(document) if p]))
    replacement = data.draw(json_values)
    *parents, last = path
    holder: Any = document
    for step in parents:
        holder = holder[step]
    holder[last] = replacement
    try:
        parse_snapshot(document)
    except InvalidInput as error:
        where = error.path
    else:
        return
    # Semantic checks may name a sibling (a duplicate, a dangling reference), never junk.
    assert where in {_render(p) for p in _paths(document)} or where.startswith(_render(path))


ALNUM = "abcxyzABCXYZ0189"
ids = st.builds(str.__add__, st.sampled_from(ALNUM), st.text(ALNUM + "._-/", max_size=12))
users = st.builds(
    "@{}:{}.example".format,
    st.text("abcxyz0189._=-/+", min_size=1, max_size=8),
    st.text("abcxyz", min_size=1, max_size=5),
)


@st.composite
def snapshot_documents(draw: st.DrawFn) -> dict[str, Any]:
    people = draw(st.lists(users, unique=True, min_size=1, max_size=12))
    internal, outside = people[: len(people) // 2 + 1], people[len(people) // 2 + 1 :]
    supplier_ids = draw(st.lists(ids, unique=True, max_size=3))
    suppliers = []
    for i, supplier_id in enumerate(supplier_ids):
        suppliers.append(
            {"id": supplier_id, "name": f"ООО «{supplier_id}»", "members": outside[i::3]}
        )
    document: dict[str, Any] = {
        "id": draw(ids),
        "version": draw(st.integers(0, 2**63 - 1)),
        "title": draw(st.text(TEXT, min_size=1, max_size=20).filter(str.strip)),
        "stage": draw(st.sampled_from([s.value for s in Stage])),
        "manager": internal[0],
        "team": draw(st.lists(st.sampled_from(internal), unique=True)),
        "suppliers": suppliers,
    }
    if draw(st.booleans()):
        members = draw(st.lists(st.sampled_from(internal), unique=True))
        document["commission"] = {"members": members, "chair": members[0] if members else None}
    if supplier_ids:
        spec_ids = draw(st.lists(ids, unique=True, max_size=3))
        document["specifications"] = [
            {"id": spec_id, "supplier_id": draw(st.sampled_from(supplier_ids))}
            for spec_id in spec_ids
        ]
    return document


@given(snapshot_documents())
def test_generated_valid_documents_parse_to_what_they_say(document: dict[str, Any]) -> None:
    snapshot = parse_snapshot(document)
    assert snapshot.id == document["id"]
    assert snapshot.stage.value == document["stage"]
    assert [s.id for s in snapshot.suppliers] == [s["id"] for s in document["suppliers"]]
    assert [list(s.members) for s in snapshot.suppliers] == [
        s["members"] for s in document["suppliers"]
    ]
    assert len(snapshot.specifications) == len(document.get("specifications", []))
