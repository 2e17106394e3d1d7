"""The one place `/api/v1` checks who calls: a bearer token from the Authorization header,
compared in constant time, and the scope each route needs."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

from aiohttp import web

from ..feature import Scope
from .errors import error_response

API_PREFIX = "/api/v1/"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class ApiToken:
    token: str
    scopes: frozenset[Scope]


def bearer_token(request: web.Request) -> str | None:
    """The token of `Authorization: Bearer …`; never one from the URL, which ends up in
    proxies' and browsers' logs."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def token_matches(given: str, expected: Iterable[str]) -> bool:
    """Compares against every expected token, so the time taken says nothing about which."""
    given_bytes = given.encode()
    found = False
    for token in expected:
        found |= hmac.compare_digest(given_bytes, token.encode())
    return found


class ApiAuth:
    """Routes under /api/v1 declare their scope here when registered; a route that declared
    none (and is not public) is refused to everyone."""

    def __init__(self, tokens: Sequence[ApiToken]) -> None:
        self.tokens = tuple(tokens)
        self.scopes: dict[tuple[str, str], Scope | None] = {}

    def add(
        self, app: web.Application, method: str, path: str, handler: Handler, scope: Scope | None
    ) -> None:
        """Registers a route; `scope` None makes it public (signed webhooks, the OpenAPI)."""
        app.router.add_route(method, path, handler)
        self.scopes[(method, path)] = scope

    def scopes_of(self, given: str) -> frozenset[Scope] | None:
        """The scopes of a presented token, None if it is no token of ours. Every token is
        compared, whichever matches."""
        found: frozenset[Scope] | None = None
        for candidate in self.tokens:
            if token_matches(given, (candidate.token,)):
                found = candidate.scopes
        return found

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith(API_PREFIX):
            return await handler(request)
        info = request.match_info.route.resource
        key = (request.method, info.canonical if info is not None else "")
        if key in self.scopes and self.scopes[key] is None:
            return await handler(request)  # public
        token = bearer_token(request)
        scopes = None if token is None else self.scopes_of(token)
        if scopes is None:
            return error_response(
                401, "M_UNKNOWN_TOKEN", "A valid API bearer token is required (Authorization)"
            )
        needed = self.scopes.get(key)
        if needed is None:
            return error_response(404, "M_NOT_FOUND", "No such API route", request.path)
        if needed not in scopes:
            return error_response(
                403, "M_FORBIDDEN", f"This token lacks the {needed.value!r} scope"
            )
        return await handler(request)
