"""The read REST API (DESIGN §4.3): bearer auth, a procurement with its rooms, the OpenAPI."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import cache
from importlib.resources import files
from typing import Any
from urllib.parse import quote

from aiohttp import web
from ruamel.yaml import YAML

from ..db.procurements import Procurements
from ..db.rooms import ManagedRoom, Rooms, StateMap
from ..domain.plan import parse_room_key
from ..domain.policy import is_read_only
from .auth import bearer_token, token_matches
from .errors import error_response

log = logging.getLogger("bridge.web.api")

PROCUREMENT_PATH = "/api/v1/procurements/{id}"
OPENAPI_PATH = "/api/v1/openapi.json"


def refuse_without_token(request: web.Request, tokens: Sequence[str]) -> web.Response | None:
    """The 401 answer for a request without one of the configured API tokens, else None.

    Every route of the REST API starts with it:
    ``if refusal := refuse_without_token(request, self.tokens): return refusal``.
    """
    token = bearer_token(request)
    if token is None or not token_matches(token, tokens):
        return error_response(401, "M_UNKNOWN_TOKEN", "A valid API bearer token is required")
    return None


@cache
def openapi_document() -> dict[str, Any]:
    """The OpenAPI document shipped with the package (`bridge/web/openapi.yaml`)."""
    text = files("bridge.web").joinpath("openapi.yaml").read_text(encoding="utf-8")
    document: dict[str, Any] = YAML(typ="safe").load(text)
    return document


# A read route's data from its path parameters; None answers 404.
View = Callable[[Mapping[str, str]], Awaitable[dict[str, Any] | None]]


class RestAPI:
    def __init__(
        self,
        tokens: Sequence[str],
        procurements: Procurements,
        rooms: Rooms,
        views: Mapping[str, View] | None = None,
    ) -> None:
        self.tokens = tokens
        self.procurements = procurements
        self.rooms = rooms
        self.views = dict(views or {})

    def register(self, app: web.Application) -> None:
        # Read now, so that a broken document stops the start instead of failing a request.
        openapi = json.dumps(openapi_document(), ensure_ascii=False)

        async def serve_openapi(_: web.Request) -> web.Response:
            return web.Response(text=openapi, content_type="application/json")

        app.router.add_get(OPENAPI_PATH, serve_openapi)
        app.router.add_get(PROCUREMENT_PATH, self.procurement)
        for path, view in self.views.items():
            app.router.add_get(path, self._serve(view))

    def _serve(self, view: View) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(request: web.Request) -> web.Response:
            if refusal := refuse_without_token(request, self.tokens):
                return refusal
            found = await view(request.match_info)
            if found is None:
                return error_response(404, "M_NOT_FOUND", "Not found", request.path)
            return web.json_response(found, dumps=_dumps)

        return handler

    async def procurement(self, request: web.Request) -> web.Response:
        if refusal := refuse_without_token(request, self.tokens):
            return refusal
        procurement_id = request.match_info["id"]
        stored = await self.procurements.get(procurement_id)
        if stored is None:
            return error_response(404, "M_NOT_FOUND", f"No procurement {procurement_id!r}", "id")
        snapshot = json.loads(stored.snapshot)
        rooms = await self.rooms.of_procurement(procurement_id)
        states = await self.rooms.state_of(r.room_id for r in rooms if r.room_id)
        views = (room_view(room, states.get(room.room_id or "", {})) for room in rooms)
        listed = [view for view in views if view is not None]
        return web.json_response(
            {
                "id": stored.id,
                "version": stored.version,
                "number": snapshot.get("number") or stored.id,
                "title": snapshot.get("title"),
                "stage": stored.stage,
                "rooms": listed,
            },
            dumps=_dumps,
        )


def room_view(room: ManagedRoom, state: StateMap) -> dict[str, Any] | None:
    """One entry of `rooms`; None for a room not created yet (a planned room is listed once it
    exists) or a row whose key names no room kind we know."""
    if room.room_id is None:
        return None
    if room.is_space:
        kind = "space"
    else:
        parsed = parse_room_key(room.key)
        if parsed is None:
            log.warning("Room %s has the unknown key %r: not listed", room.room_id, room.key)
            return None
        kind = parsed[0].value
    name = state.get(("m.room.name", ""), {}).get("name")
    power_levels = state.get(("m.room.power_levels", ""))
    return {
        "key": room.key,
        "kind": kind,
        "name": name if isinstance(name, str) else None,
        "room_id": room.room_id,
        "archived": power_levels is not None and is_read_only(power_levels),
        "is_space": room.is_space,
        "link": matrix_to(room.room_id),
    }


def matrix_to(room_id: str) -> str:
    """The https://matrix.to link that opens the room in the user's client."""
    return "https://matrix.to/#/" + quote(room_id, safe="!:")


def _dumps(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False)
