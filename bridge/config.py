"""The bridge's configuration file: template merge (mautrix) and the checks made before start."""

from __future__ import annotations

import base64
import binascii
import secrets
from typing import Any

from mautrix.util.config import BaseFileConfig, ConfigUpdateHelper
from yarl import URL

from .domain.locale import Locale

PLACEHOLDERS = frozenset({"", "generate", "whsec_...", "...", "This value is generated"})
_DEFAULT_BOT_NAME = "Системный помощник"


class ConfigError(Exception):
    """A configuration value that stops the start; the message names the key."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key


class Config(BaseFileConfig):
    def do_update(self, helper: ConfigUpdateHelper) -> None:
        copy, copy_dict, _ = helper
        for key in (
            "homeserver.address",
            "homeserver.domain",
            "appservice.address",
            "appservice.hostname",
            "appservice.port",
            "appservice.id",
            "appservice.bot.username",
            "appservice.bot.displayname",
            "appservice.as_token",
            "appservice.hs_token",
            "database",
            "database_opts",
            "webhooks.secrets",
            "webhooks.max_body_bytes",
            "callbacks.url",
            "callbacks.secret",
            "api.tokens",
            "bridge.locale",
            "bridge.federate",
            "bridge.max_attempts",
            "documents.max_bytes",
            "signatures.trust_anchors",
            "signatures.identities",
        ):
            copy(key)
        copy_dict("logging", override_existing_map=True)

    # Values ---------------------------------------------------------------------------------

    @property
    def locale(self) -> Locale:
        return Locale(self["bridge.locale"])

    @property
    def bot_mxid(self) -> str:
        return f"@{self['appservice.bot.username']}:{self['homeserver.domain']}"

    @property
    def bot_displayname(self) -> str:
        name: str = self["appservice.bot.displayname"] or _DEFAULT_BOT_NAME
        if name == _DEFAULT_BOT_NAME and self.locale is Locale.EN:
            return "System assistant"
        return name

    @property
    def webhook_secrets(self) -> list[bytes]:
        return [decode_whsec(s) for s in self["webhooks.secrets"] or []]

    @property
    def api_tokens(self) -> list[str]:
        return [str(t) for t in self["api.tokens"] or []]

    # Generation ----------------------------------------------------------------------------

    def fill_generated(self) -> None:
        """Replaces every "generate" placeholder with a fresh random secret."""
        if self["appservice.as_token"] in PLACEHOLDERS:
            self["appservice.as_token"] = secrets.token_urlsafe(48)
        if self["appservice.hs_token"] in PLACEHOLDERS:
            self["appservice.hs_token"] = secrets.token_urlsafe(48)
        self["webhooks.secrets"] = [
            new_whsec() if s in PLACEHOLDERS else s for s in self["webhooks.secrets"] or []
        ] or [new_whsec()]
        if self["callbacks.secret"] in PLACEHOLDERS:
            self["callbacks.secret"] = new_whsec()
        self["api.tokens"] = [
            secrets.token_urlsafe(32) if t in PLACEHOLDERS else t for t in self["api.tokens"] or []
        ]

    def registration(self) -> dict[str, Any]:
        domain = self["homeserver.domain"].replace(".", r"\.")
        bot_regex = f"@{self['appservice.bot.username']}:{domain}"
        return {
            "id": self["appservice.id"],
            "url": self["appservice.address"],
            "as_token": self["appservice.as_token"],
            "hs_token": self["appservice.hs_token"],
            "sender_localpart": self["appservice.bot.username"],
            "rate_limited": False,
            # Read receipts arrive as ephemeral events (DESIGN §4.5).
            "receive_ephemeral": True,
            "de.sorunome.msc2409.push_ephemeral": True,
            "namespaces": {
                "users": [{"exclusive": True, "regex": bot_regex}],
                "aliases": [],
                "rooms": [],
            },
        }

    # Checks --------------------------------------------------------------------------------

    def check(self) -> None:
        """Raises ConfigError naming the first bad key."""
        generate_hint = "run `python -m bridge -c <config> -g -r registration.yaml` to generate it"
        for key in ("appservice.as_token", "appservice.hs_token"):
            if str(self[key] or "") in PLACEHOLDERS:
                raise ConfigError(key, f"is a placeholder; {generate_hint}")
        for key in ("homeserver.address", "appservice.address"):
            url = URL(str(self[key] or ""))
            if url.scheme not in ("http", "https") or not url.host:
                raise ConfigError(key, f"{self[key]!r} is not an http(s) URL")
        if not self["homeserver.domain"]:
            raise ConfigError("homeserver.domain", "is missing")
        scheme = URL(str(self["database"] or "")).scheme
        if scheme not in ("postgres", "postgresql", "sqlite", "sqlite3"):
            raise ConfigError(
                "database",
                f"unknown scheme {scheme!r}: use sqlite:<file> or postgres://user:pass@host/db",
            )
        try:
            Locale(self["bridge.locale"])
        except ValueError:
            raise ConfigError("bridge.locale", "must be ru or en") from None
        secrets_list = self["webhooks.secrets"] or []
        if not secrets_list:
            raise ConfigError("webhooks.secrets", f"no secret is set; {generate_hint}")
        for i, secret in enumerate(secrets_list):
            key = f"webhooks.secrets[{i}]"
            if secret in PLACEHOLDERS:
                raise ConfigError(key, f"is a placeholder; {generate_hint}")
            try:
                decode_whsec(secret)
            except ValueError as e:
                raise ConfigError(key, str(e)) from None
        if self["callbacks.url"]:
            if str(self["callbacks.secret"] or "") in PLACEHOLDERS:
                raise ConfigError("callbacks.secret", f"is a placeholder; {generate_hint}")
            try:
                decode_whsec(self["callbacks.secret"])
            except ValueError as e:
                raise ConfigError("callbacks.secret", str(e)) from None
        for i, token in enumerate(self["api.tokens"] or []):
            if str(token) in PLACEHOLDERS or len(str(token)) < 16:
                raise ConfigError(f"api.tokens[{i}]", "is a placeholder or shorter than 16")


def new_whsec() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def decode_whsec(secret: str) -> bytes:
    """The key bytes of a Standard Webhooks secret ("whsec_<base64>")."""
    if not isinstance(secret, str) or not secret.startswith("whsec_"):
        raise ValueError('a secret looks like "whsec_<base64>"')
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the part after whsec_ is not base64") from None
    if len(key) < 16:
        raise ValueError("the secret is shorter than 16 bytes")
    return key
