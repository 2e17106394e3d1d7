"""The command table: every command declared once with its words, who may use it and where,
and how a typed message is read against it (test_commands.py has the first basic cases)."""

from __future__ import annotations

from itertools import combinations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.domain.commands import (
    COMMANDS,
    EVERYWHERE,
    INTERNAL,
    ROOMS,
    SPECS,
    Command,
    CommandSpec,
    ParsedCommand,
    Place,
    Role,
    UnknownCommand,
    is_prose,
    parse_command,
    visible,
)
from bridge.domain.locale import Locale

# What the parser strips between a command's word and its argument.
BOUNDARY = " \t\n:,.;!?—-"
ALL_WORDS = [
    (word, spec.command) for spec in COMMANDS for ws in spec.words.values() for word in ws
]
NO_ARGUMENT = [spec for spec in COMMANDS if not spec.takes_argument]
WITH_ARGUMENT = [spec for spec in COMMANDS if spec.takes_argument]


def words_of(spec: CommandSpec) -> list[str]:
    return [word for ws in spec.words.values() for word in ws]


def commands(specs: tuple[CommandSpec, ...]) -> list[Command]:
    return [spec.command for spec in specs]


# --- the table -----------------------------------------------------------------------------


def test_every_command_is_declared_exactly_once() -> None:
    assert [spec.command for spec in COMMANDS] == list(Command)
    assert set(SPECS) == set(Command)
    for command, spec in SPECS.items():
        assert spec.command is command


@pytest.mark.parametrize("spec", COMMANDS, ids=lambda spec: spec.command.value)
def test_every_command_has_words_usage_and_help_in_russian_and_english(spec: CommandSpec) -> None:
    assert set(spec.words) == set(Locale)
    assert set(spec.usage) == set(Locale)
    assert set(spec.help) == set(Locale)
    for locale in Locale:
        assert spec.words[locale], locale
        assert spec.help[locale].strip(), locale
    assert any("а" <= ch <= "я" for ch in spec.word(Locale.RU))
    assert spec.word(Locale.EN).isascii()
    assert all(word.isascii() for word in spec.words[Locale.EN])
    # An argument is announced in both languages or in neither.
    assert bool(spec.usage[Locale.RU]) == bool(spec.usage[Locale.EN])


@pytest.mark.parametrize("word", [word for word, _ in ALL_WORDS])
def test_every_word_is_written_as_people_type_it(word: str) -> None:
    # Lower case, no stray spaces, nothing the parser would strip off or take as a marker.
    assert word == word.casefold()
    assert word == word.strip()
    assert "  " not in word
    assert word[0] not in BOUNDARY + "!/"
    assert word[-1] not in BOUNDARY


def test_no_word_is_claimed_by_two_commands() -> None:
    owners: dict[str, set[Command]] = {}
    for word, command in ALL_WORDS:
        owners.setdefault(word, set()).add(command)
    assert {word: cmds for word, cmds in owners.items() if len(cmds) > 1} == {}
    # Not even twice by the same command.
    assert len(ALL_WORDS) == len(owners)


def test_the_shown_word_is_the_first_of_each_locale() -> None:
    assert SPECS[Command.HELP].word(Locale.RU) == "помощь"
    assert SPECS[Command.HELP].word(Locale.EN) == "help"
    assert SPECS[Command.TASKS].word(Locale.RU) == "мои задачи"
    assert SPECS[Command.MORE].word(Locale.RU) == "ещё"


def test_only_the_decisions_bind_and_only_approvers_take_them() -> None:
    binding = [spec for spec in COMMANDS if spec.binding]
    assert [spec.command for spec in binding] == [Command.APPROVE, Command.REJECT]
    for spec in binding:
        assert spec.roles == frozenset({Role.APPROVER})
        assert spec.places == frozenset({Place.APPROVAL})


def test_places_are_what_the_constants_say() -> None:
    assert Place.DIRECT not in ROOMS
    assert ROOMS | {Place.DIRECT} == EVERYWHERE == frozenset(Place)
    assert Role.SUPPLIER not in INTERNAL
    assert INTERNAL | {Role.SUPPLIER} == frozenset(Role)


