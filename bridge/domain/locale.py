"""The bot's languages: Russian by default, English with `bridge.locale: en`."""

from __future__ import annotations

from enum import Enum


class Locale(Enum):
    RU = "ru"
    EN = "en"
