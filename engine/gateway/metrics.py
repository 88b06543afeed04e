"""Gateway metrics, declared together with fixed label sets (served by the API's GET /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

CHANNEL_CALLS = Counter("payengine_channel_calls_total", "Channel calls by outcome",
                        ["channel", "operation", "outcome"])
CHANNEL_LATENCY = Histogram("payengine_channel_call_seconds", "Channel call latency", ["channel", "operation"],
                            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0))
BREAKER_CHANGES = Counter("payengine_channel_breaker_changes_total", "Breaker phase changes", ["channel", "phase"])
VOUCHERS = Counter("payengine_vouchers_total", "Vouchers finished by outcome", ["outcome"])
NOTIFIES = Counter("payengine_channel_notifies_total", "Channel notifies by verdict", ["channel", "verdict"])
JOBS = Counter("payengine_gateway_jobs_total", "Gateway jobs run by kind and result", ["kind", "result"])
