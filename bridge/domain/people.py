"""What a person is in a procurement (DESIGN §3): the roles commands are allowed by."""

from __future__ import annotations

from collections.abc import Iterable

from .commands import Role
from .ids import UserId
from .snapshot import Snapshot


def roles_of(
    snapshot: Snapshot, user: UserId, approvers: Iterable[UserId] = ()
) -> frozenset[Role]:
    """The person's roles in the procurement; `approvers` are those of the approvals that
    count where the question is asked (one approval's room, or all of them)."""
    roles: set[Role] = set()
    if user == snapshot.manager:
        roles.add(Role.MANAGER)
    if user in snapshot.team:
        roles.add(Role.TEAM)
    if user in snapshot.logistics:
        roles.add(Role.LOGISTICS)
    if snapshot.commission is not None and user in snapshot.commission.members:
        roles.add(Role.COMMISSION)
    if user in set(approvers):
        roles.add(Role.APPROVER)
    if snapshot.supplier_of(user) is not None:
        roles.add(Role.SUPPLIER)
    return frozenset(roles)
