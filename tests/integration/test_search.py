"""Search finds only what the asker may read at the time of the search: a supplier never finds
another supplier's words, and a person removed from a room no longer finds its messages."""

from __future__ import annotations

import asyncio
from typing import Any

from bridge.core import BridgeCore
from bridge.domain.answers import say
from bridge.domain.locale import Locale

from ..cast import make_cast
from ..erp import ERP
from ..matrix_user import MatrixUser
from ..talk import ask, body, html, open_dm, rooms_of
from ..waiting import wait_for

# One word per supplier, each its own stem; searched in another form than written.
WORDS = [
    ("апельсинами", "апельсин"),
    ("бегемотов", "бегемот"),
    ("вертолётом", "вертолёт"),
    ("гитарой", "гитара"),
    ("дельфинами", "дельфин"),
    ("ежевикой", "ежевика"),
    ("жасмином", "жасмин"),
    ("зеркалами", "зеркало"),
    ("изумрудов", "изумруд"),
    ("кенгуру", "кенгуру"),
]
NOTHING = say(Locale.RU, "search_none")


async def found(user: MatrixUser, room_id: str, words: str) -> str:
    return body(await ask(user, room_id, f"поиск {words}"))


async def test_search_respects_membership_at_the_time_of_the_search(
    bridge: BridgeCore, erp: ERP, user_factory: Any
) -> None:
    cast = await make_cast(user_factory, suppliers=10, commission=0)
    await erp.upsert(cast.snapshot("offers"))
    members = [supplier.members[0] for supplier in cast.suppliers]
    keys = [f"supplier:{supplier.id}" for supplier in cast.suppliers]
    manager_rooms = await rooms_of(cast.manager, set(keys))
    rooms = [(await rooms_of(m, {k}))[k] for m, k in zip(members, keys, strict=True)]
    for member, room_id, (written, _) in zip(members, rooms, WORDS, strict=True):
        await member.send_text(room_id, f"Готовы поставить партию с {written} к пятнице")
    dms = [await open_dm(m) for m in members]
    manager_dm = await open_dm(cast.manager)

    # The manager is in every supplier's room: finds every word, from the direct chat.
    async def manager_finds(written: str, stem: str) -> bool:
        return written in await found(cast.manager, manager_dm, stem)

    for written, stem in WORDS:
        await wait_for(lambda w=written, s=stem: manager_finds(w, s), what=f"{stem} found")

    # Every ordered pair: a supplier finds their own word and never another's.
    async def supplier_searches(i: int) -> list[str]:
        leaks = []
        for j, (_, stem) in enumerate(WORDS):
            answer = await found(members[i], dms[i], stem)
            if (i == j) == (answer == NOTHING):
                leaks.append(f"supplier {i} searching supplier {j}'s word: {answer!r}")
        return leaks

    results = await asyncio.gather(*(supplier_searches(i) for i in range(len(members))))
    assert [leak for leaks in results for leak in leaks] == []

    # In a room, a search covers that room alone (its answer is seen by everyone there).
    in_room = await found(cast.manager, manager_rooms[keys[0]], WORDS[1][1])
    assert in_room == NOTHING
    hit = await ask(cast.manager, manager_rooms[keys[0]], f"поиск {WORDS[0][1]}")
    assert f"https://matrix.to/#/{rooms[0]}" in html(hit).replace("%21", "!")

    # Removed from their room by the procurement system: their words are out of reach.
    cast.suppliers[0].members = []
    await erp.upsert(cast.snapshot("offers"))

    async def removed() -> bool:
        await members[0].sync()
        return rooms[0] in members[0].left

    await wait_for(removed, timeout=30, what="the supplier removed from its room")
    await wait_for(
        lambda: _finds_nothing(members[0], dms[0], WORDS[0][1]),
        what="the removed member to find nothing",
    )


async def _finds_nothing(user: MatrixUser, room_id: str, stem: str) -> bool:
    return await found(user, room_id, stem) == NOTHING
