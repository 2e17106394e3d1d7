"""The seed's procurement № 26908, played against a local homeserver as the ERP would."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import aiohttp

from ..config import Config
from ..core import BridgeCore
from ..localsynapse import LocalSynapse

log = logging.getLogger("bridge.demo")

PASSWORD = "demo-password"  # noqa: S105 - a throwaway local homeserver


@dataclass(frozen=True)
class Person:
    localpart: str
    name: str
    role: str


MANAGER = Person("konovalov", "Коновалов А.С.", "категорийный менеджер")
CAST = (MANAGER,)


class Scenario:
    def __init__(self, synapse: LocalSynapse, config: Config, core: BridgeCore) -> None:
        self.synapse = synapse
        self.config = config
        self.core = core
        self.domain = synapse.server_name
        self.tokens: dict[str, str] = {}

    def mxid(self, person: Person) -> str:
        return f"@{person.localpart}:{self.domain}"

    async def play(self) -> None:
        for person in CAST:
            resp = await self.synapse.register(person.localpart, PASSWORD, displayname=person.name)
            self.tokens[person.localpart] = resp["access_token"]
        await self._manager_asks_for_help()

    async def _manager_asks_for_help(self) -> None:
        headers = {"Authorization": f"Bearer {self.tokens[MANAGER.localpart]}"}
        async with aiohttp.ClientSession(self.synapse.url, headers=headers) as session:
            body = {
                "invite": [self.config.bot_mxid],
                "is_direct": True,
                "preset": "trusted_private_chat",
            }
            async with session.post("/_matrix/client/v3/createRoom", json=body) as resp:
                room_id = (await resp.json())["room_id"]
            self.dm_room = room_id

    def summary(self) -> str:
        lines = [
            "",
            "Procurement bridge demo is running.",
            f"  Homeserver: {self.synapse.url}  (server name: {self.domain})",
            "  Log in with Element (https://app.element.io or Element Desktop):",
            f"    Sign in → Edit homeserver → {self.synapse.url}",
            f"    Password for every demo user: {PASSWORD}",
            "",
            "  Users:",
        ]
        lines += [f"    {p.localpart:<12} {p.name} — {p.role}" for p in CAST]
        lines += [
            "",
            f"  Talk to the bot «{self.config.bot_displayname}» ({self.config.bot_mxid}):",
            "    start a direct chat with it and write «помощь».",
            f"  Bridge health: {self.config['appservice.address']}/health",
        ]
        return "\n".join(lines)
