"""Metrics of the controls, declared together with fixed label sets (served by the API's GET /metrics)."""

from __future__ import annotations

from prometheus_client import Counter

# Usage rows the orphan sweep gave back: admitted, then the process died (or the request hung) before booking.
USAGE_ORPHANS_RELEASED = Counter("payengine_limit_usage_orphans_released_total",
                                 "Limit usage rows released because their movement never booked", ["kind"])
USAGE_ORPHAN_SWEEP_FAILURES = Counter("payengine_limit_usage_orphan_sweep_failures_total",
                                      "Orphan sweep passes that failed (retried next interval)")
