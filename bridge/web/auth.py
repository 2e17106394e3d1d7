"""Bearer-token checks, in constant time."""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from aiohttp import web


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header.removeprefix("Bearer ").strip()
    return request.query.get("access_token")


def token_matches(given: str, expected: Iterable[str]) -> bool:
    """Compares against every expected token, so the time taken says nothing about which."""
    given_bytes = given.encode()
    found = False
    for token in expected:
        found |= hmac.compare_digest(given_bytes, token.encode())
    return found
