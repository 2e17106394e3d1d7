"""Identifier types of the domain, so signatures say which id they mean."""

from __future__ import annotations

from typing import NewType

UserId = NewType("UserId", str)  # a full Matrix ID: @local:server
RoomId = NewType("RoomId", str)
EventId = NewType("EventId", str)
ProcurementId = NewType("ProcurementId", str)
SupplierId = NewType("SupplierId", str)
RoomKey = NewType("RoomKey", str)  # "org", "supplier:<id>", "approval:<id>", … (DESIGN §3)
VoteId = NewType("VoteId", str)
ApprovalId = NewType("ApprovalId", str)
DocumentId = NewType("DocumentId", str)
