"""The buffer's gauges as Redis holds them now, for every hot account, whoever flushes it.

A flusher sets depth and age after its own flushes, so in a process whose flushers stopped (or that runs
none) they would stand still at their last value exactly when they matter. ``publish_status`` reads every
hot account's status in one round trip when /metrics is scraped and replaces the account gauges whole: an
account that is no longer hot drops out, and depth and oldest age keep growing while nothing flushes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import redis.asyncio as aioredis

from buffer import metrics
from buffer.scripts import Scripts
from buffer.state import BufferStatus, read_status
from buffer.tuning import BufferTuning


async def publish_status(redis: aioredis.Redis, scripts: Scripts, account_ids: Sequence[str],
                         tuning: BufferTuning) -> list[BufferStatus]:
    """Read the status of ``account_ids`` (the hot accounts) and set the account gauges and the live
    thresholds from it. Raises what Redis raises; the gauges are then left as they were."""
    statuses = await read_status(redis, scripts, account_ids) if account_ids else []
    # No await from here on: a scrape never sees the gauges half replaced.
    for gauge in (metrics.DEPTH, metrics.OLDEST_AGE, metrics.LAST_APPLIED):
        gauge.clear()
    for status in statuses:
        metrics.DEPTH.labels(status.account_id).set(status.depth)
        metrics.OLDEST_AGE.labels(status.account_id).set(status.oldest_age_ms / 1000)
        metrics.LAST_APPLIED.labels(status.account_id).set(status.last_flush_ms / 1000)
    metrics.MAX_LAG.set(tuning.max_lag_ms / 1000)
    metrics.MAX_DEPTH.set(tuning.max_depth)
    return statuses


def forget_accounts(account_ids: Sequence[str]) -> None:
    """Drop the account gauges of accounts this process stopped flushing: another process's flusher owns
    them now, and a value left here would stand still beside its live one."""
    for account_id in account_ids:
        for gauge in (metrics.DEPTH, metrics.OLDEST_AGE, metrics.LAST_APPLIED):
            with contextlib.suppress(KeyError):  # older prometheus_client raises for an unknown label set
                gauge.remove(account_id)
