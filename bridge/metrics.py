"""Prometheus metrics of the bridge (served at GET /metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

QUEUE_DEPTH = Gauge(
    "bridge_queue_depth", "Items waiting in a durable queue", ["queue"], registry=REGISTRY
)
QUEUE_OLDEST = Gauge(
    "bridge_queue_oldest_waiting_seconds",
    "Age of the longest-waiting item of a durable queue (0 when none waits)",
    ["queue"],
    registry=REGISTRY,
)
QUEUE_DEAD = Gauge(
    "bridge_queue_dead", "Items parked as dead letters", ["queue"], registry=REGISTRY
)
PROCESSED = Counter(
    "bridge_processed_total", "Items processed successfully", ["queue"], registry=REGISTRY
)
FAILED = Counter(
    "bridge_failed_total", "Processing attempts that failed", ["queue"], registry=REGISTRY
)
LATENCY = Histogram(
    "bridge_processing_latency_seconds",
    "Time from arrival to successful processing",
    ["queue"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
    registry=REGISTRY,
)
TRANSACTIONS = Counter(
    "bridge_hs_transactions_total",
    "Homeserver transactions received, by outcome",
    ["outcome"],
    registry=REGISTRY,
)
CAUGHT_UP = Counter(
    "bridge_events_caught_up_total",
    "Events the homeserver stored and never pushed, read from its rooms after an outage",
    registry=REGISTRY,
)
INCIDENTS = Counter(
    "bridge_incidents_total",
    "Things room policy could not stop (redaction, tombstone, shutdown), detected",
    ["kind"],
    registry=REGISTRY,
)
