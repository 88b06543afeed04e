"""Buffer metrics, declared together, in the default prometheus registry of the process that counts them:
the API's /metrics for in-process flushers, the flusher process's own with ``--metrics-port``
(``payengine flush``: PAYENGINE_FLUSH_METRICS_PORT).

Labels are fixed: ``account`` only, whose values are the hot accounts (a few dozen, not customers).
Depth, oldest age and last applied are what Redis holds for every hot account, read when /metrics is
scraped (buffer/gauges.py) and after each flush: so they keep moving when no flusher runs.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

DEPTH = Gauge("payengine_buffer_depth", "Legs waiting in an account's buffer", ["account"])
OLDEST_AGE = Gauge("payengine_buffer_oldest_age_seconds", "Age of the oldest pending leg", ["account"])
LAST_APPLIED = Gauge("payengine_buffer_last_applied_timestamp_seconds",
                     "Unix time a flusher last applied a batch of the account (0: never since Redis had it)",
                     ["account"])
# The live back-pressure thresholds (GET|PUT /admin/buffer/settings), so alerts follow a retuning.
MAX_LAG = Gauge("payengine_buffer_max_lag_seconds", "Oldest pending age at which postings are refused")
MAX_DEPTH = Gauge("payengine_buffer_max_depth", "Buffer depth at which postings are refused")
BATCHES = Counter("payengine_buffer_batches_total", "Flush batches committed", ["account"])
LEGS_APPLIED = Counter("payengine_buffer_legs_applied_total", "Legs moved buffered -> applied", ["account"])
BATCH_SIZE = Histogram(
    "payengine_buffer_batch_legs", "Legs per flush batch",
    buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000),
)
FLUSH_SECONDS = Histogram(
    "payengine_buffer_flush_seconds", "Duration of one flush (take, PostgreSQL apply, Redis ack)",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
RECOVERED = Counter(
    "payengine_buffer_recovery_reenqueued_total", "Legs re-enqueued by the recovery sweep", ["account"]
)
BACKPRESSURE = Counter(
    "payengine_buffer_backpressure_refusals_total", "Postings refused because a buffer was behind", ["account"]
)
ENQUEUE_FAILURES = Counter(
    "payengine_buffer_enqueue_failures_total", "Enqueues that failed (Redis down); recovery re-enqueues them"
)
FLUSH_ERRORS = Counter("payengine_buffer_flush_errors_total", "Flush attempts that failed", ["account", "kind"])
