"""The room plan (DESIGN §3): which rooms and spaces a snapshot implies, with members and names."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum

from .identity import shown_subject
from .ids import ApprovalId, ProcurementId, RoomKey, SupplierId, UserId
from .locale import Locale
from .snapshot import Snapshot, Stage, Supplier


class RoomKind(Enum):
    ORG = "org"
    SUPPLIER = "supplier"
    COMMISSION = "commission"
    APPROVAL = "approval"
    SPECIFICATION = "specification"
    SHIPMENT = "shipment"


ARCHIVE_AVATAR = "archive"
SPACE_AVATAR = "space"
AVATAR_KINDS = (SPACE_AVATAR, *(kind.value for kind in RoomKind), ARCHIVE_AVATAR)


class Category(Enum):
    """The internal sub-spaces, in the order the seed shows them."""

    SUPPLIERS = "suppliers"
    COMMISSION = "commission"
    APPROVALS = "approvals"
    SPECIFICATIONS = "specifications"
    SHIPMENTS = "shipments"
    ARCHIVE = "archive"


ORG_KEY = RoomKey("org")
COMMISSION_KEY = RoomKey("commission")
SPACE_KEY = RoomKey("space")  # the internal procurement space

# Each kind's category, and the `order` of m.space.child that keeps the seed's order in Element.
_CATEGORY = {
    RoomKind.SUPPLIER: Category.SUPPLIERS,
    RoomKind.COMMISSION: Category.COMMISSION,
    RoomKind.APPROVAL: Category.APPROVALS,
    RoomKind.SPECIFICATION: Category.SPECIFICATIONS,
    RoomKind.SHIPMENT: Category.SHIPMENTS,
}
_KIND_ORDER = {kind: str(rank) for rank, kind in enumerate(RoomKind)}
_CATEGORY_ORDER = {
    **{category: str(rank + 1) for rank, category in enumerate(Category)},
    Category.ARCHIVE: "9",
}
_KEYED_KINDS = (RoomKind.SUPPLIER, RoomKind.APPROVAL, RoomKind.SPECIFICATION, RoomKind.SHIPMENT)


def room_key(kind: RoomKind, subject: str | None = None) -> RoomKey:
    """`org`, `commission`, or `<kind>:<subject id>` for the kinds with one room per subject."""
    if kind in _KEYED_KINDS:
        if not subject:
            raise ValueError(f"a {kind.value} room needs a subject id")
        return RoomKey(f"{kind.value}:{subject}")
    return RoomKey(kind.value)


def category_key(category: Category) -> RoomKey:
    return RoomKey(f"category:{category.value}")


def supplier_space_key(supplier_id: SupplierId) -> RoomKey:
    return RoomKey(f"supplier-space:{supplier_id}")


def parse_room_key(key: str) -> tuple[RoomKind, str | None] | None:
    """The kind and subject id of a room key (not a space key), or None if it names no room."""
    head, sep, subject = key.partition(":")
    try:
        kind = RoomKind(head)
    except ValueError:
        return None
    if kind in _KEYED_KINDS:
        return (kind, subject) if subject else None
    return None if sep else (kind, None)


@dataclass(frozen=True, slots=True)
class ApprovalRoomInput:
    """What the plan needs of an approval (known approvals, closed ones included)."""

    approval_id: ApprovalId
    title: str
    initiator: UserId
    approvers: tuple[UserId, ...]
    closed: bool


@dataclass(frozen=True, slots=True)
class RoomSpec:
    """One planned room or space. The bot is never listed in `members`; it adds itself."""

    key: RoomKey
    kind: RoomKind | None  # None for spaces
    is_space: bool
    name: str
    topic: str
    members: frozenset[UserId]
    archived: bool
    parent: RoomKey | None  # the one m.space.parent the room carries
    listed_in: frozenset[RoomKey]  # every space whose m.space.child lists it
    order: str  # the m.space.child `order` wherever it is listed
    supplier_id: SupplierId | None  # whose members may be in it; None: only the buyer's people
    context: Mapping[str, object]  # content of the org.procurement.context state event
    # What the room is about (supplier, specification, …), never anything its members may not
    # see; None for rooms about the procurement as a whole.
    subject: str | None = None

    @property
    def avatar(self) -> str:
        """Which picture the room shows in room lists: its kind, one for every space, and one
        for every archive (so a closed stage is told apart at a glance)."""
        if self.archived:
            return ARCHIVE_AVATAR
        return SPACE_AVATAR if self.kind is None else self.kind.value


@dataclass(frozen=True, slots=True)
class Plan:
    procurement_id: ProcurementId
    locale: Locale
    spaces: tuple[RoomSpec, ...]  # parents before children
    rooms: tuple[RoomSpec, ...]
    children: Mapping[RoomKey, tuple[RoomKey, ...]]  # every planned space → its ordered children

    @property
    def specs(self) -> tuple[RoomSpec, ...]:
        return self.spaces + self.rooms

    def get(self, key: str) -> RoomSpec | None:
        return next((spec for spec in self.specs if spec.key == key), None)


@dataclass(frozen=True, slots=True)
class _Texts:
    archived: str
    space: str
    categories: Mapping[Category, str]
    about: str
    site: str
    space_topic: str
    org: str
    org_topic: str
    supplier: str
    supplier_topic: str
    supplier_space: str
    supplier_space_topic: str
    commission: str
    commission_topic: str
    approval: str
    approval_topic: str
    specification: str
    shipment: str
    of_supplier: str
    shipment_topic: str


_TEXTS = {
    Locale.RU: _Texts(
        archived="[Архив] ",
        space="Закупка {number} · {title}",
        categories={
            Category.SUPPLIERS: "Чаты с поставщиками",
            Category.COMMISSION: "Чаты комиссии закупки",
            Category.APPROVALS: "Чаты согласования",
            Category.SPECIFICATIONS: "Чаты спецификации",
            Category.SHIPMENTS: "Чаты отгрузочных ведомостей",
            Category.ARCHIVE: "Архив",
        },
        about="Закупка {number} «{title}»",
        site="; объект: {site}",
        space_topic="Все чаты закупки",
        org="Чат организации по закупке {number}",
        org_topic="Внутренний чат менеджера и команды закупки",
        supplier="{supplier} · закупка {number}",
        supplier_topic="Переговоры менеджера с поставщиком {supplier}",
        supplier_space="Закупка {number} · {supplier}",
        supplier_space_topic="Чаты с поставщиком {supplier}",
        commission="Комиссия закупки {number}",
        commission_topic="Обсуждения и голосования комиссии закупки",
        approval="Согласование: {title}",
        approval_topic="Согласование документа: {title}",
        specification="Спецификация № {id}",
        shipment="Отгрузочная ведомость {id}",
        of_supplier=", поставщик {supplier}",
        shipment_topic="Отгрузка и приёмка по ведомости {id}",
    ),
    Locale.EN: _Texts(
        archived="[Archive] ",
        space="Procurement {number} · {title}",
        categories={
            Category.SUPPLIERS: "Supplier chats",
            Category.COMMISSION: "Commission chats",
            Category.APPROVALS: "Approval chats",
            Category.SPECIFICATIONS: "Specification chats",
            Category.SHIPMENTS: "Shipping list chats",
            Category.ARCHIVE: "Archive",
        },
        about="Procurement {number} “{title}”",
        site="; site: {site}",
        space_topic="All chats of the procurement",
        org="Procurement {number} organisation chat",
        org_topic="Internal chat of the manager and the procurement team",
        supplier="{supplier} · procurement {number}",
        supplier_topic="The manager's negotiation with supplier {supplier}",
        supplier_space="Procurement {number} · {supplier}",
        supplier_space_topic="Chats with supplier {supplier}",
        commission="Procurement {number} commission",
        commission_topic="Discussions and votes of the procurement commission",
        approval="Approval: {title}",
        approval_topic="Approval of the document: {title}",
        specification="Specification No. {id}",
        shipment="Shipping list {id}",
        of_supplier=", supplier {supplier}",
        shipment_topic="Shipping and acceptance of shipping list {id}",
    ),
}


@dataclass(frozen=True, slots=True)
class _Candidate:
    """A room the rules know of, before deciding whether it is planned."""

    key: RoomKey
    kind: RoomKind
    open: bool
    members: frozenset[UserId]
    supplier: Supplier | None  # the supplier whose members see it
    name: str
    purpose: str  # the topic's first part
    subject: str | None = None  # what the room is about, for its context card


def plan_rooms(
    snapshot: Snapshot,
    approvals: Iterable[ApprovalRoomInput],
    known_keys: frozenset[str],
    locale: Locale,
) -> Plan:
    """The rooms and spaces `snapshot` implies, given which keys already exist in Matrix.

    A room is planned if the rules open it or it exists; an existing room that the rules do
    not open is archived, and one whose subject left the snapshot keeps only the manager.
    Keys in `known_keys` that name nothing this module knows are ignored.
    """
    t = _TEXTS[locale]
    approval_list = tuple(approvals)
    candidates = _present(snapshot, approval_list, t)
    for key in sorted(known_keys):
        parsed = parse_room_key(key)
        if parsed is not None and key not in candidates:
            candidates[RoomKey(key)] = _vanished(snapshot, *parsed, t)
    owners = {member: s.id for s in snapshot.suppliers for member in s.members}
    planned = [c for c in candidates.values() if c.open or c.key in known_keys]
    rooms = sorted((_room(snapshot, c, owners, t) for c in planned), key=_sort_key)
    spaces = _spaces(snapshot, rooms, approval_list, known_keys, owners, t)
    children: dict[RoomKey, list[RoomKey]] = {space.key: [] for space in spaces}
    for spec in sorted((*spaces, *rooms), key=_sort_key):
        for space_key in spec.listed_in:
            children[space_key].append(spec.key)
    return Plan(
        procurement_id=snapshot.id,
        locale=locale,
        spaces=tuple(spaces),
        rooms=tuple(rooms),
        children={key: tuple(keys) for key, keys in children.items()},
    )


def _present(
    snapshot: Snapshot, approvals: Iterable[ApprovalRoomInput], t: _Texts
) -> dict[RoomKey, _Candidate]:
    """Every room whose subject is in the snapshot (or the approvals), open or not."""
    stage = snapshot.stage
    manager = snapshot.manager
    suppliers = {s.id: s for s in snapshot.suppliers}
    number = snapshot.display_number
    found: list[_Candidate] = [
        _Candidate(
            key=ORG_KEY,
            kind=RoomKind.ORG,
            open=not stage.closed,
            members=frozenset((manager, *snapshot.team)),
            supplier=None,
            name=t.org.format(number=number),
            purpose=t.org_topic,
        )
    ]
    for supplier in snapshot.suppliers:
        found.append(
            _Candidate(
                key=room_key(RoomKind.SUPPLIER, supplier.id),
                kind=RoomKind.SUPPLIER,
                open=stage.within(Stage.OFFERS, Stage.COMMISSION),
                members=frozenset((manager, *supplier.members)),
                supplier=supplier,
                name=t.supplier.format(supplier=supplier.name, number=number),
                purpose=t.supplier_topic.format(supplier=supplier.name),
                subject=supplier.name,
            )
        )
    if snapshot.commission is not None:
        found.append(
            _Candidate(
                key=COMMISSION_KEY,
                kind=RoomKind.COMMISSION,
                open=stage is Stage.COMMISSION,
                members=frozenset((manager, *snapshot.commission.members)),
                supplier=None,
                name=snapshot.commission.name or t.commission.format(number=number),
                purpose=t.commission_topic,
                subject=snapshot.commission.name,
            )
        )
    for approval in approvals:
        found.append(
            _Candidate(
                key=room_key(RoomKind.APPROVAL, approval.approval_id),
                kind=RoomKind.APPROVAL,
                open=not approval.closed and not stage.closed,
                members=frozenset((manager, approval.initiator, *approval.approvers)),
                supplier=None,
                name=t.approval.format(title=approval.title),
                purpose=t.approval_topic.format(title=approval.title),
                subject=approval.title,
            )
        )
    for spec in snapshot.specifications:
        spec_supplier = suppliers.get(spec.supplier_id)
        found.append(
            _Candidate(
                key=room_key(RoomKind.SPECIFICATION, spec.id),
                kind=RoomKind.SPECIFICATION,
                open=not stage.closed,
                members=frozenset((manager, *snapshot.team, *_members(spec_supplier))),
                supplier=spec_supplier,
                name=t.specification.format(id=spec.id),
                purpose=t.specification.format(id=spec.id) + _of_supplier(spec_supplier, t),
                subject=spec.id,
            )
        )
    for shipment in snapshot.shipments:
        shipper = suppliers.get(shipment.supplier_id)
        found.append(
            _Candidate(
                key=room_key(RoomKind.SHIPMENT, shipment.id),
                kind=RoomKind.SHIPMENT,
                open=not stage.closed and not shipment.received,
                members=frozenset((manager, *snapshot.logistics, *_members(shipper))),
                supplier=shipper,
                name=t.shipment.format(id=shipment.id),
                purpose=t.shipment_topic.format(id=shipment.id) + _of_supplier(shipper, t),
                subject=shipment.id,
            )
        )
    # A later duplicate (an approval listed twice) replaces the earlier one.
    return {c.key: c for c in found}


def _vanished(snapshot: Snapshot, kind: RoomKind, subject: str | None, t: _Texts) -> _Candidate:
    """An existing room whose subject left the snapshot (or a retired one): an archive for the
    manager alone."""
    number = snapshot.display_number
    key = room_key(kind, subject or None)
    subject = shown_subject(subject or "")
    name, purpose = {
        RoomKind.ORG: (t.org.format(number=number), t.org_topic),
        RoomKind.SUPPLIER: (
            t.supplier.format(supplier=subject, number=number),
            t.supplier_topic.format(supplier=subject),
        ),
        RoomKind.COMMISSION: (t.commission.format(number=number), t.commission_topic),
        RoomKind.APPROVAL: (
            t.approval.format(title=subject),
            t.approval_topic.format(title=subject),
        ),
        RoomKind.SPECIFICATION: (
            t.specification.format(id=subject),
            t.specification.format(id=subject),
        ),
        RoomKind.SHIPMENT: (
            t.shipment.format(id=subject),
            t.shipment_topic.format(id=subject),
        ),
    }[kind]
    return _Candidate(
        key=key,
        kind=kind,
        open=False,
        members=frozenset((snapshot.manager,)),
        supplier=None,
        name=name,
        purpose=purpose,
    )


def _room(
    snapshot: Snapshot, c: _Candidate, owners: Mapping[UserId, SupplierId], t: _Texts
) -> RoomSpec:
    archived = not c.open
    internal_home = (
        category_key(Category.ARCHIVE)
        if archived
        else SPACE_KEY
        if c.kind is RoomKind.ORG
        else category_key(_CATEGORY[c.kind])
    )
    if c.supplier is None:
        parent, listed_in = internal_home, frozenset((internal_home,))
    else:
        # A supplier sees its room's m.space.parent: it must point only to its own space.
        own_space = supplier_space_key(c.supplier.id)
        parent, listed_in = own_space, frozenset((internal_home, own_space))
    supplier_id = c.supplier.id if c.supplier else None
    return RoomSpec(
        key=c.key,
        kind=c.kind,
        is_space=False,
        name=(t.archived if archived else "") + c.name,
        topic=_topic(c.purpose, snapshot, t),
        members=_confine(c.members, supplier_id, owners),
        archived=archived,
        parent=parent,
        listed_in=listed_in,
        order=_KIND_ORDER[c.kind],
        supplier_id=supplier_id,
        context=_context(snapshot, c.key, c.kind.value, archived, supplier_id),
        subject=c.subject,
    )


def _spaces(
    snapshot: Snapshot,
    rooms: list[RoomSpec],
    approvals: Iterable[ApprovalRoomInput],
    known_keys: frozenset[str],
    owners: Mapping[UserId, SupplierId],
    t: _Texts,
) -> list[RoomSpec]:
    """The internal space, its categories that hold something, and the suppliers' spaces."""
    number = snapshot.display_number
    internal_members = _confine(_internal_people(snapshot, approvals), None, owners)
    categories = [
        category
        for category in Category
        if category_key(category) in known_keys
        or any(category_key(category) in room.listed_in for room in rooms)
    ]
    spaces: list[RoomSpec] = []
    if rooms or categories or SPACE_KEY in known_keys:
        spaces.append(
            _space(
                snapshot,
                SPACE_KEY,
                name=t.space.format(number=number, title=snapshot.title),
                purpose=t.space_topic,
                members=internal_members,
                archived=False,
                parent=None,
                order="0",
                supplier_id=None,
                t=t,
            )
        )
    spaces.extend(
        _space(
            snapshot,
            category_key(category),
            name=t.categories[category],
            purpose=t.categories[category],
            members=internal_members,
            archived=False,
            parent=SPACE_KEY,
            order=_CATEGORY_ORDER[category],
            supplier_id=None,
            t=t,
        )
        for category in categories
    )
    return spaces + _supplier_spaces(snapshot, rooms, known_keys, owners, t)


