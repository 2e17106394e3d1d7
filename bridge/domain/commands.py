"""Bot commands: the words people type, in Russian or English, and what they mean."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Command(Enum):
    HELP = "help"
    VOTE = "vote"
    DOCUMENTS = "documents"
    SEEN = "seen"
    APPROVE = "approve"
    REJECT = "reject"


# Longest phrases first, so "кто видел" wins over a shorter prefix.
_WORDS: tuple[tuple[str, Command], ...] = tuple(
    sorted(
        {
            "помощь": Command.HELP,
            "справка": Command.HELP,
            "help": Command.HELP,
            "голосование": Command.VOTE,
            "vote": Command.VOTE,
            "документы": Command.DOCUMENTS,
            "documents": Command.DOCUMENTS,
            "docs": Command.DOCUMENTS,
            "кто видел": Command.SEEN,
            "seen": Command.SEEN,
            "согласовать": Command.APPROVE,
            "approve": Command.APPROVE,
            "отклонить": Command.REJECT,
            "reject": Command.REJECT,
        }.items(),
        key=lambda kv: -len(kv[0]),
    )
)


@dataclass(frozen=True, slots=True)
class ParsedCommand:
    command: Command
    argument: str  # the rest of the message, stripped; "" when none


def parse_command(text: str) -> ParsedCommand | None:
    """The command a message gives, if it starts with one (an optional leading "!" or "/")."""
    stripped = text.strip().lstrip("!/").strip()
    lowered = stripped.casefold()
    for word, command in _WORDS:
        if lowered == word or (lowered.startswith(word) and not lowered[len(word)].isalnum()):
            return ParsedCommand(command, stripped[len(word) :].strip(" \t\n:,—-"))
    return None