def test_what_a_command_takes_follows_its_usage() -> None:
    assert {spec.command for spec in WITH_ARGUMENT} == {
        Command.SEARCH,
        Command.SEEN,
        Command.APPROVE,
        Command.REJECT,
    }


# --- parsing: every word, every way of typing it -------------------------------------------


@pytest.mark.parametrize(("word", "command"), ALL_WORDS)
def test_every_word_gives_its_command_however_it_is_typed(word: str, command: Command) -> None:
    expected = ParsedCommand(command, "")
    assert parse_command(word) == expected
    assert parse_command(word.upper()) == expected
    assert parse_command(word.capitalize()) == expected
    assert parse_command(f"  \n{word}\t ") == expected
    assert parse_command(f"!{word}") == expected
    assert parse_command(f"/{word}") == expected
    assert parse_command(f"! {word}") == expected
    for mark in "?!.:":
        assert parse_command(f"{word}{mark}") == expected


def test_yo_and_ye_are_both_understood() -> None:
    for typed in ("ещё", "еще", "ЕЩЁ", "ЕЩЕ", "Ещё", "!еще"):
        assert parse_command(typed) == ParsedCommand(Command.MORE, ""), typed


def test_the_longest_word_wins() -> None:
    assert parse_command("Мои задачи") == ParsedCommand(Command.TASKS, "")
    assert parse_command("my tasks") == ParsedCommand(Command.TASKS, "")
    assert parse_command("задачи") == ParsedCommand(Command.TASKS, "")
    assert parse_command("кто видел Протокол.pdf") == ParsedCommand(Command.SEEN, "Протокол.pdf")


def test_a_word_inside_a_longer_word_is_not_a_command() -> None:
    for typed in ("статусы", "поисковик", "документыы", "moreover", "findings", "approved"):
        assert parse_command(typed) is None, typed
    # Marked, it is a command nobody has.
    assert parse_command("!статусы") == UnknownCommand("статусы")
    assert parse_command("/approved") == UnknownCommand("approved")


# --- prose is not a command -------------------------------------------------------------------


@pytest.mark.parametrize("spec", NO_ARGUMENT, ids=lambda spec: spec.command.value)
def test_a_sentence_starting_with_a_bare_command_word_is_prose(spec: CommandSpec) -> None:
    for word in words_of(spec):
        sentence = f"{word.capitalize()} пришлю завтра, как договаривались"
        assert parse_command(sentence) is None, sentence
        assert parse_command(f"{word}: see you tomorrow") is None
        assert parse_command(f"{word} - later") is None
        # Marked with «!» or «/», the same words are a command, and the rest is dropped.
        assert parse_command(f"!{sentence}") == ParsedCommand(spec.command, "")
        assert parse_command(f"/{word} please") == ParsedCommand(spec.command, "")


def test_everyday_russian_and_english_sentences_are_not_commands() -> None:
    for sentence in (
        "Документы пришлю завтра",
        "Статус поставки уточню у логистов",
        "Ещё раз напомню про сроки",
        "Отмена рейса, приеду в среду",
        "Отменить встречу придётся",
        "Голосование переносится",
        "Заявка ушла в бухгалтерию",
        "Помощь нужна с доставкой",
        "Help me with the invoice",
        "Status of the shipment is unclear",
        "Cancel the meeting?",
        "More details in the attachment",
        "Vote tomorrow, please",
        "Добрый день! Коллеги, помощь нужна",
    ):
        assert parse_command(sentence) is None, sentence


def test_a_command_word_later_in_a_sentence_is_not_a_command() -> None:
    for sentence in ("Нужна помощь", "please help", "где документы?", "напишите «статус»"):
        assert parse_command(sentence) is None, sentence


