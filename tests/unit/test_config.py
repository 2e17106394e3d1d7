"""Configuration the operator writes: API tokens and their scopes, retry and fetch settings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from bridge.config import Config, ConfigError
from bridge.domain.commands import Command, parse_command
from bridge.domain.errors import InvalidInput
from bridge.domain.locale import Locale
from bridge.domain.text import clean_text
from bridge.domain.webhooks import parse_webhook
from bridge.domain.words import HELP
from bridge.feature import Scope

TOKEN = "t" * 32
REPO = Path(__file__).resolve().parents[2]


def config(tmp_path: Path, **sections: Any) -> Config:
    data = {
        "homeserver": {"address": "http://127.0.0.1:8008", "domain": "example.org"},
        "appservice": {"as_token": "a" * 32, "hs_token": "h" * 32},
        "database": "sqlite:bridge.db",
        "webhooks": {"secrets": ["whsec_" + "A" * 44]},
        "api": {"tokens": [TOKEN]},
    } | sections
    path = tmp_path / "config.yaml"
    YAML().dump(data, path)
    loaded = Config(str(path), "pkg://bridge/example-config.yaml")
    loaded.load()
    loaded.update(save=False)
    return loaded


def test_a_bare_token_may_only_read_and_scopes_are_named(tmp_path: Path) -> None:
    tokens = [TOKEN, {"token": "o" * 32, "scopes": ["admin", "documents"]}]
    loaded = config(tmp_path, api={"tokens": tokens})
    loaded.check()
    assert [t.scopes for t in loaded.api_tokens] == [
        frozenset({Scope.READ}),
        frozenset({Scope.ADMIN, Scope.DOCUMENTS}),
    ]


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ({"api": {"tokens": ["short"]}}, "api.tokens[0]"),
        (
            {"api": {"tokens": [{"token": TOKEN, "scopes": ["everything"]}]}},
            "api.tokens[0].scopes",
        ),
        ({"api": {"tokens": [{"token": TOKEN}]}}, "api.tokens[0].scopes"),
        ({"api": {"tokens": [{"token": "generate", "scopes": ["read"]}]}}, "api.tokens[0]"),
        ({"bridge": {"max_backoff_seconds": 0}}, "bridge.max_backoff_seconds"),
        ({"documents": {"fetch": {"allow": ["ftp://x/"]}}}, "documents.fetch.allow[0]"),
        ({"documents": {"fetch": {"allow_networks": ["10.0.0.1/8"]}}}, "documents.fetch"),
        ({"documents": {"fetch": {"concurrency": 0}}}, "documents.fetch.concurrency"),
        ({"bridge": {"provision_concurrency": 0}}, "bridge.provision_concurrency"),
        ({"bridge": {"provision_concurrency": "4"}}, "bridge.provision_concurrency"),
    ],
)
def test_a_bad_setting_names_its_key(tmp_path: Path, section: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as refused:
        config(tmp_path, **section).check()
    assert refused.value.key.startswith(key)


def test_convergence_has_four_changes_under_way_unless_told_otherwise(tmp_path: Path) -> None:
    assert config(tmp_path).provision_concurrency == 4
    assert config(tmp_path, bridge={"provision_concurrency": 8}).provision_concurrency == 8


def test_generated_tokens_keep_their_scopes(tmp_path: Path) -> None:
    loaded = config(tmp_path, api={"tokens": [{"token": "generate", "scopes": ["admin"]}]})
    loaded.fill_generated()
    [token] = loaded.api_tokens
    assert token.token != "generate"
    assert token.scopes == frozenset({Scope.ADMIN})


@pytest.mark.parametrize("locale", list(Locale))
def test_help_advertises_only_commands_the_bot_has(locale: Locale) -> None:
    _, _, commands, _ = HELP[locale]
    for line, _ in commands:
        parsed = parse_command(line.split(" <")[0].split(" [")[0])
        assert parsed is not None, line
        assert isinstance(parsed.command, Command)


def test_text_from_outside_is_made_safe_to_store() -> None:
    assert clean_text("offer\x00final.pdf", 255) == "offer\ufffdfinal.pdf"
    assert clean_text("a\nb\tc", 10, single_line=True) == "a b c"
    assert clean_text("a\nb", 10) == "a\nb"
    assert clean_text("x" * 20, 10) == "x" * 9 + "…"
    assert clean_text("\u009b[31m", 10) == "\ufffd[31m"
    assert clean_text("a\ud800b", 10) == "a\ufffdb"


def test_a_lone_surrogate_is_not_text() -> None:
    """JSON can escape one (`"\\ud800"`); no UTF-8 store or homeserver would take it."""
    body = json.loads('{"type": "notice.posted", "data": {"procurement_id": "26908", '
                      '"room": "org", "markdown": "\\ud800"}}')  # fmt: skip
    with pytest.raises(InvalidInput) as refused:
        parse_webhook(body)
    assert refused.value.path == "data.markdown"


def test_the_repository_registration_is_the_generated_one_without_secrets(
    tmp_path: Path,
) -> None:
    """`registration.yaml` at the top shows what `-g` writes, and no homeserver would load it."""
    shown = YAML(typ="safe").load(REPO / "registration.yaml")
    generated = config(tmp_path).registration()
    assert set(shown) == set(generated)
    assert shown["as_token"] is None
    assert shown["hs_token"] is None
    same = {k: v for k, v in generated.items() if k not in ("as_token", "hs_token")}
    assert {k: shown[k] for k in same} == same
