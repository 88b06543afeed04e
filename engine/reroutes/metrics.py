"""Re-route metrics, declared together (served by the API's GET /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

# Read from PostgreSQL when /metrics is scraped (engine/http/gauges.py): refunds the channel refused that wait for
# an operator (`payengine refunds failed`), and how long the oldest of them has waited.
FAILED_REFUNDS_AWAITING = Gauge("payengine_failed_refunds_awaiting_operator",
                                "Refunds the channel refused, waiting for an operator to re-route them")
FAILED_REFUND_OLDEST_AGE = Gauge("payengine_failed_refund_oldest_age_seconds",
                                 "How long the oldest refund waiting for an operator has waited (0: none)")
REFUNDS_REROUTED = Counter("payengine_refunds_rerouted_total", "Failed refunds resolved by an operator", ["to"])