def test_prose_after_a_decision_word_is_only_ever_a_proposal() -> None:
    # «согласовать» takes an optional comment, so a sentence that starts with it is read as
    # the command with that comment. It never decides anything by itself: a typed decision
    # binds only after a click on the confirmation (and only an approver, only in the
    # approval's room, is offered one).
    parsed = parse_command("согласовать договор с поставщиком завтра")
    assert parsed == ParsedCommand(Command.APPROVE, "договор с поставщиком завтра")
    assert SPECS[Command.APPROVE].binding
    assert not SPECS[Command.APPROVE].allowed(frozenset(Role) - {Role.APPROVER}, Place.APPROVAL)
    assert not SPECS[Command.APPROVE].allowed({Role.APPROVER}, Place.ORG)


# --- arguments -------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", WITH_ARGUMENT, ids=lambda spec: spec.command.value)
def test_the_argument_is_the_rest_of_the_message_as_typed(spec: CommandSpec) -> None:
    for word in words_of(spec):
        for separator in (" ", ": ", " — ", " - ", ",", "\n", "\t"):
            typed = f"{word.upper()}{separator}Арматура А500С, 12 т"
            assert parse_command(typed) == ParsedCommand(spec.command, "Арматура А500С, 12 т")
        assert parse_command(f"!{word} «ТКА № 234/01-02»") == ParsedCommand(
            spec.command, "«ТКА № 234/01-02»"
        )


def test_punctuation_around_the_argument_is_dropped_inside_kept() -> None:
    assert parse_command("поиск: арматура.") == ParsedCommand(Command.SEARCH, "арматура")
    assert parse_command("поиск — «арматура»!") == ParsedCommand(Command.SEARCH, "«арматура»")
    assert parse_command("search steel, rebar?") == ParsedCommand(Command.SEARCH, "steel, rebar")
    assert parse_command("отклонить - цена выше рынка; срок не подходит.") == ParsedCommand(
        Command.REJECT, "цена выше рынка; срок не подходит"
    )


def test_a_command_without_its_argument_has_an_empty_one() -> None:
    assert parse_command("поиск") == ParsedCommand(Command.SEARCH, "")
    assert parse_command("поиск: ") == ParsedCommand(Command.SEARCH, "")
    assert parse_command("!reject") == ParsedCommand(Command.REJECT, "")
    assert parse_command("согласовать!") == ParsedCommand(Command.APPROVE, "")


def test_a_very_long_argument_is_kept_whole() -> None:
    words = "арматура " * 10_000
    parsed = parse_command(f"поиск {words}")
    assert parsed == ParsedCommand(Command.SEARCH, words.strip())


# --- unknown commands ------------------------------------------------------------------------


def test_a_marked_unknown_word_is_an_unknown_command() -> None:
    assert parse_command("!foo") == UnknownCommand("foo")
    assert parse_command("/foo bar baz") == UnknownCommand("foo")
    assert parse_command("!  Привет всем") == UnknownCommand("Привет")
    assert parse_command("!!help") == UnknownCommand("!help")


def test_an_unmarked_unknown_word_is_just_chat() -> None:
    for typed in ("foo", "привет", "Коллеги, добрый день", "12345", "?", "—", "…"):
        assert parse_command(typed) is None, typed


def test_a_lone_mark_is_nothing() -> None:
    for typed in ("!", "/", "  !  ", "/\n", ""):
        assert parse_command(typed) is None, repr(typed)


def test_the_unknown_word_is_bounded() -> None:
    parsed = parse_command("!" + "щ" * 10_000)
    assert parsed == UnknownCommand("щ" * 49 + "…")


def test_the_unknown_word_echoed_holds_no_control_character() -> None:
    parsed = parse_command("!hel\x00p")
    assert isinstance(parsed, UnknownCommand)
    assert "\x00" not in parsed.word


def test_nul_characters_neither_crash_nor_make_a_command() -> None:
    assert parse_command("\x00") is None
    assert parse_command("помощь\x00") is None
    assert parse_command("поиск\x00арматура") is None
    assert parse_command("\x00помощь") is None
    parsed = parse_command("!\x00")
    assert isinstance(parsed, UnknownCommand)
    assert parse_command("поиск \x00") == ParsedCommand(Command.SEARCH, "\x00")


