"""Text from outside (file names, captions, comments) made safe to store and show: control
characters replaced (PostgreSQL refuses NUL in text) and length bounded with a marker."""

from __future__ import annotations

import re

# C0 controls but tab and newline, DEL, the C1 controls, and lone surrogates (a JSON escape
# can make one; no UTF-8 store or homeserver takes it).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
REPLACEMENT = "\ufffd"
ELLIPSIS = "…"


def clean_text(value: str, max_len: int, *, single_line: bool = False) -> str:
    """`value` with control characters replaced by U+FFFD (newlines too when `single_line`)
    and cut to `max_len` characters, the last of them «…» when cut."""
    cleaned = _CONTROL.sub(REPLACEMENT, value)
    if single_line:
        cleaned = cleaned.replace("\n", " ").replace("\t", " ")
    if len(cleaned) > max_len:
        cleaned = cleaned[: max(max_len - 1, 0)] + ELLIPSIS
    return cleaned
