"""The Prometheus metrics every stage counts into (served at ``GET /metrics``).

Counters and histograms live here; gauges that describe current state (stream state, queue depths, timers
pending, webhook backlog) are read at scrape time by the app's collector instead of being kept up to date.
In an API worker process (spawned with ``PROMETHEUS_MULTIPROC_DIR`` set) the same objects write to files the
core's ``/metrics`` merges in.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

PREFIX = "xmpp_connect_"

SENDS = Counter(
    PREFIX + "sends", "Send requests answered, by outcome (accepted, refused) and refusal reason.",
    ["outcome", "reason"],
)
EVIDENCE_EVENTS = Counter(
    PREFIX + "evidence_events", "Evidence events recorded, by normalized type and assessment.",
    ["event_type", "category", "subclass"],
)
STREAM_EVENTS = Counter(
    PREFIX + "stream_events",
    "XMPP stream events per account: stream_connected (the first connect and every reconnect), "
    "stream_disconnected, stream_error.",
    ["account", "kind"],
)
WEBHOOK_DELIVERIES = Counter(
    PREFIX + "webhook_deliveries",
    "Webhook delivery attempts by outcome: delivered, retried (timeout, 5xx, connection), dead.",
    ["tenant", "outcome"],
)
WEBHOOK_LAG = Histogram(
    PREFIX + "webhook_lag_seconds", "From an event being recorded to its receiver answering 2xx.",
    ["tenant"], buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
)
HTTP_REQUEST_SECONDS = Histogram(
    PREFIX + "http_request_duration_seconds", "HTTP request latency by route template, method and status.",
    ["route", "method", "status"],
)
