"""A person using Matrix, through mautrix's client API: what Element would do, scripted."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import aiohttp
from mautrix.api import HTTPAPI, Method, Path
from mautrix.client import ClientAPI
from mautrix.errors import MatrixRequestError, MNotFound
from mautrix.types import RoomID, UserID

from bridge.localsynapse import LocalSynapse

from .waiting import wait_for

Event = dict[str, Any]


class MatrixUser:
    def __init__(self, synapse: LocalSynapse, user_id: str, token: str, password: str) -> None:
        self.user_id = user_id
        self.password = password
        self.session = aiohttp.ClientSession()
        self.client = ClientAPI(
            UserID(user_id), api=HTTPAPI(synapse.url, token=token, client_session=self.session)
        )
        self.since: str | None = None
        self.timeline: dict[str, list[Event]] = {}
        self.invites: dict[str, list[Event]] = {}
        self.joined: set[str] = set()
        self.left: set[str] = set()
        self.state: dict[str, dict[tuple[str, str], Event]] = {}

    @classmethod
    async def register(
        cls, synapse: LocalSynapse, localpart: str, *, admin: bool = False, name: str = ""
    ) -> MatrixUser:
        password = f"pw-{localpart}"
        resp = await synapse.register(localpart, password, admin=admin, displayname=name)
        return cls(synapse, resp["user_id"], resp["access_token"], password)

    async def close(self) -> None:
        await self.session.close()

    async def request(
        self, method: str, path: str, body: Any = None, query: dict[str, str] | None = None
    ) -> Any:
        return await self.client.api.request(Method[method], path, body, query_params=query)

    # Sync ------------------------------------------------------------------------------------

    async def sync(self, timeout_ms: int = 300) -> None:
        query = {
            "timeout": str(timeout_ms),
            "filter": json.dumps({"room": {"timeline": {"limit": 100}}}),
        }
        if self.since:
            query["since"] = self.since
        resp = await self.client.api.request(Method.GET, Path.v3.sync, query_params=query)
        self.since = resp["next_batch"]
        rooms = resp.get("rooms", {})
        for room_id, room in rooms.get("join", {}).items():
            self.joined.add(room_id)
            self.left.discard(room_id)
            self.invites.pop(room_id, None)
            for event in room.get("state", {}).get("events", []):
                self._remember_state(room_id, event)
            for event in room.get("timeline", {}).get("events", []):
                event["room_id"] = room_id
                self.timeline.setdefault(room_id, []).append(event)
                if "state_key" in event:
                    self._remember_state(room_id, event)
        for room_id, room in rooms.get("invite", {}).items():
            self.invites[room_id] = room.get("invite_state", {}).get("events", [])
        for room_id, room in rooms.get("leave", {}).items():
            self.joined.discard(room_id)
            self.invites.pop(room_id, None)
            self.left.add(room_id)
            for event in room.get("timeline", {}).get("events", []):
                event["room_id"] = room_id
                self.timeline.setdefault(room_id, []).append(event)

    def _remember_state(self, room_id: str, event: Event) -> None:
        self.state.setdefault(room_id, {})[(event["type"], event["state_key"])] = event

    async def wait_for_event(
        self, room_id: str, predicate: Callable[[Event], bool], timeout: float = 20.0
    ) -> Event:
        async def found() -> Event | None:
            for event in self.timeline.get(room_id, []):
                if predicate(event):
                    return event
            await self.sync()
            return None

        return await wait_for(found, timeout, interval=0, what=f"an event in {room_id}")

    async def wait_for_invite(self, room_id: str | None = None, timeout: float = 20.0) -> str:
        async def invited() -> str | None:
            await self.sync()
            for invited_room in self.invites:
                if room_id is None or invited_room == room_id:
                    return invited_room
            return None

        return await wait_for(invited, timeout, interval=0, what=f"{self.user_id} invited")

    # Actions ---------------------------------------------------------------------------------

    async def create_dm(self, other: str) -> str:
        room_id = await self.client.create_room(invitees=[UserID(other)], is_direct=True)
        return str(room_id)

    async def join(self, room_id: str) -> None:
        await self.client.join_room_by_id(RoomID(room_id))

    async def send_text(self, room_id: str, text: str) -> str:
        resp = await self.request(
            "PUT",
            f"/_matrix/client/v3/rooms/{room_id}/send/m.room.message/{_txn()}",
            {"msgtype": "m.text", "body": text},
        )
        return str(resp["event_id"])

    async def send_event(self, room_id: str, event_type: str, content: dict[str, Any]) -> str:
        resp = await self.request(
            "PUT", f"/_matrix/client/v3/rooms/{room_id}/send/{event_type}/{_txn()}", content
        )
        return str(resp["event_id"])

    async def react(self, room_id: str, event_id: str, key: str) -> str:
        """A click on a reaction (a button the bot put under its message), as Element sends it."""
        return await self.send_event(
            room_id,
            "m.reaction",
            {"m.relates_to": {"rel_type": "m.annotation", "event_id": event_id, "key": key}},
        )

    async def send_file(
        self, room_id: str, filename: str, data: bytes, mime: str = "application/octet-stream"
    ) -> str:
        """Uploads a file to the media repository and posts it, as Element does."""
        mxc = await self.client.upload_media(data, mime_type=mime, filename=filename)
        return await self.send_event(
            room_id,
            "m.room.message",
            {
                "msgtype": "m.file",
                "body": filename,
                "filename": filename,
                "url": str(mxc),
                "info": {"mimetype": mime, "size": len(data)},
            },
        )

    # Looking around ------------------------------------------------------------------------

    async def accept_invites(self, count: int, timeout: float = 30.0) -> list[str]:
        """Waits for `count` pending invites and joins every room invited to."""

        async def enough() -> bool:
            await self.sync()
            return len(self.invites) >= count

        await wait_for(enough, timeout, interval=0, what=f"{count} invites for {self.user_id}")
        rooms = list(self.invites)
        for room_id in rooms:
            await self.join(room_id)
        await self.sync()
        return rooms

    def shown(self, room_id: str, event_id: str) -> str:
        """A message's body as clients show it now: its latest edit, else the original."""
        text = ""
        for event in self.timeline.get(room_id, []):
            content = event.get("content", {})
            relation = content.get("m.relates_to", {})
            if event["event_id"] == event_id and not text:
                text = content.get("body", "")
            elif relation.get("rel_type") == "m.replace" and relation.get("event_id") == event_id:
                text = content["m.new_content"]["body"]
        return text

    async def joined_rooms(self) -> list[str]:
        resp = await self.request("GET", "/_matrix/client/v3/joined_rooms")
        return list(resp["joined_rooms"])

    async def room_state(self, room_id: str) -> list[Event]:
        return list(await self.request("GET", f"/_matrix/client/v3/rooms/{room_id}/state"))

    async def state_event(self, room_id: str, event_type: str, state_key: str = "") -> Any:
        path = f"/_matrix/client/v3/rooms/{room_id}/state/{event_type}/{state_key}"
        return await self.request("GET", path)

    async def state_content(self, room_id: str, event_type: str, state_key: str = "") -> Any:
        """The state event's content, or {} when the room has none."""
        try:
            return await self.state_event(room_id, event_type, state_key)
        except MNotFound:
            return {}

    async def context(self, room_id: str) -> dict[str, Any]:
        return dict(await self.state_event(room_id, "org.procurement.context"))

    async def joined_key(self, key: str) -> str | None:
        """Accepts pending invites; the room id of `key` once this user is in it."""
        await self.accept_invites(0)
        return (await self.rooms_by_key()).get(key)

    async def rooms_by_key(self) -> dict[str, str]:
        """The procurement rooms this user is in, by the room key their context names."""
        found = {}
        for room_id in await self.joined_rooms():
            try:
                found[(await self.context(room_id))["key"]] = room_id
            except MatrixRequestError:
                continue  # not a procurement room (e.g. a direct chat)
        return found


def _txn() -> str:
    return uuid.uuid4().hex
