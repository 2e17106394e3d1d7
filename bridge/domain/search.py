"""Full-text search of what people wrote and posted: the text kept of an event, its words'
stems (Russian and English Snowball) for SQLite's FTS5, queries, and snippets of a hit.

PostgreSQL stems with its own `russian` configuration (the same Snowball algorithms)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache, lru_cache
from typing import Any, cast

import snowballstemmer

from .text import clean_text

# Letters and digits, hyphenated words kept apart (FTS5's unicode61 splits the same way).
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_CYRILLIC = re.compile(r"[а-яё]", re.IGNORECASE)
_MESSAGE_TYPES = ("m.text", "m.notice", "m.emote", "m.file", "m.image", "m.video", "m.audio")
MAX_QUERY_WORDS = 8
MAX_TEXT = 20_000  # of one message: more is kept but not indexed
PAGE = 10


@cache
def _stemmer(language: str) -> Any:
    return snowballstemmer.stemmer(language)


@lru_cache(maxsize=65_536)
def stem(word: str) -> str:
    lowered = word.casefold().replace("ё", "е")
    language = "russian" if _CYRILLIC.search(lowered) else "english"
    return cast(str, _stemmer(language).stemWord(lowered))


def words(text: str) -> list[str]:
    return _WORD.findall(text)


def index_terms(text: str) -> str:
    """What FTS5 indexes for a text: the stems of its words."""
    return " ".join(stem(word) for word in words(text[:MAX_TEXT]))


def fts5_query(query: str) -> str | None:
    """An FTS5 MATCH expression finding every word of `query` (by stem, as a prefix, so that
    «арматур» finds «арматуры»); None when the query has no words."""
    stems = [stem(word) for word in words(query)[:MAX_QUERY_WORDS]]
    if not stems:
        return None
    return " AND ".join('"' + s.replace('"', '""') + '"*' for s in stems)


def postgres_query(query: str) -> str | None:
    """A `to_tsquery('russian', …)` expression finding every word of `query` by its stem as a
    prefix, as FTS5 does: Snowball stems «зеркало» to «зерка» but «зеркалами» to «зеркал».
    Only letters and digits reach it, so no query is a syntax error."""
    found = words(query)[:MAX_QUERY_WORDS]
    return " & ".join(f"{word}:*" for word in found) if found else None


# Marks the bot's card that opens every room: the same words in every room, never worth finding.
CONTEXT_CARD = "org.procurement.context_card"


def searchable_text(event: Mapping[str, Any]) -> str | None:
    """The text people see of a message event: its body, a file's name and caption; an
    edit's new text. None for anything else."""
    if event.get("type") != "m.room.message":
        return None
    content = event.get("content")
    if not isinstance(content, Mapping) or content.get(CONTEXT_CARD):
        return None
    new = content.get("m.new_content")
    if isinstance(new, Mapping):
        content = new
    if content.get("msgtype") not in _MESSAGE_TYPES:
        return None
    parts = [content.get("body"), content.get("filename")]
    text = " ".join(dict.fromkeys(p for p in parts if isinstance(p, str) and p.strip()))
    # PostgreSQL refuses NUL in text; no control character is worth finding.
    return clean_text(text, len(text)) if text else None


def edited_event(event: Mapping[str, Any]) -> str | None:
    """The event an edit replaces (its text is found under the original), else None."""
    content = event.get("content")
    relation = content.get("m.relates_to") if isinstance(content, Mapping) else None
    if isinstance(relation, Mapping) and relation.get("rel_type") == "m.replace":
        target = relation.get("event_id")
        return target if isinstance(target, str) else None
    return None


def snippet(text: str, query: str, width: int = 160) -> str:
    """A piece of `text` around the first word matching the query, on one line."""
    flat = " ".join(text.split())
    # A stem is the start of the words it finds: a plain substring search (in C) finds the
    # first one, where stemming every word of a long message would take its time.
    lowered = flat.lower().replace("ё", "е")
    found = [
        at for word in words(query)[:MAX_QUERY_WORDS] if (at := lowered.find(stem(word))) >= 0
    ]
    start = max(0, min(found) - width // 3) if found else 0
    if start:  # begin with a whole word
        space = flat.find(" ", start, min(found))
        start = space + 1 if space >= 0 else start
    piece = flat[start : start + width]
    return ("…" if start else "") + piece + ("…" if start + width < len(flat) else "")
