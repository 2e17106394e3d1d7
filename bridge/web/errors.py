"""The one place that turns errors into HTTP answers (`errcode`, `error`, `path`)."""

from __future__ import annotations

import json

from aiohttp import web

from ..domain.errors import InvalidInput, Refused


def error_response(status: int, errcode: str, error: str, path: str | None = None) -> web.Response:
    body: dict[str, str] = {"errcode": errcode, "error": error}
    if path is not None:
        body["path"] = path
    return web.json_response(body, status=status, dumps=_dumps)


def invalid(e: InvalidInput) -> web.Response:
    return error_response(400, e.errcode, e.error, e.path)


def refused(e: Refused) -> web.Response:
    return error_response(409, e.errcode, e.error)


def _dumps(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False)
