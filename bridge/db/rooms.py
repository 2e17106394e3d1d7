"""Managed rooms (procurement, key → room id) and their state as last seen or set."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from mautrix.util.async_db import Database


@dataclass(frozen=True, slots=True)
class ManagedRoom:
    procurement_id: str
    key: str
    room_id: str | None
    is_space: bool
    creation_id: str
    create_tried: bool
    party: str | None = None  # the supplier whose members it may hold; None: the buyer's only
    create_tried_at: int | None = None  # ms; None before the bridge kept it


StateMap = dict[tuple[str, str], dict[str, Any]]


class Rooms:
    def __init__(self, db: Database) -> None:
        self.db = db

    # Managed rooms ---------------------------------------------------------------------------

    async def of_procurement(self, procurement_id: str) -> list[ManagedRoom]:
        rows = await self.db.fetch(
            f"SELECT {_COLUMNS} "  # noqa: S608
            "FROM managed_room WHERE procurement_id=$1 ORDER BY room_key",
            procurement_id,
        )
        return [_managed(r) for r in rows]

    async def by_room_id(self, room_id: str) -> ManagedRoom | None:
        row = await self.db.fetchrow(
            f"SELECT {_COLUMNS} "  # noqa: S608
            "FROM managed_room WHERE room_id=$1",
            room_id,
        )
        return _managed(row) if row else None

    async def room_id_of(self, procurement_id: str, key: str) -> str | None:
        room_id: str | None = await self.db.fetchval(
            "SELECT room_id FROM managed_room WHERE procurement_id=$1 AND room_key=$2",
            procurement_id,
            key,
        )
        return room_id

    async def intend(
        self, procurement_id: str, key: str, is_space: bool, party: str | None
    ) -> ManagedRoom:
        """The row for a room about to be created (made once, with a fresh creation id), bound
        to its party for good."""
        await self.db.execute(
            "INSERT INTO managed_room (procurement_id, room_key, is_space, creation_id, party) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (procurement_id, room_key) DO NOTHING",
            procurement_id,
            key,
            is_space,
            uuid.uuid4().hex,
            party,
        )
        row = await self.db.fetchrow(
            f"SELECT {_COLUMNS} "  # noqa: S608
            "FROM managed_room WHERE procurement_id=$1 AND room_key=$2",
            procurement_id,
            key,
        )
        return _managed(row)

    async def retire(self, procurement_id: str, key: str, retired_key: str) -> None:
        """Moves a room off its key for good (see domain.identity): the key is free for a new
        room, and the old one stays an archive under `retired_key`."""
        await self.db.execute(
            "UPDATE managed_room SET room_key=$3 WHERE procurement_id=$1 AND room_key=$2",
            procurement_id,
            key,
            retired_key,
        )

    async def mark_create_tried(self, creation_id: str, now: int) -> None:
        await self.db.execute(
            "UPDATE managed_room SET create_tried=true, create_tried_at=$2 WHERE creation_id=$1",
            creation_id,
            now,
        )

    async def mark_create_untried(self, creation_id: str) -> None:
        """The createRoom never reached the homeserver: nothing of it can exist."""
        await self.db.execute(
            "UPDATE managed_room SET create_tried=false WHERE creation_id=$1", creation_id
        )

    async def bind(self, creation_id: str, room_id: str, now: int) -> bool:
        """Records the room a creation made; False if it was bound already."""
        bound = await self.db.fetchval(
            "UPDATE managed_room SET room_id=$2, created_at=$3 "
            "WHERE creation_id=$1 AND room_id IS NULL RETURNING room_id",
            creation_id,
            room_id,
            now,
        )
        return bound is not None

    async def conversation_room_ids(self) -> list[str]:
        """The rooms people write in: every managed room but spaces, and the direct chats."""
        rows = await self.db.fetch(
            "SELECT room_id FROM managed_room WHERE room_id IS NOT NULL AND NOT is_space "
            "UNION SELECT room_id FROM direct_chat ORDER BY room_id"
        )
        return [r["room_id"] for r in rows]

    async def all_room_ids(self) -> set[str]:
        rows = await self.db.fetch("SELECT room_id FROM managed_room WHERE room_id IS NOT NULL")
        return {r["room_id"] for r in rows}

    # Room state ------------------------------------------------------------------------------

    async def state_of(self, room_ids: Iterable[str]) -> dict[str, StateMap]:
        ids = list(room_ids)
        result: dict[str, StateMap] = {room_id: {} for room_id in ids}
        if not ids:
            return result
        # One query for the whole procurement: a room's state is read on every pass.
        placeholders = ", ".join(f"${i + 1}" for i in range(len(ids)))
        rows = await self.db.fetch(
            f"SELECT room_id, type, state_key, content FROM room_state "  # noqa: S608
            f"WHERE room_id IN ({placeholders})",
            *ids,
        )
        for r in rows:
            result[r["room_id"]][(r["type"], r["state_key"])] = json.loads(r["content"])
        return result

    async def joined_by(self, user_id: str) -> list[ManagedRoom]:
        """The managed rooms (not spaces) the person is in now, as the homeserver last told."""
        members = await self.db.fetch(
            "SELECT room_id, content FROM room_state WHERE type='m.room.member' AND state_key=$1",
            user_id,
        )
        room_ids = [
            r["room_id"] for r in members if json.loads(r["content"]).get("membership") == "join"
        ]
        if not room_ids:
            return []
        placeholders = ", ".join(f"${i + 1}" for i in range(len(room_ids)))
        rows = await self.db.fetch(
            f"SELECT {_COLUMNS} FROM managed_room "  # noqa: S608
            f"WHERE room_id IN ({placeholders}) AND NOT is_space "
            "ORDER BY procurement_id, room_key",
            *room_ids,
        )
        return [_managed(r) for r in rows]

    async def display_names(self, room_id: str) -> dict[str, str]:
        """Members' display names as their membership events give them."""
        state = (await self.state_of([room_id]))[room_id]
        return {
            key: str(content["displayname"])
            for (kind, key), content in state.items()
            if kind == "m.room.member" and content.get("displayname")
        }

    async def set_state(
        self, room_id: str, event_type: str, state_key: str, content: dict[str, Any]
    ) -> None:
        await self.set_states(room_id, [(event_type, state_key, content)])

    async def set_states(
        self, room_id: str, states: Iterable[tuple[str, str, dict[str, Any]]]
    ) -> None:
        rows = [
            (room_id, event_type, state_key, json.dumps(content, ensure_ascii=False))
            for event_type, state_key, content in states
        ]
        await self.db.executemany(
            "INSERT INTO room_state (room_id, type, state_key, content) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (room_id, type, state_key) DO UPDATE SET content=excluded.content",
            rows,
        )

    async def set_state_events(self, room_id: str, events: Iterable[dict[str, Any]]) -> None:
        """Records the room's state as the homeserver answers `GET …/state` (whole events)."""
        await self.set_states(room_id, [(e["type"], e["state_key"], e["content"]) for e in events])

    # Incidents -------------------------------------------------------------------------------

    async def record_incident(
        self,
        room_id: str,
        event_id: str,
        kind: str,
        sender: str | None,
        target_event_id: str | None,
        now: int,
    ) -> bool:
        """Records what policy could not stop; False if this event was recorded before."""
        recorded = await self.db.fetchval(
            "INSERT INTO room_incident (room_id, event_id, kind, sender, target_event_id, "
            "detected_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (event_id) DO NOTHING "
            "RETURNING id",
            room_id,
            event_id,
            kind,
            sender,
            target_event_id,
            now,
        )
        return recorded is not None

    async def incidents(self, room_id: str) -> list[dict[str, Any]]:
        rows = await self.db.fetch(
            "SELECT event_id, kind, sender, target_event_id, detected_at FROM room_incident "
            "WHERE room_id=$1 ORDER BY id",
            room_id,
        )
        return [dict(r) for r in rows]


_COLUMNS = (
    "procurement_id, room_key, room_id, is_space, creation_id, create_tried, party, "
    "create_tried_at"
)


def _managed(row: Any) -> ManagedRoom:
    return ManagedRoom(
        procurement_id=row["procurement_id"],
        key=row["room_key"],
        room_id=row["room_id"],
        is_space=bool(row["is_space"]),
        creation_id=row["creation_id"],
        create_tried=bool(row["create_tried"]),
        party=row["party"],
        create_tried_at=row["create_tried_at"],
    )
