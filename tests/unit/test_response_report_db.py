"""The response-time report read from a real database of the bridge's schema, SQLite and
PostgreSQL: only supplier chats, their messages around the period, the people of each side."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from mautrix.util.async_db import Database

from bridge.db import open_database
from bridge.db.reports import ResponseTimesSource
from bridge.db.store import Store
from bridge.domain.response_times import Figures
from bridge.reports import response_report

# Real PostgreSQL as well as SQLite: run with the integration tests' databases.
pytestmark = pytest.mark.integration

HOUR = 3_600_000
FROM = 1_740_787_200_000  # 2025-03-01T00:00:00Z
TO = FROM + 24 * HOUR
NOW = TO + 10 * HOUR

BOT = "@procbot:example.org"
MANAGER = "@manager:example.org"
TEAM = "@team:example.org"
ALICE = "@alice:torgprofi.example"
BOB = "@bob:torgprofi.example"
CAROL = "@carol:stalmet.example"

SNAPSHOT = {
    "id": "P-1",
    "version": 1,
    "number": "26908",
    "title": "Поставка арматуры",
    "stage": "commission",
    "manager": MANAGER,
    "team": [TEAM],
    "suppliers": [
        {"id": "torgprofi", "name": "ООО «ТоргПрофи»", "members": [ALICE, BOB]},
        {"id": "stalmet", "name": "АО «Сталь»", "members": [CAROL]},
    ],
}
ROOMS = [
    # key, room id, is a space, party
    ("org", "!org:hs", False, None),
    ("supplier:torgprofi", "!torgprofi:hs", False, "torgprofi"),
    ("supplier:stalmet", "!stalmet:hs", False, "stalmet"),
    ("supplier-space:torgprofi", "!torgprofi-space:hs", True, "torgprofi"),
    ("supplier:beton#1", "!beton-old:hs", False, None),  # made before parties were kept
    ("supplier:quiet", "!quiet:hs", False, "quiet"),
]
TEXT = {"msgtype": "m.text", "body": "Когда поставка?"}
NOTICE = {"msgtype": "m.notice", "body": "Системный помощник: статус закупки"}
EDIT = {
    "msgtype": "m.text",
    "body": "* Когда отгрузка?",
    "m.new_content": {"msgtype": "m.text", "body": "Когда отгрузка?"},
    "m.relates_to": {"rel_type": "m.replace", "event_id": "$first"},
}
EVENTS: list[tuple[str, str, int, dict[str, Any]]] = [
    # A wait answered before the period: not in it.
    ("!torgprofi:hs", ALICE, FROM - 2 * HOUR, TEXT),
    ("!torgprofi:hs", MANAGER, FROM - HOUR, TEXT),
    # In the period: answered after an hour; the edit and the bot's notice change nothing.
    ("!torgprofi:hs", ALICE, FROM + HOUR, TEXT),
    ("!torgprofi:hs", BOB, FROM + HOUR + 1, EDIT),
    ("!torgprofi:hs", BOT, FROM + HOUR + 2, NOTICE),
    ("!torgprofi:hs", MANAGER, FROM + 2 * HOUR, TEXT),
    # Begun at the period's end, answered two hours later.
    ("!torgprofi:hs", BOB, TO - HOUR, TEXT),
    ("!torgprofi:hs", TEAM, TO + HOUR, TEXT),
    # Never answered.
    ("!stalmet:hs", CAROL, FROM + 3 * HOUR, TEXT),
    # Rooms that are not supplier chats, and one that was quiet in the period.
    ("!org:hs", TEAM, FROM + HOUR, TEXT),
    ("!org:hs", MANAGER, FROM + 5 * HOUR, TEXT),
    ("!torgprofi-space:hs", ALICE, FROM + HOUR, TEXT),
    ("!quiet:hs", ALICE, FROM - 3 * HOUR, TEXT),
    ("!beton-old:hs", "@dan:beton.example", FROM + 4 * HOUR, TEXT),
    # After the report's time: not seen.
    ("!stalmet:hs", MANAGER, NOW + HOUR, TEXT),
]


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = open_database(database_url)
    await database.start()
    try:
        await fill(database)
        yield database
    finally:
        await database.stop()


async def fill(db: Database) -> None:
    await db.execute(
        "INSERT INTO procurement (id, version, stage, snapshot, updated_at) "
        "VALUES ('P-1', 1, 'commission', $1, 1)",
        json.dumps(SNAPSHOT, ensure_ascii=False),
    )
    for key, room_id, is_space, party in ROOMS:
        await db.execute(
            "INSERT INTO managed_room (procurement_id, room_key, room_id, is_space, creation_id, "
            "create_tried, party) VALUES ('P-1', $1, $2, $3, $4, true, $5)",
            key,
            room_id,
            is_space,
            uuid.uuid4().hex,
            party,
        )
    member = {"type": "m.room.member", "state_key": ALICE, "content": {"membership": "join"}}
    for room_id, sender, ts, content in [*EVENTS, ("!torgprofi:hs", ALICE, FROM, member)]:
        await store_event(db, room_id, sender, ts, content)


async def store_event(db: Database, room_id: str, sender: str, ts: int, content: Any) -> None:
    """As the inbox stores what the homeserver pushes."""
    is_state = "state_key" in content
    event = {
        "event_id": f"${uuid.uuid4().hex}",
        "room_id": room_id,
        "sender": sender,
        "type": content["type"] if is_state else "m.room.message",
        "origin_server_ts": ts,
        "content": content["content"] if is_state else content,
        **({"state_key": content["state_key"]} if is_state else {}),
    }
    await db.execute(
        "INSERT INTO matrix_event (event_id, room_id, sender, type, state_key, origin_ts, event, "
        "ephemeral, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, false, $6)",
        event["event_id"],
        room_id,
        sender,
        event["type"],
        event.get("state_key"),
        ts,
        json.dumps(event, ensure_ascii=False),
    )


async def test_only_supplier_chats_active_in_the_period_are_read(db: Database) -> None:
    chats = await ResponseTimesSource(db).supplier_chats(FROM, TO, BOT)
    assert sorted(c.room_id for c in chats) == ["!beton-old:hs", "!stalmet:hs", "!torgprofi:hs"]
    torgprofi = next(c for c in chats if c.room_id == "!torgprofi:hs")
    assert (torgprofi.supplier_id, torgprofi.supplier_name) == ("torgprofi", "ООО «ТоргПрофи»")
    assert torgprofi.supplier_side == {ALICE, BOB}
    assert torgprofi.organisation_side == {MANAGER, TEAM}
    assert (torgprofi.procurement_id, torgprofi.procurement_number) == ("P-1", "26908")
    old = next(c for c in chats if c.room_id == "!beton-old:hs")
    assert (old.supplier_id, old.supplier_side) == ("beton", frozenset())


async def test_the_messages_are_the_chats_whole_timelines_up_to_now(db: Database) -> None:
    messages = await ResponseTimesSource(db).supplier_messages(FROM, TO, NOW)
    seen = [(m.room_id, m.sender, m.ts - FROM) for m in messages]
    assert seen == [
        ("!beton-old:hs", "@dan:beton.example", 4 * HOUR),
        ("!stalmet:hs", CAROL, 3 * HOUR),
        ("!torgprofi:hs", ALICE, -2 * HOUR),
        ("!torgprofi:hs", MANAGER, -HOUR),
        ("!torgprofi:hs", ALICE, HOUR),
        ("!torgprofi:hs", MANAGER, 2 * HOUR),
        ("!torgprofi:hs", BOB, 23 * HOUR),
        ("!torgprofi:hs", TEAM, 25 * HOUR),
    ]


async def test_the_report_from_the_store(db: Database) -> None:
    store = Store(db, callbacks_enabled=False, bot=BOT)
    made = await response_report(store, FROM, TO, 4 * 3600, NOW)
    assert made.total == Figures(2, HOUR, 2 * HOUR, 1, 0)
    assert [(r.chat.supplier_id, r.figures.answered) for r in made.rooms] == [
        ("stalmet", 0),
        ("torgprofi", 2),
    ]
    [late] = made.unanswered
    assert (late.chat.room_id, late.since, late.age_ms) == (
        "!stalmet:hs",
        FROM + 3 * HOUR,
        31 * HOUR,
    )
