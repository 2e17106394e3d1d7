from hypothesis import given
from hypothesis import strategies as st

from bridge.domain.commands import Command, ParsedCommand, parse_command


def test_russian_and_english_words() -> None:
    assert parse_command("помощь") == ParsedCommand(Command.HELP, "")
    assert parse_command("  Help ") == ParsedCommand(Command.HELP, "")
    assert parse_command("!help") == ParsedCommand(Command.HELP, "")
    assert parse_command("Кто видел") == ParsedCommand(Command.SEEN, "")
    assert parse_command("отклонить: цена выше рынка") == ParsedCommand(
        Command.REJECT, "цена выше рынка"
    )
    assert parse_command("approve looks good") == ParsedCommand(Command.APPROVE, "looks good")


def test_ordinary_messages_are_not_commands() -> None:
    assert parse_command("помощник нужен") is None
    assert parse_command("helpful") is None
    assert parse_command("Добрый день, коллеги") is None
    assert parse_command("") is None


@given(st.text())
def test_never_raises(text: str) -> None:
    parse_command(text)
