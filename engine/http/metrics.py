"""HTTP metrics, declared once with fixed label sets (prometheus default registry)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter("payengine_http_requests_total", "HTTP requests by route and status",
                        ["method", "route", "status"])
HTTP_LATENCY = Histogram(
    "payengine_http_request_seconds", "HTTP request latency by route and status", ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
RATE_LIMITED = Counter("payengine_ratelimit_refused_total", "Requests refused with 429 by the per-merchant limit")
RATE_LIMIT_FAIL_OPEN = Counter("payengine_ratelimit_fail_open_total",
                               "Requests let through unchecked because Redis was unreachable or slow")
CLIENT_DISCONNECTS = Counter("payengine_http_client_disconnects_total",
                             "Requests whose client hung up before the answer (no error of ours)")
DEPENDENCY_UNAVAILABLE = Counter("payengine_http_dependency_unavailable_total",
                                 "Requests answered 503 because PostgreSQL, Redis or the network was unreachable",
                                 ["dependency"])
DEPENDENCY_UP = Gauge("payengine_dependency_up", "1 when the last readiness probe reached the dependency, else 0",
                      ["dependency"])
# A scrape whose read of PostgreSQL or Redis for the sampled gauges (engine/http/gauges.py) failed: those gauges
# then keep the values of the last good read.
GAUGE_SAMPLE_FAILURES = Counter("payengine_gauge_sample_failures_total",
                                "Reads for the gauges sampled at scrape time that failed, by source", ["source"])
