"""A database of the first version upgrades in place: every room bound to its party, the
outbox's edits kept, votes' deadlines and approvals' requests filled in."""

from __future__ import annotations

import base64
import json

from mautrix.util.async_db import Database, UpgradeTable

from bridge.db import upgrade_table
from bridge.db.schema import v01_initial
from bridge.db.store import Store

SNAPSHOT = {
    "id": "26908",
    "version": 3,
    "title": "Поставка арматуры",
    "stage": "offers",
    "manager": "@manager:example.org",
    "suppliers": [{"id": "torgprofi", "name": "ООО «ТоргПрофи»", "members": []}],
    "specifications": [{"id": "S-1", "supplier_id": "torgprofi"}],
    "shipments": [{"id": "SH-1", "supplier_id": "torgprofi"}],
}


async def test_a_first_version_database_upgrades(database_url: str) -> None:
    first = UpgradeTable(database_name="procurement bridge")
    first.register(v01_initial.upgrade, description="Initial schema")
    db = Database.create(database_url, upgrade_table=first)
    await db.start()
    try:
        await _fill_as_version_one(db)
    finally:
        await db.stop()

    db = Database.create(database_url, upgrade_table=upgrade_table)
    await db.start()
    try:
        store = Store(db, callbacks_enabled=False)
        parties = {room.key: room.party for room in await store.rooms.of_procurement("26908")}
        assert parties == {
            "org": None,
            "supplier:torgprofi": "torgprofi",
            "supplier-space:torgprofi": "torgprofi",
            "specification:S-1": "torgprofi",
            "shipment:SH-1": "torgprofi",
            "specification:S-gone": None,
        }
        edit = await db.fetchrow(
            "SELECT relation, related_id FROM matrix_outbox WHERE dedup_key='card:edit'"
        )
        assert (edit["relation"], edit["related_id"]) == ("replace", 1)
        vote = await store.votes.get("26908", "V-1")
        assert vote is not None
        assert await store.votes.next_deadline() == 1_650_034_800_000
        approval = await store.approvals.get("26908", "A-1")
        assert approval is not None
        assert "content_base64" not in approval.request["document"]
        assert not approval.awaiting_document
        assert await store.approvals.document(approval) == b"%PDF"
    finally:
        await db.stop()


async def _fill_as_version_one(db: Database) -> None:
    await db.execute(
        "INSERT INTO procurement (id, version, stage, snapshot, updated_at) "
        "VALUES ('26908', 3, 'offers', $1, 1)",
        json.dumps(SNAPSHOT),
    )
    keys = [
        "org",
        "supplier:torgprofi",
        "supplier-space:torgprofi",
        "specification:S-1",
        "shipment:SH-1",
        "specification:S-gone",
    ]
    for n, key in enumerate(keys):
        await db.execute(
            "INSERT INTO managed_room (procurement_id, room_key, room_id, is_space, "
            "creation_id) VALUES ('26908', $1, $2, $3, $4)",
            key,
            f"!room{n}",
            key == "supplier-space:torgprofi",
            f"creation{n}",
        )
    await db.execute(
        "INSERT INTO matrix_outbox (dedup_key, room_id, event_type, content, created_at) "
        "VALUES ('card', '!room0', 'm.room.message', '{}', 1)"
    )
    await db.execute(
        "INSERT INTO matrix_outbox (dedup_key, room_id, event_type, content, edit_of, "
        "created_at) VALUES ('card:edit', '!room0', 'm.room.message', '{}', 1, 2)"
    )
    request = {"closes_at": "2022-04-15T18:00:00+03:00"}
    await db.execute(
        "INSERT INTO vote (procurement_id, vote_id, room_id, request, voters, created_at) "
        "VALUES ('26908', 'V-1', '!room0', $1, '[]', 1)",
        json.dumps(request),
    )
    content = base64.b64encode(b"%PDF").decode()
    approval = {"document": {"filename": "TKA.pdf", "content_base64": content}}
    await db.execute(
        "INSERT INTO approval (procurement_id, approval_id, request, document, created_at) "
        "VALUES ('26908', 'A-1', $1, $2, 1)",
        json.dumps(approval),
        b"%PDF",
    )