def _supplier_spaces(
    snapshot: Snapshot,
    rooms: list[RoomSpec],
    known_keys: frozenset[str],
    owners: Mapping[UserId, SupplierId],
    t: _Texts,
) -> list[RoomSpec]:
    """Per supplier a space of its own rooms, for its members; one whose supplier left is
    kept as an empty archive."""
    number = snapshot.display_number
    holds: dict[RoomKey, list[RoomSpec]] = {}
    for room in rooms:
        if room.supplier_id is not None:
            holds.setdefault(supplier_space_key(room.supplier_id), []).append(room)
    spaces: dict[RoomKey, RoomSpec] = {}
    for supplier in snapshot.suppliers:
        key = supplier_space_key(supplier.id)
        held = holds.get(key, [])
        if held or key in known_keys:
            spaces[key] = _space(
                snapshot,
                key,
                name=t.supplier_space.format(number=number, supplier=supplier.name),
                purpose=t.supplier_space_topic.format(supplier=supplier.name),
                # The supplier's own navigation: the buyer's people find these rooms in the
                # internal categories and would only see clutter here.
                members=_confine(frozenset(supplier.members), supplier.id, owners),
                archived=all(room.archived for room in held),
                parent=None,
                order="0",
                supplier_id=supplier.id,
                t=t,
            )
    prefix = supplier_space_key(SupplierId(""))
    for known in known_keys:
        gone = shown_subject(known.removeprefix(prefix))
        if known.startswith(prefix) and gone and known not in spaces:
            spaces[RoomKey(known)] = _space(
                snapshot,
                RoomKey(known),
                name=t.supplier_space.format(number=number, supplier=gone),
                purpose=t.supplier_space_topic.format(supplier=gone),
                members=frozenset(),
                archived=True,
                parent=None,
                order="0",
                supplier_id=None,
                t=t,
            )
    return [spaces[key] for key in sorted(spaces)]


