"""The bot's commands, each declared once: its words (ru/en), who may use it and where, its
help line, and whether it binds (a decision, confirmed with a click before it counts)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum

from .locale import Locale
from .text import clean_text


class Command(Enum):
    HELP = "help"
    STATUS = "status"
    TASKS = "tasks"
    SEARCH = "search"
    MORE = "more"
    VOTE = "vote"
    DOCUMENTS = "documents"
    SEEN = "seen"
    APPROVE = "approve"
    REJECT = "reject"
    REQUEST = "request"
    CANCEL = "cancel"


class Role(Enum):
    """What a person is in a procurement, from its snapshot and its approvals."""

    MANAGER = "manager"
    TEAM = "team"
    LOGISTICS = "logistics"
    COMMISSION = "commission"
    APPROVER = "approver"
    SUPPLIER = "supplier"


class Place(Enum):
    """Where a command is typed: a kind of procurement room, or a direct chat with the bot."""

    ORG = "org"
    SUPPLIER = "supplier"
    COMMISSION = "commission"
    APPROVAL = "approval"
    SPECIFICATION = "specification"
    SHIPMENT = "shipment"
    DIRECT = "direct"


ROOMS = frozenset(Place) - {Place.DIRECT}
EVERYWHERE = frozenset(Place)
INTERNAL = frozenset({Role.MANAGER, Role.TEAM, Role.LOGISTICS, Role.COMMISSION, Role.APPROVER})


@dataclass(frozen=True, slots=True)
class CommandSpec:
    command: Command
    words: Mapping[Locale, tuple[str, ...]]  # the first of each locale is the one shown
    usage: Mapping[Locale, str]  # what follows the word in the help («<слова>»), or ""
    help: Mapping[Locale, str]
    places: frozenset[Place]
    roles: frozenset[Role] | None = None  # None: anyone in the room
    binding: bool = False  # typed, it asks for a confirmation by click

    def allowed(self, roles: Iterable[Role], place: Place) -> bool:
        return place in self.places and (self.roles is None or bool(self.roles & set(roles)))

    def word(self, locale: Locale) -> str:
        return self.words[locale][0]

    @property
    def takes_argument(self) -> bool:
        return bool(self.usage[Locale.RU])


def _spec(
    command: Command,
    ru: tuple[str, ...],
    en: tuple[str, ...],
    help_ru: str,
    help_en: str,
    places: frozenset[Place],
    *,
    roles: frozenset[Role] | None = None,
    usage: tuple[str, str] = ("", ""),
    binding: bool = False,
) -> CommandSpec:
    return CommandSpec(
        command=command,
        words={Locale.RU: ru, Locale.EN: en},
        usage={Locale.RU: usage[0], Locale.EN: usage[1]},
        help={Locale.RU: help_ru, Locale.EN: help_en},
        places=places,
        roles=roles,
        binding=binding,
    )


COMMANDS: tuple[CommandSpec, ...] = (
    _spec(
        Command.HELP,
        ("помощь", "справка", "меню"),
        ("help", "menu"),
        "что я умею здесь",
        "what I can do here",
        EVERYWHERE,
    ),
    _spec(
        Command.STATUS,
        ("статус",),
        ("status",),
        "этап закупки и что открыто: голосования, согласования, документы",
        "the procurement's stage and what is open: votes, approvals, documents",
        EVERYWHERE,
    ),
    _spec(
        Command.TASKS,
        ("мои задачи", "задачи"),
        ("tasks", "my tasks"),
        "голосования и согласования, которые ждут вас",
        "the votes and approvals waiting for you",
        frozenset({Place.DIRECT}),
    ),
    _spec(
        Command.SEARCH,
        ("поиск", "найти"),
        ("search", "find"),
        "поиск по сообщениям и документам ваших чатов",
        "search the messages and documents of your chats",
        EVERYWHERE,
        usage=("<слова>", "<words>"),
    ),
    _spec(
        Command.MORE,
        ("ещё", "еще"),
        ("more",),
        "следующие результаты поиска",
        "the next search results",
        EVERYWHERE,
    ),
    _spec(
        Command.VOTE,
        ("голосование",),
        ("vote",),
        "ход голосования в этом чате и кто ещё не ответил",
        "how the vote in this chat is going and who has not answered",
        frozenset({Place.COMMISSION}),
        roles=frozenset({Role.MANAGER, Role.COMMISSION}),
    ),
    _spec(
        Command.DOCUMENTS,
        ("документы",),
        ("documents", "docs"),
        "документы этого чата",
        "this chat's documents",
        ROOMS,
    ),
    _spec(
        Command.SEEN,
        ("кто видел",),
        ("seen",),
        "кто открывал документ (по отметкам о прочтении; скрытые не видны)",
        "who opened a document (from read receipts; private ones are not seen)",
        ROOMS,
        usage=("<документ>", "<document>"),
    ),
    _spec(
        Command.APPROVE,
        ("согласовать",),
        ("approve",),
        "согласовать документ (с подтверждением); при нужде приложите файл подписи .p7s",
        "approve the document (you confirm); attach a .p7s signature when one is required",
        frozenset({Place.APPROVAL}),
        roles=frozenset({Role.APPROVER}),
        usage=("[комментарий]", "[comment]"),
        binding=True,
    ),
    _spec(
        Command.REJECT,
        ("отклонить",),
        ("reject",),
        "отклонить документ (с подтверждением), причина обязательна",
        "reject the document (you confirm), a reason is required",
        frozenset({Place.APPROVAL}),
        roles=frozenset({Role.APPROVER}),
        usage=("<причина>", "<reason>"),
        binding=True,
    ),
    _spec(
        Command.REQUEST,
        ("заявка",),
        ("request",),
        "подать заявку в систему закупок: я спрошу всё по шагам",
        "file a request with the procurement system: I ask for each field",
        frozenset({Place.ORG, Place.DIRECT}),
        roles=frozenset({Role.MANAGER, Role.TEAM}),
    ),
    _spec(
        Command.CANCEL,
        ("отмена", "отменить"),
        ("cancel",),
        "прервать начатую заявку или подтверждение",
        "stop the request or confirmation under way",
        EVERYWHERE,
    ),
)

SPECS: Mapping[Command, CommandSpec] = {spec.command: spec for spec in COMMANDS}


# Every word in either language, longest first, so «мои задачи» wins over «задачи».
_WORDS: tuple[tuple[str, Command], ...] = tuple(
    sorted(
        (
            (word, spec.command)
            for spec in COMMANDS
            for words in spec.words.values()
            for word in words
        ),
        key=lambda pair: -len(pair[0]),
    )
)
# What may follow a command's word: the message's end, a space or punctuation.
_BOUNDARY = frozenset(" \t\n:,.;!?—-")


@dataclass(frozen=True, slots=True)
class ParsedCommand:
    command: Command
    argument: str  # the rest of the message, stripped; "" when none
    # Typed with a leading «!» or «/»: certainly meant for the bot (not part of what the
    # command is, so not compared).
    marked: bool = field(default=False, compare=False)


@dataclass(frozen=True, slots=True)
class UnknownCommand:
    """`!слово` that names no command: the person meant one, so they get a hint."""

    word: str


def parse_command(text: str) -> ParsedCommand | UnknownCommand | None:
    """The command a message gives: its whole first word(s), or anything after a leading «!»
    (or «/»). An ordinary sentence is not a command: «Документы пришлю завтра» starts with a
    command's word, but that command takes nothing after it."""
    stripped = text.strip()
    marked = stripped[:1] in ("!", "/")
    body = stripped[1:].strip() if marked else stripped
    lowered = body.casefold()
    for word, command in _WORDS:
        if lowered == word or (lowered.startswith(word) and lowered[len(word)] in _BOUNDARY):
            argument = body[len(word) :].strip(" \t\n:,.;!?—-")
            if argument and not SPECS[command].takes_argument and not marked:
                return None
            kept = argument if SPECS[command].takes_argument else ""
            return ParsedCommand(command, kept, marked)
    if marked and body:
        return UnknownCommand(clean_text(body.split()[0], 50, single_line=True))
    return None


def is_prose(parsed: ParsedCommand, place: Place) -> bool:
    """A sentence in a procurement room that starts with the word of a command which has no
    use there («Согласовать сроки нужно до пятницы» in a supplier's chat): chat, not a
    command, so the bot keeps quiet. Where the command applies, or typed with «!», or in the
    direct chat (where everything is for the bot), it is a command."""
    spec = SPECS[parsed.command]
    return (
        place is not Place.DIRECT
        and not parsed.marked
        and bool(parsed.argument)
        and place not in spec.places
    )


def visible(roles: Iterable[Role], place: Place) -> tuple[CommandSpec, ...]:
    """The commands a person may use here, in the table's order (what help shows)."""
    held = frozenset(roles)
    return tuple(spec for spec in COMMANDS if spec.allowed(held, place))
