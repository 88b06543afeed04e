"""Payment metrics, declared together with fixed label sets (served by the API's GET /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

BATCH_SIZE = Histogram("payengine_payment_batch_size", "Wallet payments per booked batch",
                       buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024))
BATCH_QUEUE_WAIT = Histogram("payengine_payment_batch_queue_wait_seconds",
                             "Time a wallet payment waited in the batcher's queue before its batch started",
                             buckets=(0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0))
BATCH_SECONDS = Histogram("payengine_payment_batch_seconds", "Time to book one batch (transaction and commit)",
                          buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5))
BATCHES = Counter("payengine_payment_batches_total", "Batches booked, by result (booked, split, failed)",
                  ["result"])
BATCH_REFUSED_FULL = Counter("payengine_payment_batch_queue_full_total",
                             "Wallet payments refused 503 because the batcher's queue was full")
