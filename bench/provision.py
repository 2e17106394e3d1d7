"""Provisioning a procurement of 50 suppliers × 3 members: the bridge vs a minimal raw script.

    .venv/bin/python bench/provision.py [--suppliers 50] [--members 3] [--rounds 3]
                                        [--concurrency 4]

One local Synapse serves both, and both have the same number of requests in flight. The raw
script makes exactly the homeserver calls the room plan needs, with the bridge's own request
bodies: one createRoom per room and space (its policy, context, parent, picture and invites; a
room as soon as its parent space exists), one m.space.child per listing (once the space and
the child exist), with `--concurrency` of these in flight, and one context card per room, sent
one at a time beside them as the bridge's outbox sends them. Nothing else. The bridge
(`bridge.provision_concurrency` = `--concurrency`) gets the same procurement as a signed
webhook on PostgreSQL and is timed until its queues are empty: every room created, listed and
carded. Rounds alternate; medians are shown.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from ruamel.yaml import YAML
from standardwebhooks import Webhook

from bridge.config import DEFAULT_PROVISION_CONCURRENCY, Config
from bridge.core import BridgeCore
from bridge.domain.ids import UserId
from bridge.domain.locale import Locale
from bridge.domain.plan import AVATAR_KINDS, RoomSpec, plan_rooms
from bridge.domain.snapshot import parse_snapshot
from bridge.localsynapse import LocalSynapse, free_port
from bridge.matrix.reconciler import (
    context_card_content,
    create_room_body,
    space_child_content,
    space_parent_state,
)

TEMPLATE = Path(__file__).resolve().parents[1] / "bridge" / "example-config.yaml"
ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"
DOMAIN = "localhost"
BOT = UserId(f"@procbot:{DOMAIN}")


def snapshot(pid: str, suppliers: int, members: int) -> dict[str, Any]:
    return {
        "id": pid,
        "version": 1,
        "number": pid,
        "title": "Поставка арматуры А500С",
        "stage": "offers",
        "manager": f"@manager:{DOMAIN}",
        "suppliers": [
            {
                "id": f"s{i}",
                "name": f"ООО «Поставщик {i}»",
                "members": [f"@s{i}m{j}:{DOMAIN}" for j in range(members)],
            }
            for i in range(suppliers)
        ],
    }


async def raw_provision(
    session: aiohttp.ClientSession,
    data: dict[str, Any],
    avatars: Mapping[str, str],
    concurrency: int,
) -> None:
    plan = plan_rooms(parse_snapshot(data), (), frozenset(), Locale.RU)
    slots = asyncio.Semaphore(concurrency)
    room_ids: dict[str, str] = {}
    made = {spec.key: asyncio.Event() for spec in plan.specs}
    cards: asyncio.Queue[RoomSpec | None] = asyncio.Queue()

    async def create(spec: RoomSpec) -> None:
        if spec.parent is not None:
            await made[spec.parent].wait()
        body = create_room_body(
            spec,
            bot=BOT,
            federate=False,
            creation_id=uuid.uuid4().hex,
            parent=None
            if spec.parent is None
            else space_parent_state(room_ids[spec.parent], DOMAIN),
            avatar=avatars.get(spec.avatar),
            invites=sorted(spec.members),
        )
        async with slots, session.post("/_matrix/client/v3/createRoom", json=body) as resp:
            resp.raise_for_status()
            room_ids[spec.key] = (await resp.json())["room_id"]
        made[spec.key].set()
        if not spec.is_space:
            cards.put_nowait(spec)

    async def list_child(space: str, child: str) -> None:
        await made[space].wait()
        await made[child].wait()
        spec = plan.get(child)
        assert spec is not None
        url = f"/_matrix/client/v3/rooms/{room_ids[space]}/state/m.space.child/{room_ids[child]}"
        content = space_child_content(DOMAIN, spec.order)
        async with slots, session.put(url, json=content) as resp:
            resp.raise_for_status()

    async def send_cards() -> None:
        while (spec := await cards.get()) is not None:
            room_id = room_ids[spec.key]
            url = f"/_matrix/client/v3/rooms/{room_id}/send/m.room.message/{uuid.uuid4()}"
            async with session.put(url, json=context_card_content(spec, Locale.RU)) as resp:
                resp.raise_for_status()

    sender = asyncio.create_task(send_cards())
    await asyncio.gather(
        *(create(spec) for spec in plan.specs),
        *(
            list_child(space, child)
            for space, children in plan.children.items()
            for child in children
        ),
    )
    cards.put_nowait(None)
    await sender


async def bridge_provision(core: BridgeCore, secret: str, url: str, data: dict[str, Any]) -> None:
    body = json.dumps({"type": "procurement.upserted", "data": data}, ensure_ascii=False)
    msg_id = f"msg_{uuid.uuid4().hex}"
    now = int(time.time())
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(now),
        "webhook-signature": Webhook(secret).sign(msg_id, datetime.fromtimestamp(now, UTC), body),
        "Content-Type": "application/json",
    }
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}/api/v1/webhooks", data=body.encode(), headers=headers) as resp,
    ):
        assert resp.status == 202, await resp.text()
    queues = [core.webhooks, core.procurements, core.outbox]
    while True:
        await asyncio.sleep(0.02)
        if not any([await q.depth() for q in queues]):
            return


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--suppliers", type=int, default=50)
    parser.add_argument("--members", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=DEFAULT_PROVISION_CONCURRENCY)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-provision-"))
    port = free_port()
    conn = await asyncpg.connect(ADMIN_URL)
    await conn.execute('DROP DATABASE IF EXISTS "bench_provision" WITH (FORCE)')
    await conn.execute('CREATE DATABASE "bench_provision"')
    await conn.close()
    config_path = work / "config.yaml"
    template = TEMPLATE
    config_path.write_text(template.read_text())
    config = Config(str(config_path), str(template))
    config.load()
    config.update(save=False)
    synapse = LocalSynapse(work / "synapse", server_name=DOMAIN)
    config["homeserver.address"] = synapse.url
    config["homeserver.domain"] = DOMAIN
    config["appservice.address"] = f"http://127.0.0.1:{port}"
    config["appservice.port"] = port
    config["database"] = ADMIN_URL.rsplit("/", 1)[0] + "/bench_provision"
    config["bridge.provision_concurrency"] = args.concurrency
    config.fill_generated()
    config.save()
    YAML().dump(config.registration(), work / "registration.yaml")
    synapse.app_service_files = [work / "registration.yaml"]
    await synapse.start()
    core = BridgeCore(config)
    await core.start()
    try:
        await synapse.register("manager", "pw")
        for i in range(args.suppliers):
            for j in range(args.members):
                await synapse.register(f"s{i}m{j}", "pw")
        # Pictures uploaded later would send every earlier procurement through another pass.
        while len(await core.reconciler.avatars()) < len(AVATAR_KINDS):  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        headers = {"Authorization": f"Bearer {config['appservice.as_token']}"}
        raw_times, bridge_times = [], []
        async with aiohttp.ClientSession(synapse.url, headers=headers) as session:
            for round_ in range(args.rounds):
                avatars = await core.reconciler.avatars()
                data = snapshot(f"R{round_}", args.suppliers, args.members)
                start = time.perf_counter()
                await raw_provision(session, data, avatars, args.concurrency)
                raw_times.append(time.perf_counter() - start)
                data = snapshot(f"B{round_}", args.suppliers, args.members)
                start = time.perf_counter()
                await bridge_provision(
                    core, config["webhooks.secrets"][0], config["appservice.address"], data
                )
                bridge_times.append(time.perf_counter() - start)
                rooms = len(await core.rooms.of_procurement(f"B{round_}"))
                print(
                    f"round {round_}: raw {raw_times[-1]:.2f} s, bridge {bridge_times[-1]:.2f} s,"
                    f" ratio {bridge_times[-1] / raw_times[-1]:.2f} ({rooms} rooms and spaces)",
                    flush=True,
                )
    finally:
        await core.stop()
        synapse.stop()
    raw, bridge = statistics.median(raw_times), statistics.median(bridge_times)
    print(
        f"procurement of {args.suppliers} suppliers × {args.members} members, PostgreSQL,"
        f" {args.concurrency} requests in flight"
    )
    print(f"raw homeserver calls:   {raw:6.2f} s")
    print(f"bridge (webhook → all): {bridge:6.2f} s")
    print(f"ratio bridge/raw:       {bridge / raw:6.2f}   (target ≤ 1.2)")


if __name__ == "__main__":
    asyncio.run(main())
