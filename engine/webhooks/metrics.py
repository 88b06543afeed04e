"""Webhook delivery metrics, declared once with fixed label sets (prometheus default registry)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# outcome: delivered | retry | dead
WEBHOOK_ATTEMPTS = Counter("payengine_webhook_attempts_total", "Webhook delivery attempts by outcome", ["outcome"])
WEBHOOK_LATENCY = Histogram(
    "payengine_webhook_attempt_seconds", "Duration of one webhook POST (answered or not)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
# The outbox as PostgreSQL holds it, read when /metrics is scraped (engine/http/gauges.py), so a delivery
# worker that died or fell behind shows here even though it reports nothing itself.
WEBHOOK_BACKLOG = Gauge("payengine_webhook_backlog_events",
                        "Pending webhook events due for delivery now (counted up to 10,000)")
WEBHOOK_OLDEST_DUE = Gauge("payengine_webhook_oldest_due_age_seconds",
                           "How long the longest-waiting due webhook event has been due (0: none due)")
