"""Metrics of the controls, declared together with fixed label sets (served by the API's GET /metrics)."""

from __future__ import annotations

from prometheus_client import Counter

# Usage rows the orphan sweep gave back: admitted, then the process died (or the request hung) before booking.
USAGE_ORPHANS_RELEASED = Counter("payengine_limit_usage_orphans_released_total",
                                 "Limit usage rows released because their movement never booked", ["kind"])
USAGE_ORPHAN_SWEEP_FAILURES = Counter("payengine_limit_usage_orphan_sweep_failures_total",
                                      "Orphan sweep passes that failed (retried next interval)")
# Every decision of every risk rule that applied to an attempt (allow, review, deny); rule is the rule's id,
# so the label set is bounded by the configured rules.
RISK_DECISIONS = Counter("payengine_risk_decisions_total", "Risk rule decisions by rule, kind and decision",
                         ["rule", "kind", "decision"])
LIMIT_REFUSALS = Counter("payengine_limit_refusals_total", "Attempts refused by a limit",
                         ["scope", "window", "metric"])
