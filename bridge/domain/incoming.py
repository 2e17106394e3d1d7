"""Events from the homeserver as the bridge's handlers read them: an envelope whose fields have
the types the Matrix spec gives them, and text that both databases can store."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, TypeGuard

# NUL (PostgreSQL refuses it in text) and lone surrogates (a JSON escape can make one; no
# UTF-8 store or homeserver takes it).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
REPLACEMENT = "\ufffd"
# Milliseconds since the epoch up to the end of 9999-12-31 (UTC): what a date can hold, so
# that every view can write the time out (and a 64-bit column hold it).
MAX_TIMESTAMP_MS = 253_402_300_799_999


def envelope_problem(event: Mapping[str, Any]) -> str | None:
    """Why no handler can act on a (non-ephemeral) event: a field of its envelope missing or
    not of the type the spec gives it. None when the envelope is sound; what is inside
    `content` is each handler's to check."""
    for name in ("event_id", "type", "room_id", "sender"):
        if not isinstance(event.get(name), str):
            return f"{name} is not a string"
    if not isinstance(event.get("content"), Mapping):
        return "content is not an object"
    if "state_key" in event and not isinstance(event["state_key"], str):
        return "state_key is not a string"
    if "redacts" in event and not isinstance(event["redacts"], str):
        return "redacts is not a string"
    # Without one the handlers take the time of arrival; with one, it has to be a time.
    if "origin_server_ts" in event and not is_timestamp(event["origin_server_ts"]):
        return "origin_server_ts is not a time in milliseconds"
    return None


def is_timestamp(value: object) -> TypeGuard[int]:
    return (
        isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_TIMESTAMP_MS
    )


def storable(value: Any) -> Any:
    """`value` with every string in it, keys too, free of what a database refuses in text:
    NUL and lone surrogates become U+FFFD. Nesting is bounded where JSON comes in."""
    if isinstance(value, str):
        return _UNSTORABLE.sub(REPLACEMENT, value)
    if isinstance(value, Mapping):
        return {storable(str(key)): storable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [storable(item) for item in value]
    return value


def mapping(value: object) -> Mapping[str, Any]:
    """An object field of an event's content as an object, or empty when it is anything
    else: what a client wrote is read as far as it makes sense, never trusted to be typed."""
    return value if isinstance(value, Mapping) else {}
