"""A room's party for good (DESIGN §3): a room that held one supplier's people never opens to
another. A supplier-bound room whose subject leaves the snapshot, or whose subject moves to
another supplier, is retired: it keeps its history as an archive for the manager under a new
key, and the old key, if used again, gets a new room."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .ids import RoomKey, SupplierId
from .snapshot import Snapshot

# Snapshot ids never contain it (snapshot._ID), so a retired key cannot collide with a live one.
RETIRED_MARK = "#"
# Keys whose room belongs to one supplier, and how the snapshot names that supplier.
_SUPPLIER_KINDS = ("supplier", "supplier-space")
_LISTED_KINDS = ("specification", "shipment")


def is_retired(key: str) -> bool:
    return RETIRED_MARK in key


def shown_subject(subject: str) -> str:
    """The subject id as people know it (a retired room's key carries a counter)."""
    return subject.split(RETIRED_MARK, 1)[0]


def party_in(snapshot: Snapshot, key: str) -> tuple[bool, SupplierId | None]:
    """Whether the snapshot lists the key's subject, and the supplier it gives it (None for a
    room of the buyer's people only)."""
    kind, _, subject = key.partition(":")
    if kind in _SUPPLIER_KINDS:
        supplier = snapshot.supplier(SupplierId(subject))
        return supplier is not None, None if supplier is None else supplier.id
    if kind == "specification":
        spec = next((s for s in snapshot.specifications if s.id == subject), None)
        return spec is not None, None if spec is None else spec.supplier_id
    if kind == "shipment":
        shipment = next((s for s in snapshot.shipments if s.id == subject), None)
        return shipment is not None, None if shipment is None else shipment.supplier_id
    return True, None


def is_supplier_bound(key: str) -> bool:
    kind = key.partition(":")[0]
    return kind in _SUPPLIER_KINDS or kind in _LISTED_KINDS


def rooms_to_retire(snapshot: Snapshot, parties: Mapping[str, SupplierId | None]) -> list[RoomKey]:
    """The existing rooms (key → the party each is bound to) that `snapshot` would hand to a
    different party or that it no longer lists: they must leave their key before planning."""
    retire = []
    for key, party in sorted(parties.items()):
        if is_retired(key) or not is_supplier_bound(key):
            continue
        listed, current = party_in(snapshot, key)
        if not listed or current != party:
            retire.append(RoomKey(key))
    return retire


def retired_key(key: str, taken: Iterable[str]) -> RoomKey:
    """The first free `<key>#<n>`."""
    used = set(taken)
    n = 1
    while f"{key}{RETIRED_MARK}{n}" in used:
        n += 1
    return RoomKey(f"{key}{RETIRED_MARK}{n}")
