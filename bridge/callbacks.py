"""Delivers the callback outbox to the procurement system, signed per Standard Webhooks."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

import aiohttp
from prometheus_client import Counter
from standardwebhooks import Webhook

from . import metrics
from .config import decode_whsec
from .db.callbacks import OutgoingCallback
from .retry import Permanent, Transient

log = logging.getLogger("bridge.callbacks")

# The worker's name: its metrics carry queue="callbacks".
QUEUE = "callbacks"
TIMEOUT_S = 10.0
# The receiver refuses this exact request for what it says: the same bytes would be refused
# again. Anything else (401/403 from a secret being rotated, 404 from an endpoint not yet
# deployed, 408, 429, 5xx) is retried, so the backlog flows once the operator fixes it.
REFUSED = frozenset({400, 410, 413, 415, 422})
_ERROR_SNIPPET = 200

FAILURES = Counter(
    "bridge_callback_failures_total",
    "Callback delivery attempts that failed, by reason (HTTP status class, timeout, network)",
    ["reason"],
    registry=metrics.REGISTRY,
)


class DeliveryFailed(Transient):
    """The receiver did not take the callback this time; retried with backoff for as long as
    it lasts, so a receiver down over a long weekend loses nothing."""


def sign(webhook: Webhook, webhook_id: str, timestamp: int, body: str) -> dict[str, str]:
    """The Standard Webhooks headers of one delivery attempt."""
    signature = webhook.sign(webhook_id, datetime.fromtimestamp(timestamp, UTC), body)
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    }


class CallbackSender:
    def __init__(
        self, session: aiohttp.ClientSession, url: str, secret: str, timeout_s: float = TIMEOUT_S
    ) -> None:
        self.session = session
        self.url = url
        self.webhook = Webhook(decode_whsec(secret))
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def deliver(self, item: OutgoingCallback) -> None:
        """POSTs one callback; returns on 2xx, raises Permanent or DeliveryFailed otherwise."""
        # Each attempt is signed afresh (the receiver refuses stale timestamps); the id stays.
        headers = sign(self.webhook, item.webhook_id, int(time.time()), item.body)
        headers["Content-Type"] = "application/json; charset=utf-8"
        try:
            async with self.session.post(
                self.url,
                data=item.body.encode(),
                headers=headers,
                timeout=self.timeout,
                # A redirect would lose the POST body; the operator fixes the url instead.
                allow_redirects=False,
            ) as resp:
                if 200 <= resp.status < 300:
                    log.debug("Delivered %s (HTTP %d)", item.label, resp.status)
                    return
                answer = (await resp.text(errors="replace"))[:_ERROR_SNIPPET]
                status = resp.status
        except TimeoutError:
            FAILURES.labels("timeout").inc()
            raise DeliveryFailed(f"no answer within {self.timeout.total} s") from None
        except aiohttp.ClientError as e:
            FAILURES.labels("network").inc()
            raise DeliveryFailed(f"{type(e).__name__}: {e}") from None
        FAILURES.labels(f"{status // 100}xx").inc()
        problem = f"the receiver answered HTTP {status}: {answer!r}"
        if status in REFUSED:
            raise Permanent(problem)
        raise DeliveryFailed(problem)
