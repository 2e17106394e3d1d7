"""The `procurement.upserted` snapshot (DESIGN §4.1): its values, stages and parsing."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from .errors import InvalidInput
from .ids import ProcurementId, SupplierId, UserId
from .reader import Reader

# Ids end up in room keys ("supplier:<id>"), API paths and state keys: keep them plain.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-/]{0,99}")
_URL = re.compile(r"https?://[^\s<>\"]+")
_MAX_VERSION = 2**63 - 1  # a BIGINT column


class Stage(Enum):
    """Where the procurement is; `cancelled` may follow any stage."""

    REQUEST = "request"
    OFFERS = "offers"
    COMMISSION = "commission"
    CONTRACT = "contract"
    DELIVERY = "delivery"
    WAREHOUSE = "warehouse"
    COMPLETED = "completed"
    CANCELLED = "cancelled"

    @property
    def closed(self) -> bool:
        """Completed or cancelled: every room of the procurement is an archive."""
        return self in (Stage.COMPLETED, Stage.CANCELLED)

    def within(self, first: Stage, last: Stage) -> bool:
        """Whether the lifecycle is between `first` and `last` inclusive (never when cancelled)."""
        if self is Stage.CANCELLED:
            return False
        return LIFECYCLE.index(first) <= LIFECYCLE.index(self) <= LIFECYCLE.index(last)

    def reached(self, other: Stage) -> bool:
        """Whether the lifecycle has got to `other`; a cancelled procurement reaches nothing."""
        return self.within(other, Stage.COMPLETED)


# The regular order of stages; `cancelled` is outside it.
LIFECYCLE: tuple[Stage, ...] = (
    Stage.REQUEST,
    Stage.OFFERS,
    Stage.COMMISSION,
    Stage.CONTRACT,
    Stage.DELIVERY,
    Stage.WAREHOUSE,
    Stage.COMPLETED,
)


@dataclass(frozen=True, slots=True)
class ProcurementObject:
    """The construction site the procurement is for."""

    id: str | None
    name: str


@dataclass(frozen=True, slots=True)
class Supplier:
    id: SupplierId
    name: str
    members: tuple[UserId, ...]


@dataclass(frozen=True, slots=True)
class Commission:
    id: str | None
    name: str | None
    chair: UserId | None
    members: tuple[UserId, ...]


@dataclass(frozen=True, slots=True)
class Specification:
    id: str
    supplier_id: SupplierId


@dataclass(frozen=True, slots=True)
class Shipment:
    id: str
    supplier_id: SupplierId
    status: str | None  # free text from the procurement system; only "received" means something

    @property
    def received(self) -> bool:
        return self.status == "received"


@dataclass(frozen=True, slots=True)
class Snapshot:
    id: ProcurementId
    version: int
    number: str | None
    title: str
    object: ProcurementObject | None
    organization: str | None
    url: str | None
    stage: Stage
    manager: UserId
    team: tuple[UserId, ...] = ()
    logistics: tuple[UserId, ...] = ()
    suppliers: tuple[Supplier, ...] = ()
    commission: Commission | None = None
    specifications: tuple[Specification, ...] = ()
    shipments: tuple[Shipment, ...] = ()

    @property
    def display_number(self) -> str:
        """The number people know the procurement by (its id when it has none)."""
        return self.number or self.id

    def supplier(self, supplier_id: SupplierId) -> Supplier | None:
        return next((s for s in self.suppliers if s.id == supplier_id), None)

    def supplier_of(self, user: UserId) -> Supplier | None:
        """The supplier `user` belongs to (a user belongs to at most one)."""
        return next((s for s in self.suppliers if user in s.members), None)

    @property
    def internal_people(self) -> frozenset[UserId]:
        """The buyer's people: manager, team, logistics and commission members."""
        commission = self.commission.members if self.commission else ()
        return frozenset((self.manager, *self.team, *self.logistics, *commission))


def parse_snapshot(data: object, path: str = "data") -> Snapshot:
    """Read and check a `procurement.upserted` payload; any fault raises InvalidInput."""
    r = Reader(data, path)
    suppliers = _suppliers(r)
    snapshot = Snapshot(
        id=ProcurementId(_id(r, "id")),
        version=r.integer("version", minimum=0, maximum=_MAX_VERSION),
        number=r.opt_text("number", max_len=100),
        title=r.text("title", max_len=500),
        object=_object(r),
        organization=r.opt_text("organization", max_len=500),
        url=_url(r, "url"),
        stage=r.enum("stage", Stage),
        manager=r.user("manager"),
        team=r.users("team"),
        logistics=r.users("logistics"),
        suppliers=tuple(s for s, _ in suppliers),
        commission=_commission(r),
        specifications=_specifications(r, suppliers),
        shipments=_shipments(r, suppliers),
    )
    _check_suppliers_are_outsiders(snapshot, suppliers)
    return snapshot


