"""What the response-time report reads: the supplier chats that had messages in a period, the
people of each side of them, and their messages."""

from __future__ import annotations

import json

from mautrix.util.async_db import Database

from ..domain.identity import shown_subject
from ..domain.ids import RoomId, SupplierId, UserId
from ..domain.response_times import ChatMessage, SupplierChat, chat_message, supplier_chat
from ..domain.snapshot import Snapshot, parse_snapshot

# Supplier chats ("supplier:<id>", retired ones "supplier:<id>#<n>" included; not the
# suppliers' spaces) with a message in [$1, $2).
_ACTIVE_SUPPLIER_ROOMS = (
    "SELECT DISTINCT m.room_id FROM matrix_event m "
    "JOIN managed_room r ON r.room_id = m.room_id "
    "WHERE m.type = 'm.room.message' AND m.origin_ts >= $1 AND m.origin_ts < $2 "
    "AND r.room_key LIKE 'supplier:%' AND NOT r.is_space"
)


class ResponseTimesSource:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def supplier_chats(
        self, from_ms: int, to_ms: int, bot: str | None = None
    ) -> list[SupplierChat]:
        """The supplier chats with a message in [from_ms, to_ms), each with the people of its
        sides as its procurement's latest snapshot names them."""
        rows = await self.db.fetch(
            "SELECT r.room_id, r.room_key, r.party, p.id AS procurement_id, p.snapshot "  # noqa: S608
            "FROM managed_room r JOIN procurement p ON p.id = r.procurement_id "
            f"WHERE r.room_id IN ({_ACTIVE_SUPPLIER_ROOMS}) ORDER BY r.procurement_id, r.room_key",
            from_ms,
            to_ms,
        )
        snapshots: dict[str, Snapshot] = {}
        chats = []
        for row in rows:
            procurement_id = row["procurement_id"]
            if procurement_id not in snapshots:
                snapshots[procurement_id] = parse_snapshot(json.loads(row["snapshot"]))
            chats.append(
                supplier_chat(
                    RoomId(row["room_id"]),
                    _party(row["room_key"], row["party"]),
                    snapshots[procurement_id],
                    UserId(bot) if bot is not None else None,
                )
            )
        return chats

    async def supplier_messages(
        self, from_ms: int, to_ms: int, until_ms: int
    ) -> list[ChatMessage]:
        """Every message before `until_ms` of the supplier chats with a message in
        [from_ms, to_ms): the earlier ones tell whether a wait was open when the period began,
        the later ones when a wait begun in it was answered."""
        rows = await self.db.fetch(
            "SELECT seq, event FROM matrix_event "  # noqa: S608
            "WHERE type = 'm.room.message' AND origin_ts < $3 "
            f"AND room_id IN ({_ACTIVE_SUPPLIER_ROOMS}) ORDER BY room_id, origin_ts, seq",
            from_ms,
            to_ms,
            until_ms,
        )
        messages = (chat_message(row["seq"], json.loads(row["event"])) for row in rows)
        return [message for message in messages if message is not None]


def _party(room_key: str, party: str | None) -> SupplierId:
    """The supplier a chat belongs to; rooms made before parties were stored name it in the
    key."""
    if party is not None:
        return SupplierId(party)
    return SupplierId(shown_subject(room_key.partition(":")[2]))
