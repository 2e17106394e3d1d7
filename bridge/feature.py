"""What a feature (rooms, votes, approvals, documents) brings to the bridge, declared in one
place, and the set of features core runs: duplicates and gaps refused before the start."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

from .db.queue import WorkQueue
from .db.rooms import ManagedRoom
from .db.webhooks import StoredWebhook
from .domain.card import Card
from .domain.commands import Command, ParsedCommand, Place, Role
from .domain.errors import InvalidInput
from .domain.webhooks import ParsedWebhook
from .retry import Permanent

# Applies a stored webhook of one type.
WebhookHandler = Callable[[StoredWebhook], Awaitable[None]]
# Checks a valid webhook against the current state; raises Refused (answered 409).
Admission = Callable[[ParsedWebhook], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Asker:
    """Who typed or clicked, where, and what they are there."""

    user: str
    room_id: str
    place: Place
    room: ManagedRoom | None  # None in a direct chat with the bot
    roles: frozenset[Role]
    event: dict[str, Any]  # the message, or the reaction of a click


@dataclass(frozen=True, slots=True)
class Button:
    """A reaction key the bot puts on its own message; a click does `action` (a JSON object
    with its `kind`, handled by the feature that declared that kind)."""

    key: str
    action: Mapping[str, Any]
    user: str | None = None  # who may click it; None: whoever the action allows


# A button that does nothing but say «отменено» (a confirmation declined).
DISMISS = "dismiss"


@dataclass(frozen=True, slots=True)
class Reply:
    card: Card
    buttons: tuple[Button, ...] = ()
    # A choice made once (a confirmation, a question): the first click on any of its buttons
    # puts them all out of use, so a later click on another changes nothing.
    once: bool = False


Answer = Reply | Card | None
# A command typed (or clicked in a menu) → the bot's answer.
CommandHandler = Callable[[Asker, ParsedCommand], Awaitable[Answer]]
# A click on a button → the bot's answer.
ActionHandler = Callable[[Asker, Mapping[str, Any]], Awaitable[Answer]]
# A message in a conversation under way (the dialog's state as stored) → the bot's answer.
DialogHandler = Callable[[Asker, str, Mapping[str, Any]], Awaitable[Answer]]
# Anything else posted in a managed room (poll answers, files, …).
EventListener = Callable[[ManagedRoom, dict[str, Any]], Awaitable[None]]
# Ephemeral events (read receipts).
EphemeralListener = Callable[[dict[str, Any]], Awaitable[None]]
# Takes the document a webhook's URL named, once fetched.
FetchedHandler = Callable[[StoredWebhook, bytes], Awaitable[None]]


class Scope(Enum):
    """What an API token may do (`api.tokens[].scopes`)."""

    READ = "read"  # procurements, votes, approvals
    DOCUMENTS = "documents"  # the registry's list and the files' bytes
    ADMIN = "admin"  # dead letters listed and retried
    REPORTS = "reports"  # how fast the organisation answers suppliers (staff performance)


@dataclass(frozen=True, slots=True)
class FileBody:
    filename: str
    mime_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class JsonView:
    """`GET path` answering the view's JSON; None answers 404."""

    path: str
    view: Callable[[Mapping[str, str]], Awaitable[dict[str, Any] | None]]
    scope: Scope


@dataclass(frozen=True, slots=True)
class FileView:
    """`GET path` answering a file's bytes; None answers 404."""

    path: str
    view: Callable[[Mapping[str, str]], Awaitable[FileBody | None]]
    scope: Scope


@dataclass(frozen=True, slots=True)
class Page:
    """A response of any type (a CSV table, an HTML page) with its own headers."""

    body: bytes
    content_type: str
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PageView:
    """`GET path?query` answering JSON (a dict) or a `Page`; InvalidInput answers 400."""

    path: str
    view: Callable[[Mapping[str, str], Mapping[str, str]], Awaitable[dict[str, Any] | Page]]
    scope: Scope


Route = JsonView | FileView | PageView