# --- properties ------------------------------------------------------------------------------

# Explicit alphabets: Hypothesis builds its Unicode tables lazily, which is slow on a fresh CI.
TEXT = "azAZ09 ёЁеЕжЖщ!/?.,:;—-\t\n\x00\u00a0«»😀"


@given(st.text(TEXT, max_size=40))
def test_an_argument_is_part_of_what_was_typed(typed: str) -> None:
    parsed = parse_command(typed)
    if isinstance(parsed, ParsedCommand):
        assert parsed.argument in typed
        assert parsed.argument == parsed.argument.strip(BOUNDARY)
        if not SPECS[parsed.command].takes_argument:
            assert parsed.argument == ""
    elif isinstance(parsed, UnknownCommand):
        assert typed.strip()[:1] in ("!", "/")
        assert parsed.word
        assert len(parsed.word) <= 50
        assert not any(ch.isspace() for ch in parsed.word)


@given(
    st.sampled_from(WITH_ARGUMENT),
    st.sampled_from([" ", ": ", " — "]),
    st.text("азАЗёЁ09 .,«»", min_size=1, max_size=30),
)
def test_any_argument_comes_back(spec: CommandSpec, separator: str, argument: str) -> None:
    expected = argument.strip(BOUNDARY)
    for word in words_of(spec):
        assert parse_command(f"{word}{separator}{argument}") == ParsedCommand(
            spec.command, expected
        )


@given(st.sampled_from(NO_ARGUMENT), st.text("азАЗёЁ09 «»", min_size=1, max_size=30))
def test_any_words_after_a_bare_command_make_prose(spec: CommandSpec, rest: str) -> None:
    if not rest.strip():
        return
    for word in words_of(spec):
        typed = f"{word} {rest}"
        if any(typed.casefold().startswith(f"{w} ") for w in words_of(spec) if w != word):
            continue  # «мои задачи …» after «мои»: another of its words
        assert parse_command(typed) is None, typed


# --- who sees what, where ------------------------------------------------------------------


def test_anyone_anywhere_can_ask_for_help_status_search_and_cancel() -> None:
    for place in Place:
        for roles in [set(), {Role.SUPPLIER}, set(Role)]:
            shown = commands(visible(roles, place))
            for command in (
                Command.HELP,
                Command.STATUS,
                Command.SEARCH,
                Command.MORE,
                Command.CANCEL,
            ):
                assert command in shown, (place, roles, command)


def test_a_supplier_in_its_room_sees_only_what_concerns_it() -> None:
    assert commands(visible({Role.SUPPLIER}, Place.SUPPLIER)) == [
        Command.HELP,
        Command.STATUS,
        Command.SEARCH,
        Command.MORE,
        Command.DOCUMENTS,
        Command.SEEN,
        Command.CANCEL,
    ]


def test_a_supplier_never_sees_a_command_meant_for_the_buyer() -> None:
    for place in Place:
        for spec in visible({Role.SUPPLIER}, place):
            assert spec.roles is None, (place, spec.command)


def test_an_approver_in_the_approval_room_may_decide() -> None:
    shown = commands(visible({Role.APPROVER}, Place.APPROVAL))
    assert Command.APPROVE in shown
    assert Command.REJECT in shown
    assert Command.VOTE not in shown
    assert Command.REQUEST not in shown


def test_nobody_else_and_nowhere_else_is_offered_a_decision() -> None:
    for place in Place:
        for roles in (frozenset(Role) - {Role.APPROVER}, frozenset()):
            shown = commands(visible(roles, place))
            assert Command.APPROVE not in shown
            assert Command.REJECT not in shown
        if place is not Place.APPROVAL:
            shown = commands(visible(set(Role), place))
            assert Command.APPROVE not in shown
            assert Command.REJECT not in shown


