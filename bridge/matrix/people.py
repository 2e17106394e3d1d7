"""Who a person is where: their roles in a procurement (from its latest snapshot and its
approvals), the place they write in, and the procurements they take part in."""

from __future__ import annotations

import json

from ..db.rooms import ManagedRoom
from ..db.store import Store
from ..domain.approval import parse_approval_request
from ..domain.commands import Place, Role
from ..domain.ids import UserId
from ..domain.people import roles_of
from ..domain.plan import RoomKind, parse_room_key
from ..domain.snapshot import Snapshot, parse_snapshot


def place_of(room: ManagedRoom) -> Place | None:
    """The place a managed room is (None for a space)."""
    if room.is_space:
        return None
    parsed = parse_room_key(room.key)
    return None if parsed is None else Place(parsed[0].value)


class People:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def snapshot(self, procurement_id: str) -> Snapshot | None:
        stored = await self.store.procurements.get(procurement_id)
        return None if stored is None else parse_snapshot(json.loads(stored.snapshot))

    async def roles_in(self, room: ManagedRoom, user: str) -> frozenset[Role]:
        """Roles where they write: in an approval's room, approver of that approval only."""
        snapshot = await self.snapshot(room.procurement_id)
        if snapshot is None:
            return frozenset()
        approvers: tuple[UserId, ...] = ()
        parsed = parse_room_key(room.key)
        if parsed is not None and parsed[0] is RoomKind.APPROVAL and parsed[1]:
            approval = await self.store.approvals.get(room.procurement_id, parsed[1])
            if approval is not None:
                approvers = parse_approval_request(
                    approval.request, content_required=False
                ).approvers
        return roles_of(snapshot, UserId(user), approvers)

    async def procurements_of(self, user: str) -> list[str]:
        """The procurements in whose rooms the person is now."""
        rooms = await self.store.rooms.joined_by(user)
        return list(dict.fromkeys(room.procurement_id for room in rooms))

    async def roles_anywhere(self, user: str) -> frozenset[Role]:
        """Their roles in every procurement they take part in (a direct chat with the bot)."""
        roles: set[Role] = set()
        for procurement_id in await self.procurements_of(user):
            snapshot = await self.snapshot(procurement_id)
            if snapshot is not None:
                roles |= roles_of(snapshot, UserId(user))
        return frozenset(roles)
