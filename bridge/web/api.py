"""The REST API (DESIGN §4.3): the features' read routes as JSON or file downloads, and the
OpenAPI document. Who may call what is checked by `auth.ApiAuth`'s middleware."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable
from functools import cache
from importlib.resources import files
from typing import Any
from urllib.parse import quote

from aiohttp import web
from ruamel.yaml import YAML

from ..domain.errors import InvalidInput
from ..feature import FileView, JsonView, PageView, Route
from .auth import ApiAuth, Handler
from .errors import error_response, invalid

OPENAPI_PATH = "/api/v1/openapi.json"


@cache
def openapi_document() -> dict[str, Any]:
    """The OpenAPI document shipped with the package (`bridge/web/openapi.yaml`)."""
    text = files("bridge.web").joinpath("openapi.yaml").read_text(encoding="utf-8")
    document: dict[str, Any] = YAML(typ="safe").load(text)
    return document


def register_api(app: web.Application, auth: ApiAuth, routes: Iterable[Route]) -> None:
    # Read now, so that a broken document stops the start instead of failing a request.
    openapi = json.dumps(openapi_document(), ensure_ascii=False)

    async def serve_openapi(_: web.Request) -> web.Response:
        return web.Response(text=openapi, content_type="application/json")

    auth.add(app, "GET", OPENAPI_PATH, serve_openapi, None)
    for route in routes:
        auth.add(app, "GET", route.path, _handler(route), route.scope)


def _handler(route: Route) -> Handler:
    if isinstance(route, PageView):
        return _page_handler(route)

    async def handler(request: web.Request) -> web.StreamResponse:
        found = await route.view(request.match_info)
        if found is None:
            return error_response(404, "M_NOT_FOUND", "Not found", request.path)
        if isinstance(route, JsonView):
            return web.json_response(found, dumps=_dumps)
        assert isinstance(route, FileView)
        assert not isinstance(found, dict)
        digest = base64.b64encode(hashlib.sha256(found.data).digest()).decode()
        return web.Response(
            body=found.data,
            headers={
                "Content-Type": found.mime_type,
                "Content-Disposition": content_disposition(found.filename),
                # The type came from whoever posted the file: never let a browser guess.
                "X-Content-Type-Options": "nosniff",
                "Repr-Digest": f"sha-256=:{digest}:",
            },
        )

    return handler


def _page_handler(route: PageView) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        try:
            found = await route.view(request.match_info, request.query)
        except InvalidInput as e:
            return invalid(e)
        if isinstance(found, dict):
            return web.json_response(found, dumps=_dumps)
        headers = {"Content-Type": found.content_type, "X-Content-Type-Options": "nosniff"}
        return web.Response(body=found.body, headers={**headers, **found.headers})

    return handler


def content_disposition(filename: str) -> str:
    """`attachment` with an ASCII fallback name and the real one in RFC 5987 `filename*`."""
    fallback = "".join(
        ch if " " <= ch < "\x7f" and ch not in '"\\/' else "_" for ch in filename
    ).strip()
    return f"attachment; filename=\"{fallback or 'document'}\"; filename*=UTF-8''" + quote(
        filename, safe=""
    )


def _dumps(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False)
