"""How deeply JSON from outside may nest: bounded at the edge, so that nothing the bridge does
with a value later (serialise it, canonicalise it for the audit log) runs out of stack."""

from __future__ import annotations

from collections.abc import Iterable

from .errors import InvalidInput

# Far deeper than any webhook or Matrix event is; far shallower than Python's stack.
MAX_NESTING = 64


def check_nesting(value: object, limit: int = MAX_NESTING) -> None:
    """Raises InvalidInput, naming the path where it happens, when `value` has arrays or
    objects nested more than `limit` deep. Walks without recursion: a value nested deeper
    than the stack allows is measured, not a crash."""
    pending: list[tuple[object, tuple[str | int, ...]]] = [(value, ())]
    while pending:
        item, path = pending.pop()
        children: Iterable[tuple[str | int, object]]
        if isinstance(item, dict):
            children = item.items()
        elif isinstance(item, list):
            children = enumerate(item)
        else:
            continue
        if len(path) >= limit:
            raise InvalidInput(
                format_path(path), f"nested deeper than {limit} levels", "M_BAD_JSON"
            )
        pending.extend((child, (*path, key)) for key, child in children)


def format_path(path: tuple[str | int, ...]) -> str:
    """`("data", "suppliers", 2)` as DESIGN §4.1 writes it: `data.suppliers[2]`."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text
