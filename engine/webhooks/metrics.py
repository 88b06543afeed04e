"""Webhook delivery metrics, declared once with fixed label sets (prometheus default registry)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

# outcome: delivered | retry | dead
WEBHOOK_ATTEMPTS = Counter("payengine_webhook_attempts_total", "Webhook delivery attempts by outcome", ["outcome"])
WEBHOOK_LATENCY = Histogram(
    "payengine_webhook_attempt_seconds", "Duration of one webhook POST (answered or not)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