def test_the_vote_command_is_for_the_commission_room_and_its_people() -> None:
    assert Command.VOTE in commands(visible({Role.COMMISSION}, Place.COMMISSION))
    assert Command.VOTE in commands(visible({Role.MANAGER}, Place.COMMISSION))
    assert Command.VOTE not in commands(visible({Role.TEAM}, Place.COMMISSION))
    assert Command.VOTE not in commands(visible({Role.SUPPLIER}, Place.COMMISSION))
    assert Command.VOTE not in commands(visible({Role.COMMISSION}, Place.ORG))
    assert Command.VOTE not in commands(visible({Role.COMMISSION}, Place.DIRECT))


def test_requests_are_filed_by_the_manager_and_team_in_the_org_chat_or_directly() -> None:
    for place in (Place.ORG, Place.DIRECT):
        assert Command.REQUEST in commands(visible({Role.MANAGER}, place))
        assert Command.REQUEST in commands(visible({Role.TEAM}, place))
        for role in (Role.LOGISTICS, Role.COMMISSION, Role.APPROVER, Role.SUPPLIER):
            assert Command.REQUEST not in commands(visible({role}, place)), (place, role)
    for place in Place:
        if place not in (Place.ORG, Place.DIRECT):
            assert Command.REQUEST not in commands(visible(set(Role), place)), place


def test_tasks_are_in_the_direct_chat_and_documents_in_rooms() -> None:
    for place in Place:
        shown = commands(visible(set(Role), place))
        assert (Command.TASKS in shown) == (place is Place.DIRECT), place
        assert (Command.DOCUMENTS in shown) == (place is not Place.DIRECT), place
        assert (Command.SEEN in shown) == (place is not Place.DIRECT), place


def test_visible_takes_any_iterable_of_roles() -> None:
    expected = visible(frozenset({Role.APPROVER}), Place.APPROVAL)
    assert visible([Role.APPROVER], Place.APPROVAL) == expected
    assert visible(iter([Role.APPROVER]), Place.APPROVAL) == expected
    assert visible((r for r in [Role.APPROVER]), Place.APPROVAL) == expected


role_sets = st.frozensets(st.sampled_from(list(Role)))


@given(role_sets, st.sampled_from(list(Place)))
def test_visible_is_what_is_allowed_in_the_table_s_order(
    roles: frozenset[Role], place: Place
) -> None:
    shown = visible(roles, place)
    assert list(shown) == [spec for spec in COMMANDS if spec.allowed(roles, place)]
    assert SPECS[Command.HELP] in shown
    for spec in shown:
        assert place in spec.places
        assert spec.roles is None or spec.roles & roles


@given(role_sets, role_sets, st.sampled_from(list(Place)))
def test_more_roles_never_hide_a_command(
    some: frozenset[Role], more: frozenset[Role], place: Place
) -> None:
    assert set(commands(visible(some, place))) <= set(commands(visible(some | more, place)))


def test_each_place_shows_a_different_menu_to_everyone() -> None:
    menus = {place: commands(visible(set(Role), place)) for place in Place}
    for a, b in combinations([Place.DIRECT, Place.APPROVAL, Place.COMMISSION, Place.ORG], 2):
        assert menus[a] != menus[b], (a, b)


def _parsed(text: str) -> ParsedCommand:
    parsed = parse_command(text)
    assert isinstance(parsed, ParsedCommand)
    return parsed


def test_a_sentence_starting_with_a_command_of_no_use_there_is_chat() -> None:
    sentence = _parsed("Согласовать сроки нужно до пятницы")
    assert is_prose(sentence, Place.SUPPLIER)
    # Where the command applies it is one (a binding one still asks for a click).
    assert not is_prose(sentence, Place.APPROVAL)
    # With «!», alone, or in the direct chat it is meant for the bot.
    assert not is_prose(_parsed("!согласовать сроки"), Place.SUPPLIER)
    assert not is_prose(_parsed("согласовать"), Place.SUPPLIER)
    assert not is_prose(sentence, Place.DIRECT)
    assert not is_prose(_parsed("поиск поставщика"), Place.SUPPLIER)  # search is everywhere