def _id(r: Reader, key: str) -> str:
    value = r.text(key, max_len=100)
    if not _ID.fullmatch(value):
        raise InvalidInput(
            r.at(key),
            f"{value!r} is not a valid id: use up to 100 letters, digits and . _ - /, "
            "starting with a letter or a digit",
        )
    return value


def _url(r: Reader, key: str) -> str | None:
    """A link back to the procurement system; cards render it, so only http(s)."""
    value = r.opt_text(key, max_len=2000)
    if value is not None and not _URL.fullmatch(value):
        raise InvalidInput(r.at(key), f"{value!r} is not an http(s) URL")
    return value


def _object(r: Reader) -> ProcurementObject | None:
    o = r.opt_obj("object")
    if o is None:
        return None
    return ProcurementObject(id=o.opt_text("id", max_len=100), name=o.text("name", max_len=500))


def _suppliers(r: Reader) -> list[tuple[Supplier, Reader]]:
    suppliers: list[tuple[Supplier, Reader]] = []
    seen: set[str] = set()
    for s in (item.reader() for item in r.items("suppliers")):
        supplier_id = _id(s, "id")
        if supplier_id in seen:
            raise InvalidInput(s.at("id"), f"supplier {supplier_id!r} is listed twice")
        seen.add(supplier_id)
        supplier = Supplier(
            id=SupplierId(supplier_id),
            name=s.text("name", max_len=500),
            members=s.users("members"),
        )
        suppliers.append((supplier, s))
    return suppliers


def _commission(r: Reader) -> Commission | None:
    c = r.opt_obj("commission")
    if c is None:
        return None
    commission = Commission(
        id=c.opt_text("id", max_len=100),
        name=c.opt_text("name", max_len=500),
        chair=c.opt_user("chair"),
        members=c.users("members"),
    )
    if commission.chair is not None and commission.chair not in commission.members:
        raise InvalidInput(
            c.at("chair"),
            f"{commission.chair} chairs the commission but is not among its members",
            "M_INVALID_PARAM",
        )
    return commission


def _supplier_ref(r: Reader, suppliers: list[tuple[Supplier, Reader]]) -> SupplierId:
    supplier_id = _id(r, "supplier_id")
    if not any(s.id == supplier_id for s, _ in suppliers):
        raise InvalidInput(
            r.at("supplier_id"), f"no supplier with id {supplier_id!r}", "M_INVALID_PARAM"
        )
    return SupplierId(supplier_id)


def _specifications(
    r: Reader, suppliers: list[tuple[Supplier, Reader]]
) -> tuple[Specification, ...]:
    specs: dict[str, Specification] = {}
    for s in (item.reader() for item in r.items("specifications")):
        spec_id = _id(s, "id")
        if spec_id in specs:
            raise InvalidInput(s.at("id"), f"specification {spec_id!r} is listed twice")
        specs[spec_id] = Specification(id=spec_id, supplier_id=_supplier_ref(s, suppliers))
    return tuple(specs.values())


def _shipments(r: Reader, suppliers: list[tuple[Supplier, Reader]]) -> tuple[Shipment, ...]:
    shipments: dict[str, Shipment] = {}
    for s in (item.reader() for item in r.items("shipments")):
        shipment_id = _id(s, "id")
        if shipment_id in shipments:
            raise InvalidInput(s.at("id"), f"shipment {shipment_id!r} is listed twice")
        shipments[shipment_id] = Shipment(
            id=shipment_id,
            supplier_id=_supplier_ref(s, suppliers),
            status=s.opt_text("status", max_len=100),
        )
    return tuple(shipments.values())


def _check_suppliers_are_outsiders(
    snapshot: Snapshot, suppliers: list[tuple[Supplier, Reader]]
) -> None:
    """A supplier's member belongs to no other supplier and is none of the buyer's people.

    Otherwise one person would carry a supplier into another supplier's rooms or into the
    internal space, and suppliers must never learn about each other (DESIGN §2).
    """
    internal = snapshot.internal_people
    owner: dict[UserId, SupplierId] = {}
    for supplier, s in suppliers:
        for i, member in enumerate(supplier.members):
            path = f"{s.at('members')}[{i}]"
            if member in internal:
                raise InvalidInput(
                    path,
                    f"{member} is one of the buyer's people (manager, team, logistics or "
                    "commission) and cannot also be a supplier's member",
                    "M_INVALID_PARAM",
                )
            if member in owner:
                raise InvalidInput(
                    path,
                    f"{member} is already a member of supplier {owner[member]!r}",
                    "M_INVALID_PARAM",
                )
            owner[member] = supplier.id