class Timer(Protocol):
    """Work done at a time rather than on an event (a vote's deadline)."""

    name: str

    def start(self) -> None: ...
    async def stop(self) -> None: ...
    def wake(self) -> None: ...
    def retry_now(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Queue:
    """A durable queue a feature consumes with a worker of its own."""

    name: str
    table: WorkQueue[Any]
    due: Callable[[int], Awaitable[list[Any]]]
    handle: Callable[[Any], Awaitable[None]]
    concurrency: int = 1


@dataclass(frozen=True)
class Feature:
    name: str
    webhooks: Mapping[str, WebhookHandler] = field(default_factory=dict)
    admissions: tuple[Admission, ...] = ()
    commands: Mapping[Command, CommandHandler] = field(default_factory=dict)
    # Called in the order features are given to FeatureSet.
    listeners: tuple[EventListener, ...] = ()
    ephemeral_listeners: tuple[EphemeralListener, ...] = ()
    routes: tuple[Route, ...] = ()
    timers: tuple[Timer, ...] = ()
    queues: tuple[Queue, ...] = ()
    # By webhook type: who takes a document fetched from the URL that webhook gave.
    fetched: Mapping[str, FetchedHandler] = field(default_factory=dict)
    # By action kind: what a click on one of this feature's buttons does.
    actions: Mapping[str, ActionHandler] = field(default_factory=dict)
    # By dialog kind: who answers a message in a conversation this feature started.
    dialogs: Mapping[str, DialogHandler] = field(default_factory=dict)
    # Called for every event of a managed room, the bot's own included (the search index).
    recorders: tuple[EventListener, ...] = ()


class FeatureConflict(Exception):
    """Two features claim the same thing, or something declared has nobody to handle it."""


class FeatureSet:
    """The features core runs, merged; refuses duplicates and declared-but-unhandled parts."""

    def __init__(
        self,
        features: Iterable[Feature],
        *,
        webhook_types: Iterable[str],
        commands: Iterable[Command],
    ) -> None:
        self.features = tuple(features)
        self.webhooks = _unique(
            "webhook type", ((t, f.name, h) for f in self.features for t, h in f.webhooks.items())
        )
        self.commands = _unique(
            "command", ((c, f.name, h) for f in self.features for c, h in f.commands.items())
        )
        self.routes = _unique(
            "route", ((r.path, f.name, r) for f in self.features for r in f.routes)
        )
        self.timers = _unique(
            "timer", ((t.name, f.name, t) for f in self.features for t in f.timers)
        )
        self.queues = _unique(
            "queue", ((q.name, f.name, q) for f in self.features for q in f.queues)
        )
        self.actions = _unique(
            "button action", ((k, f.name, h) for f in self.features for k, h in f.actions.items())
        )
        self.dialogs = _unique(
            "dialog", ((k, f.name, h) for f in self.features for k, h in f.dialogs.items())
        )
        self.fetched = _unique(
            "fetched document of",
            ((t, f.name, h) for f in self.features for t, h in f.fetched.items()),
        )
        _require("webhook type", webhook_types, self.webhooks)
        _require("command", commands, self.commands)
        self.admissions = tuple(a for f in self.features for a in f.admissions)
        self.listeners = tuple(h for f in self.features for h in f.listeners)
        self.ephemeral_listeners = tuple(h for f in self.features for h in f.ephemeral_listeners)
        self.recorders = tuple(h for f in self.features for h in f.recorders)

    async def admit(self, webhook: ParsedWebhook) -> None:
        for admission in self.admissions:
            await admission(webhook)

    async def handle_webhook(self, webhook: StoredWebhook) -> None:
        handler = self.webhooks.get(webhook.type)
        if handler is None:  # only a webhook stored by an older version of the bridge
            raise Permanent(f"no feature handles {webhook.type}")
        try:
            await handler(webhook)
        except InvalidInput as e:
            # Validated on arrival; only a change of rules between then and now lands here.
            raise Permanent(f"{e.path}: {e.error}") from e


def _unique(what: str, declared: Iterable[tuple[Any, str, Any]]) -> dict[Any, Any]:
    found: dict[Any, tuple[str, Any]] = {}
    for key, owner, value in declared:
        if key in found:
            shown = key.value if isinstance(key, Enum) else key
            raise FeatureConflict(
                f"{what} {shown!r} is declared by both {found[key][0]} and {owner}"
            )
        found[key] = (owner, value)
    return {key: value for key, (_, value) in found.items()}


def _require(what: str, declared: Iterable[Any], handled: Mapping[Any, Any]) -> None:
    for key in declared:
        if key not in handled:
            shown = key.value if isinstance(key, Enum) else key
            raise FeatureConflict(f"no feature handles the {what} {shown!r}")