def _space(
    snapshot: Snapshot,
    key: RoomKey,
    *,
    name: str,
    purpose: str,
    members: frozenset[UserId],
    archived: bool,
    parent: RoomKey | None,
    order: str,
    supplier_id: SupplierId | None,
    t: _Texts,
) -> RoomSpec:
    return RoomSpec(
        key=key,
        kind=None,
        is_space=True,
        name=(t.archived if archived else "") + name,
        topic=_topic(purpose, snapshot, t),
        members=members,
        archived=archived,
        parent=parent,
        listed_in=frozenset(() if parent is None else (parent,)),
        order=order,
        supplier_id=supplier_id,
        context=_context(snapshot, key, "space", archived, supplier_id),
    )


def _internal_people(
    snapshot: Snapshot, approvals: Iterable[ApprovalRoomInput]
) -> frozenset[UserId]:
    approvers = (user for a in approvals for user in (a.initiator, *a.approvers))
    return snapshot.internal_people | frozenset(approvers)


def _confine(
    members: frozenset[UserId], supplier_id: SupplierId | None, owners: Mapping[UserId, SupplierId]
) -> frozenset[UserId]:
    """Drop every supplier's member but those of `supplier_id` (None: drop them all).

    Parsing already refuses such overlaps in a snapshot; approvals come from elsewhere, and
    this keeps the plan safe whatever it is given.
    """
    return frozenset(m for m in members if owners.get(m, supplier_id) == supplier_id)


def _members(supplier: Supplier | None) -> tuple[UserId, ...]:
    return supplier.members if supplier else ()


def _of_supplier(supplier: Supplier | None, t: _Texts) -> str:
    return t.of_supplier.format(supplier=supplier.name) if supplier else ""


def _topic(purpose: str, snapshot: Snapshot, t: _Texts) -> str:
    about = t.about.format(number=snapshot.display_number, title=snapshot.title)
    if snapshot.object is not None:
        about += t.site.format(site=snapshot.object.name)
    return f"{purpose}. {about}"


def _context(
    snapshot: Snapshot,
    key: RoomKey,
    kind: str,
    archived: bool,
    supplier_id: SupplierId | None,
) -> dict[str, object]:
    site = snapshot.object
    return {
        "procurement_id": snapshot.id,
        "number": snapshot.display_number,
        "title": snapshot.title,
        "stage": snapshot.stage.value,
        "kind": kind,
        "key": key,
        "archived": archived,
        "supplier_id": supplier_id,
        "object": None if site is None else {"id": site.id, "name": site.name},
        "url": snapshot.url,
    }


def _sort_key(spec: RoomSpec) -> tuple[str, str]:
    return (spec.order, spec.key)
