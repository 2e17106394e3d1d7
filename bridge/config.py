"""The bridge's configuration file: template merge (mautrix) and the checks made before start."""

from __future__ import annotations

import base64
import binascii
import io
import os
import secrets
from pathlib import Path
from typing import Any

from mautrix.util.config import BaseFileConfig, ConfigUpdateHelper
from ruamel.yaml import YAML
from yarl import URL

from .domain.locale import Locale
from .domain.reminders import parse_offsets
from .domain.request_form import FormField, parse_fields
from .feature import Scope
from .fetch import FetchPolicy, policy_from_config
from .retry import DEFAULT_MAX_BACKOFF_S
from .web.auth import ApiToken

PLACEHOLDERS = frozenset({"", "generate", "whsec_...", "...", "This value is generated"})
_DEFAULT_BOT_NAME = "Системный помощник"
DEFAULT_MAX_DOCUMENT_BYTES = 50 * 1024 * 1024
DEFAULT_FETCH_CONCURRENCY = 4
DEFAULT_PROVISION_CONCURRENCY = 4
# A token given as a bare string may only read: more must be asked for by name.
_DEFAULT_SCOPES = frozenset({Scope.READ})


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
            "bridge.max_backoff_seconds",
            "bridge.provision_concurrency",
            "documents.max_bytes",
            "documents.fetch",
            "requests.fields",
            "reminders.before",
            "signatures.trust_anchors",
            "signatures.identities",
            "audit.key",
            "audit.origin",
            "audit.checkpoint_seconds",
            "audit.checkpoint_url",
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
    def api_tokens(self) -> list[ApiToken]:
        return [_api_token(entry, f"api.tokens[{i}]") for i, entry in enumerate(self._tokens())]

    def _tokens(self) -> list[Any]:
        return list(self["api.tokens"] or [])

    @property
    def max_backoff_s(self) -> float:
        value = self["bridge.max_backoff_seconds"]
        return DEFAULT_MAX_BACKOFF_S if value is None else float(value)

    @property
    def provision_concurrency(self) -> int:
        """Changes to rooms convergence has under way at the homeserver at once."""
        value = self["bridge.provision_concurrency"]
        return DEFAULT_PROVISION_CONCURRENCY if value is None else int(value)

    @property
    def max_document_bytes(self) -> int:
        value = self["documents.max_bytes"]
        return DEFAULT_MAX_DOCUMENT_BYTES if value is None else int(value)

    @property
    def fetch_policy(self) -> FetchPolicy:
        section = dict(self["documents.fetch"] or {})
        section.pop("concurrency", None)
        return policy_from_config(section, self.max_document_bytes)

    @property
    def request_fields(self) -> tuple[FormField, ...]:
        return parse_fields(self["requests.fields"])

    @property
    def reminder_offsets(self) -> tuple[int, ...]:
        """Seconds before a deadline at which a reminder goes out (`reminders.before`)."""
        return parse_offsets(self["reminders.before"])

    @property
    def fetch_concurrency(self) -> int:
        value = (self["documents.fetch"] or {}).get("concurrency")
        return DEFAULT_FETCH_CONCURRENCY if value is None else int(value)

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
        self["api.tokens"] = [_generated_token(entry) for entry in self._tokens()]

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

    @property
    def audit_key_path(self) -> Path:
        """The checkpoint signing key's file, relative to the config's directory."""
        return Path(self.path).resolve().parent / str(self["audit.key"] or "audit.key")

    @property
    def audit_origin(self) -> str | None:
        """The log's name as the config sets it; None: the key's (see `new_audit_origin`)."""
        return str(self["audit.origin"]) if self["audit.origin"] else None

    @property
    def new_audit_origin(self) -> str:
        """The name a new log's key gets."""
        return self.audit_origin or f"{self['homeserver.domain']}/procurement-bridge"

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
        for i, entry in enumerate(self._tokens()):
            _api_token(entry, f"api.tokens[{i}]")
        self._check_numbers()
        try:
            self.fetch_policy  # noqa: B018 - parsed for their errors
            self.request_fields  # noqa: B018
            self.reminder_offsets  # noqa: B018
        except ValueError as e:
            key, _, problem = str(e).partition(": ")
            raise ConfigError(key, problem) from None

    def _check_numbers(self) -> None:
        for key, minimum in (
            ("audit.checkpoint_seconds", 1),
            ("bridge.max_attempts", 1),
            ("bridge.max_backoff_seconds", 1),
            ("documents.max_bytes", 1),
        ):
            value = self[key]
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float) or value < minimum
            ):
                raise ConfigError(key, f"{value!r} is not a number of at least {minimum}")
        for key, count in (
            ("bridge.provision_concurrency", self["bridge.provision_concurrency"]),
            ("documents.fetch.concurrency", (self["documents.fetch"] or {}).get("concurrency")),
        ):
            if count is not None and (
                isinstance(count, bool) or not isinstance(count, int) or count < 1
            ):
                raise ConfigError(key, f"{count!r} is not a positive whole number")


def _api_token(entry: Any, key: str) -> ApiToken:
    """`api.tokens[i]`: a bare token (may only read) or {token, scopes}."""
    if isinstance(entry, str):
        token, scopes = entry, _DEFAULT_SCOPES
    elif isinstance(entry, dict) and isinstance(entry.get("token"), str):
        token = entry["token"]
        names = entry.get("scopes")
        if not isinstance(names, list) or not names:
            raise ConfigError(f"{key}.scopes", "list the scopes: read, documents, admin")
        try:
            scopes = frozenset(Scope(str(name)) for name in names)
        except ValueError:
            raise ConfigError(
                f"{key}.scopes", f"{names!r}: each scope is one of read, documents, admin"
            ) from None
    else:
        raise ConfigError(key, "is a token, or a mapping with `token` and `scopes`")
    if token in PLACEHOLDERS or len(token) < 16:
        raise ConfigError(key, "is a placeholder or shorter than 16 characters")
    return ApiToken(token, scopes)


def _generated_token(entry: Any) -> Any:
    if isinstance(entry, str):
        return secrets.token_urlsafe(32) if entry in PLACEHOLDERS else entry
    if isinstance(entry, dict) and str(entry.get("token", "")) in PLACEHOLDERS:
        entry["token"] = secrets.token_urlsafe(32)
    return entry


def write_secret_file(path: str | Path, data: Any) -> None:
    """Writes YAML holding secrets readable by the owner alone (0600), also when the file
    existed with wider permissions, and never world-readable for a moment."""
    stream = io.StringIO()
    yaml = YAML()
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.dump(data, stream)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        os.fchmod(out.fileno(), 0o600)
        out.write(stream.getvalue())


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
