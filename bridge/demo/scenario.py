"""The seed's procurement № 26908, played against a local homeserver as the ERP would play it."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from standardwebhooks import Webhook

from ..config import Config
from ..core import BridgeCore
from ..db.queue import WorkQueue
from ..localsynapse import LocalSynapse
from .pki import authority, issue
from .seed import seed_vote

log = logging.getLogger("bridge.demo")

PASSWORD = "demo-password"  # noqa: S105 - a throwaway local homeserver
PROCUREMENT = "26908"


@dataclass(frozen=True)
class Person:
    localpart: str
    name: str
    role: str


MANAGER = Person("konovalov", "Коновалов А.С.", "категорийный менеджер")
TEAM = Person("ivanova", "Иванова М.А.", "команда закупки")
WAREHOUSE = Person("sklad", "Склад «Лахта Центр»", "логистика и склад")
COMMISSION = (
    Person("petrov", "Петров А.С.", "председатель комиссии"),
    Person("kononov", "Кононов А.С.", "член комиссии"),
    Person("petrenko", "Петренко Н.П.", "член комиссии"),
    Person("vasiliev", "Иван Васильев", "член комиссии"),
    Person("sidorova", "Сидорова Е.В.", "член комиссии"),
    Person("morozov", "Морозов Д.И.", "член комиссии"),
    Person("volkova", "Волкова А.П.", "член комиссии"),
    Person("zaitsev", "Зайцев К.Н.", "член комиссии"),
    Person("lebedeva", "Лебедева О.С.", "член комиссии"),
    Person("sokolov", "Соколов Р.М.", "член комиссии"),
)
SUPPLIERS = (
    ("torgprofi", "ООО «ТоргПрофи»", Person("kirillov", "Степан Кириллов", "поставщик")),
    ("stalinvest", "ООО «СтальИнвест»", Person("orlov", "Орлов В.Г.", "поставщик")),
    ("sevmet", "АО «Северный металл»", Person("belova", "Белова Н.А.", "поставщик")),
)
CAST = (MANAGER, TEAM, WAREHOUSE, *COMMISSION, *(p for _, _, p in SUPPLIERS))

# The demo's certification authority and the approvers' signing certificates.
ROOT = authority("Демо УЦ «Газпром_Сибирь»")
SIGNERS = {p.localpart: issue(p.name, ROOT) for p in (COMMISSION[2], COMMISSION[0])}
TKA = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)


class Scenario:
    def __init__(
        self, synapse: LocalSynapse, config: Config, core: BridgeCore, vote_seconds: int = 25
    ) -> None:
        self.vote_seconds = vote_seconds
        self.synapse = synapse
        self.config = config
        self.core = core
        self.domain = synapse.server_name
        self.tokens: dict[str, str] = {}
        self.webhook = Webhook(config["webhooks.secrets"][0])
        self.version = 0
        self.seen: dict[str, list[str]] = {}

    def mxid(self, person: Person) -> str:
        return f"@{person.localpart}:{self.domain}"

    # The story ------------------------------------------------------------------------------

    async def play(self) -> None:
        for person in CAST:
            resp = await self.synapse.register(person.localpart, PASSWORD, displayname=person.name)
            self.tokens[person.localpart] = resp["access_token"]
        self.say("1. The ERP opens procurement № 26908: the organisation chat appears.")
        await self.upsert("request")
        self.say("2. Offers: a confidential chat with each supplier.")
        await self.upsert("offers")
        await self.everyone_accepts()
        torgprofi = await self.room("supplier:torgprofi")
        await self.send(
            SUPPLIERS[0][2],
            torgprofi,
            "Добрый день! Направляем коммерческое "
            "предложение: арматура А500С, 36 т, поставка за 2 дня.",
        )
        await self.send(
            MANAGER,
            torgprofi,
            "Спасибо, Степан. Уточните, пожалуйста, "
            "стоимость доставки до объекта «Лахта Центр, корпус 2».",
        )
        stal = await self.room("supplier:stalinvest")
        await self.send(SUPPLIERS[1][2], stal, "Готовы поставить 36 т за 5 дней.")
        self.say("3. Commission: the commission chat and the specification chat open.")
        await self.upsert(
            "commission", specifications=[{"id": "K987-02.02-001", "supplier_id": "torgprofi"}]
        )
        await self.everyone_accepts()
        org = await self.room("org")
        await self.post_webhook(
            "notice.posted",
            {
                "procurement_id": PROCUREMENT,
                "room": "org",
                "markdown": "**Этап «Комиссия»**: предложения собраны, спецификация "
                "K987-02.02-001 передана комиссии.",
            },
        )
        await self.send(TEAM, org, "Коллеги, ТКА по предложениям готов, выложу в чат.")
        await self.commission_votes()
        await self.approvals()
        self.say("6. Contract: the supplier and commission chats become read-only archives.")
        await self.upsert(
            "contract", specifications=[{"id": "K987-02.02-001", "supplier_id": "torgprofi"}]
        )
        await self.everyone_accepts()

    async def commission_votes(self) -> None:
        self.say("4. The commission votes on specification 174/741-12.21-002: 6 of 10 answer,")
        self.say("   then the vote closes at its deadline and the result goes back to the ERP.")
        closes = datetime.now(UTC) + timedelta(seconds=self.vote_seconds)
        await self.post_webhook("vote.requested", seed_vote(PROCUREMENT, "V-174", closes))
        await self.settle()
        room = await self.room("commission")
        poll = await self.poll_event_id("V-174")
        answers = ["for", "for", "for", "against", "for", "abstain"]
        for person, choice in zip(COMMISSION[:6], answers, strict=True):
            await self.send_event(
                person,
                room,
                "org.matrix.msc3381.poll.response",
                {
                    "org.matrix.msc3381.poll.response": {"answers": [choice]},
                    "m.relates_to": {"rel_type": "m.reference", "event_id": poll},
                },
            )
        await self.send(COMMISSION[3], room, "Против: срок поставки 2 дня нереалистичен.")
        while not (vote := await self.core.votes.get(PROCUREMENT, "V-174")) or not vote.finished:
            await asyncio.sleep(0.5)
        await self.settle()

    async def approvals(self) -> None:
        self.say("5. The ТКА goes for sequential approval with electronic signatures: Петренко")
        self.say("   and then Петров sign and approve. A contract amendment waits for Коновалов.")
        tka = {
            "type": "Торгово-коммерческий анализ (ТКА)",
            "number": "234/01-02",
            "series": "01",
            "valid_until": "2022-12-31",
            "filename": "TKA_234-01-02.pdf",
            "mime_type": "application/pdf",
            "content_base64": base64.b64encode(TKA).decode(),
            "sha256": hashlib.sha256(TKA).hexdigest(),
        }
        await self.post_webhook(
            "approval.requested",
            {
                "procurement_id": PROCUREMENT,
                "approval_id": "A-17",
                "initiator": self.mxid(MANAGER),
                "document": tka,
                "mode": "sequential",
                "group": "Руководители верхнего уровня",
                "approvers": [self.mxid(COMMISSION[2]), self.mxid(COMMISSION[0])],
                "require_signature": True,
                "deadline": (datetime.now(UTC) + timedelta(days=5)).isoformat(),
            },
        )
        amendment = {
            **tka,
            "type": "ДС к договору",
            "number": "234/01-02_01",
            "filename": "DS_234-01-02_01.pdf",
        }
        await self.post_webhook(
            "approval.requested",
            {
                "procurement_id": PROCUREMENT,
                "approval_id": "A-18",
                "initiator": self.mxid(TEAM),
                "document": amendment,
                "mode": "parallel",
                "group": "Категорийные менеджеры",
                "approvers": [self.mxid(MANAGER), self.mxid(TEAM)],
                "require_signature": False,
            },
        )
        await self.settle()
        await self.everyone_accepts()
        room = await self.room("approval:A-17")
        # The approval keeper posts the document and its card once the room exists.
        while not ((a := await self.core.approvals.get(PROCUREMENT, "A-17")) and a.card_outbox_id):
            await asyncio.sleep(0.2)
        await self.settle()
        card = await self.card_event_id("A-17")
        for person in (COMMISSION[2], COMMISSION[0]):
            signature = SIGNERS[person.localpart].sign(TKA)
            await self.send_file(person, room, "TKA_234-01-02.pdf.p7s", signature)
            await self.settle()
            # The card's button, as a click in Element sends it.
            await self.click(person, room, card, "✅ Да")
            await self.settle()
        await self.click(
            TEAM,
            await self.room("approval:A-18"),
            await self.card_event_id("A-18"),
            "✅ Да",
        )
        await self.settle()

    async def card_event_id(self, approval_id: str) -> str:
        while not (
            (approval := await self.core.approvals.get(PROCUREMENT, approval_id))
            and approval.card_outbox_id
            and (event_id := await self.core.outbox.event_id_of(approval.card_outbox_id))
        ):
            await asyncio.sleep(0.2)
        return event_id

    async def click(self, person: Person, room_id: str, event_id: str, key: str) -> None:
        await self.send_event(
            person,
            room_id,
            "m.reaction",
            {"m.relates_to": {"rel_type": "m.annotation", "event_id": event_id, "key": key}},
        )

    async def send_file(self, person: Person, room_id: str, filename: str, data: bytes) -> None:
        async with (
            await self.client(person) as session,
            session.post(
                f"/_matrix/media/v3/upload?filename={filename}",
                data=data,
                headers={"Content-Type": "application/pkcs7-signature"},
            ) as resp,
        ):
            resp.raise_for_status()
            mxc = (await resp.json())["content_uri"]
        await self.send_event(
            person,
            room_id,
            "m.room.message",
            {
                "msgtype": "m.file",
                "body": filename,
                "filename": filename,
                "url": mxc,
                "info": {"mimetype": "application/pkcs7-signature", "size": len(data)},
            },
        )

    async def poll_event_id(self, vote_id: str) -> str:
        vote = await self.core.votes.get(PROCUREMENT, vote_id)
        assert vote is not None
        assert vote.poll_outbox_id is not None
        while (event_id := await self.core.outbox.event_id_of(vote.poll_outbox_id)) is None:
            await asyncio.sleep(0.2)
        return event_id

    def say(self, line: str) -> None:
        print(line, flush=True)

    # The ERP's side -------------------------------------------------------------------------

    def snapshot(self, stage: str, **extra: Any) -> dict[str, Any]:
        self.version += 1
        data: dict[str, Any] = {
            "id": PROCUREMENT,
            "version": self.version,
            "number": PROCUREMENT,
            "title": "Поставка арматуры А500С",
            "object": {"id": "lakhta-2", "name": "Лахта Центр, корпус 2"},
            "organization": "Газпром_Сибирь",
            "url": "https://erp.example/procurements/26908",
            "stage": stage,
            "manager": self.mxid(MANAGER),
            "team": [self.mxid(TEAM)],
            "logistics": [self.mxid(WAREHOUSE)],
        }
        if stage != "request":
            data["suppliers"] = [
                {"id": sid, "name": name, "members": [self.mxid(p)]} for sid, name, p in SUPPLIERS
            ]
        if stage in ("commission", "contract"):
            data["commission"] = {
                "id": "15000.16969",
                "name": "Комиссия № 15000.16969 от 30.11.2022",
                "chair": self.mxid(COMMISSION[0]),
                "members": [self.mxid(p) for p in COMMISSION],
            }
        return data | extra

    async def upsert(self, stage: str, **extra: Any) -> None:
        await self.post_webhook("procurement.upserted", self.snapshot(stage, **extra))
        await self.settle()

    async def post_webhook(self, event_type: str, data: dict[str, Any]) -> None:
        body = json.dumps({"type": event_type, "data": data}, ensure_ascii=False)
        msg_id = f"msg_{uuid.uuid4().hex}"
        now = int(time.time())
        headers = {
            "webhook-id": msg_id,
            "webhook-timestamp": str(now),
            "webhook-signature": self.webhook.sign(msg_id, datetime.fromtimestamp(now, UTC), body),
            "Content-Type": "application/json",
        }
        url = f"{self.config['appservice.address']}/api/v1/webhooks"
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, data=body.encode(), headers=headers) as resp,
        ):
            if resp.status != 202:
                raise RuntimeError(f"webhook refused: {resp.status} {await resp.text()}")

    async def settle(self, wait_s: float = 60.0) -> None:
        """Waits until the bridge has nothing left to do (several checks: echoes add work)."""
        queues: list[WorkQueue[Any]] = [
            self.core.webhooks,
            self.core.inbox,
            self.core.procurements,
            self.core.outbox,
        ]
        deadline = time.monotonic() + wait_s
        quiet = 0
        while quiet < 3:
            if time.monotonic() > deadline:
                raise TimeoutError("the bridge did not settle")
            depths = [await q.depth() for q in queues]
            quiet = quiet + 1 if not any(depths) else 0
            await asyncio.sleep(0.2)

    # The users' side ------------------------------------------------------------------------

    async def client(self, person: Person) -> aiohttp.ClientSession:
        headers = {"Authorization": f"Bearer {self.tokens[person.localpart]}"}
        return aiohttp.ClientSession(self.synapse.url, headers=headers)

    async def everyone_accepts(self) -> None:
        """Scripted users accept their invites, so the rooms are there when they log in."""
        for person in CAST:
            async with await self.client(person) as session:
                async with session.get("/_matrix/client/v3/sync?timeout=0") as resp:
                    invites = (await resp.json()).get("rooms", {}).get("invite", {})
                for room_id in invites:
                    async with session.post(f"/_matrix/client/v3/join/{room_id}") as resp:
                        resp.raise_for_status()
        await self.settle()

    async def room(self, key: str) -> str:
        room_id = await self.core.rooms.room_id_of(PROCUREMENT, key)
        if room_id is None:
            raise RuntimeError(f"no room {key}")
        return room_id

    async def send(self, person: Person, room_id: str, text: str) -> None:
        await self.send_event(
            person, room_id, "m.room.message", {"msgtype": "m.text", "body": text}
        )

    async def send_event(
        self, person: Person, room_id: str, event_type: str, content: dict[str, Any]
    ) -> None:
        async with await self.client(person) as session:
            url = f"/_matrix/client/v3/rooms/{room_id}/send/{event_type}/{uuid.uuid4().hex}"
            async with session.put(url, json=content) as resp:
                resp.raise_for_status()

    # What to tell the person at the keyboard --------------------------------------------------

    async def views(self) -> dict[str, list[str]]:
        """Each person's procurement rooms, by name, as the homeserver shows them."""
        views: dict[str, list[str]] = {}
        for person in CAST:
            async with await self.client(person) as session:
                async with session.get("/_matrix/client/v3/joined_rooms") as resp:
                    rooms = (await resp.json())["joined_rooms"]
                names = []
                for room_id in rooms:
                    async with session.get(
                        f"/_matrix/client/v3/rooms/{room_id}/state/m.room.name/"
                    ) as resp:
                        if resp.status == 200:
                            names.append((await resp.json())["name"])
                views[person.localpart] = sorted(names)
        return views

    async def summary(self) -> str:
        views = await self.views()
        lines = [
            "",
            "Procurement bridge demo is running.",
            f"  Homeserver: {self.synapse.url}  (server name: {self.domain})",
            "  Log in with Element (Element Desktop, or Element Web such as app.element.io):",
            f"    Sign in → Edit homeserver → {self.synapse.url}",
            f"    Password for every demo user: {PASSWORD}",
            "",
            "  Who is who, and what each of them sees:",
        ]
        for person in CAST:
            if person in COMMISSION[3:]:
                continue
            lines.append(f"    {person.localpart:<10} {person.name} — {person.role}")
            lines += [f"               · {name}" for name in views[person.localpart]]
        others = ", ".join(p.localpart for p in COMMISSION[3:])
        lines += [
            f"    {others}: commission members, as petrov sees",
            "",
            f"  The bot «{self.config.bot_displayname}» ({self.config.bot_mxid}) answers "
            "«помощь» in any of these rooms or in a direct chat.",
            f"  REST API: {self.config['appservice.address']}/api/v1/procurements/{PROCUREMENT}"
            f"  (Authorization: Bearer {self.config.api_tokens[0].token})",
            f"  Health: {self.config['appservice.address']}/health",
        ]
        return "\n".join(lines)
