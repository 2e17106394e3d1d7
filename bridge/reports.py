"""Reports on how the procurement chats are used, read from what the bridge stores."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .db.reports import ResponseTimesSource
from .db.store import Store
from .domain.locale import Locale
from .domain.response_page import as_html
from .domain.response_times import (
    Report,
    ReportFormat,
    as_csv,
    as_json,
    parse_report_query,
    report,
)
from .feature import Feature, Page, PageView, Scope
from .web.api import content_disposition
from .worker import now_ms

_HTML_POLICY = "default-src 'none'; style-src 'unsafe-inline'"


class Reports:
    """`GET /api/v1/reports/response-times` (DESIGN §4.3)."""

    def __init__(self, store: Store, locale: Locale) -> None:
        self.store = store
        self.locale = locale

    def feature(self) -> Feature:
        return Feature(
            name="reports",
            routes=(
                PageView("/api/v1/reports/response-times", self.response_times, Scope.REPORTS),
            ),
        )

    async def response_times(
        self, _: Mapping[str, str], query: Mapping[str, str]
    ) -> dict[str, Any] | Page:
        now = now_ms()
        asked = parse_report_query(query, now, self.locale)
        found = await response_report(
            self.store, asked.from_ms, asked.to_ms, asked.unanswered_after_s, now
        )
        if asked.format is ReportFormat.CSV:
            return Page(
                as_csv(found).encode(),
                "text/csv; charset=utf-8",
                {"Content-Disposition": content_disposition("response-times.csv")},
            )
        if asked.format is ReportFormat.HTML:
            return Page(
                as_html(found, asked.locale).encode(),
                "text/html; charset=utf-8",
                {"Content-Security-Policy": _HTML_POLICY},
            )
        return as_json(found)


async def response_report(
    store: Store, from_ms: int, to_ms: int, unanswered_after_s: int, now_ms: int
) -> Report:
    """How fast suppliers were answered in their chats: the waits begun in [from_ms, to_ms),
    answered up to `now_ms`."""
    source = ResponseTimesSource(store.db)
    bot = store.inbox.bot
    chats = await source.supplier_chats(from_ms, to_ms, bot)
    messages = await source.supplier_messages(from_ms, to_ms, now_ms)
    return report(
        chats,
        messages,
        from_ms=from_ms,
        to_ms=to_ms,
        now_ms=now_ms,
        unanswered_after_s=unanswered_after_s,
    )
