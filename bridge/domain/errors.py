"""Domain errors; `web/` maps them to HTTP, `matrix/` to bot replies."""

from __future__ import annotations


class InvalidInput(ValueError):
    """Input that breaks the contract, with the JSON path of the offending field.

    `path` is written the way DESIGN §4.1 shows it: ``data.suppliers[2].members[0]``.
    """

    def __init__(self, path: str, error: str, errcode: str = "M_BAD_JSON") -> None:
        super().__init__(f"{path}: {error}")
        self.path = path
        self.error = error
        self.errcode = errcode


class Refused(Exception):
    """A well-formed request that the current state does not allow (e.g. a vote in an archive)."""

    def __init__(self, error: str, errcode: str = "ORG_PROCUREMENT_REFUSED") -> None:
        super().__init__(error)
        self.error = error
        self.errcode = errcode
