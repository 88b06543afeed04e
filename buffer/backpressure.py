"""Back-pressure: refuse new postings to a hot account whose buffer is past max_depth or max_lag_ms.

Policy (a setting, ``backpressure_wait_ms``): by default refuse at once with BufferBackpressure
(HTTP 503 + Retry-After). A request waiting here would hold its PostgreSQL connection and open
transaction while the flusher needs the database to catch up, so waiting makes the overload worse;
clients retry with a delay instead. A small bounded wait can be configured for smoother bursts.

The check reads a per-process view of each account's depth and oldest age that every enqueue and
reservation already returns, so a payment normally pays no extra Redis round trip for it; only an
account seen over its limit is re-read (at most every STALE_MS) before refusing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from buffer import metrics
from buffer.errors import BufferBackpressure
from buffer.scripts import Scripts
from buffer.state import read_status
from buffer.tuning import BufferTuning

STALE_MS = 100
WAIT_STEP_S = 0.05


@dataclass(slots=True)
class _View:
    depth: int
    age_ms: int
    seen_at: float  # monotonic seconds

    def over(self, tuning: BufferTuning) -> bool:
        age = self.age_ms + (int((time.monotonic() - self.seen_at) * 1000) if self.depth else 0)
        return self.depth >= tuning.max_depth or age >= tuning.max_lag_ms


class BackpressureGate:
    def __init__(self, redis: aioredis.Redis, scripts: Scripts) -> None:
        self._redis = redis
        self._scripts = scripts
        self._views: dict[str, _View] = {}

    def observe(self, account_id: str, depth: int, age_ms: int) -> None:
        self._views[account_id] = _View(depth, age_ms, time.monotonic())

    def retry_after_s(self, tuning: BufferTuning) -> int:
        return max(1, -(-tuning.flush_interval_ms * 10 // 1000))

    async def check(self, account_ids: Sequence[str], tuning: BufferTuning) -> None:
        """Raise BufferBackpressure if any account is behind (after waiting up to the configured bound)."""
        deadline = time.monotonic() + tuning.backpressure_wait_ms / 1000
        while True:
            over = [a for a in account_ids if (v := self._views.get(a)) is not None and v.over(tuning)]
            if not over:
                return
            stale = [a for a in over if (time.monotonic() - self._views[a].seen_at) * 1000 >= STALE_MS]
            if stale:
                try:
                    for status in await read_status(self._redis, self._scripts, stale):
                        self.observe(status.account_id, status.depth, status.oldest_age_ms)
                except (RedisError, OSError):
                    # No fresh view: do not refuse on old data; hot debits still meet Redis in reserve.
                    for a in stale:
                        self._views.pop(a, None)
                    return
                over = [a for a in over if self._views[a].over(tuning)]
                if not over:
                    return
            if time.monotonic() >= deadline:
                view = self._views[over[0]]
                metrics.BACKPRESSURE.labels(over[0]).inc()
                raise BufferBackpressure(over[0], view.depth, view.age_ms, self.retry_after_s(tuning))
            await asyncio.sleep(WAIT_STEP_S)
