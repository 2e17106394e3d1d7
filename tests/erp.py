"""The procurement system's side: signed webhooks to the bridge, as an ERP sends them."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import aiohttp
from standardwebhooks import Webhook


class ERP:
    def __init__(self, bridge_url: str, secret: str, api_token: str) -> None:
        self.bridge_url = bridge_url
        self.webhook = Webhook(secret)
        self.api_token = api_token

    def signed(self, body: bytes, webhook_id: str | None = None) -> dict[str, str]:
        msg_id = webhook_id or f"msg_{uuid.uuid4().hex}"
        timestamp = int(time.time())
        signature = self.webhook.sign(
            msg_id, datetime.fromtimestamp(timestamp, UTC), body.decode()
        )
        return {
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature,
            "Content-Type": "application/json",
        }

    async def send(
        self, event_type: str, data: dict[str, Any], webhook_id: str | None = None
    ) -> tuple[int, dict[str, Any]]:
        body = json.dumps({"type": event_type, "data": data}, ensure_ascii=False).encode()
        headers = self.signed(body, webhook_id)
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{self.bridge_url}/api/v1/webhooks", data=body, headers=headers) as resp,
        ):
            return resp.status, await resp.json(content_type=None)

    async def upsert(self, snapshot: dict[str, Any]) -> None:
        status, answer = await self.send("procurement.upserted", snapshot)
        assert status == 202, answer

    async def get(self, path: str) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.api_token}"}
        async with (
            aiohttp.ClientSession(headers=headers) as session,
            session.get(f"{self.bridge_url}{path}") as resp,
        ):
            return resp.status, await resp.json(content_type=None)
