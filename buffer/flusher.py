"""Flush one account: take the head of its buffer, apply it in one PostgreSQL transaction, then ack.

The caller must own the account (hold its advisory lock on ``conn``), so batches of one account
are applied one at a time, in buffer order. Every step can die without losing or doubling money:
- before the commit: nothing changed; the legs are still queued and are taken again;
- after the commit, before the ack: PostgreSQL has them applied, Redis still queues them; the next
  flush re-takes them and the ``status = 'buffered'`` guard makes that batch change nothing, then
  the ack drops them and refreshes the cached balance (applied + pending was right all along).
"""

from __future__ import annotations

import collections
import os
import signal
import time
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from buffer import metrics
from buffer.keys import account_keys, parse_leg_member
from buffer.scripts import Scripts
from buffer.state import load_account, now_ms
from buffer.store import apply_batch

RATE_WINDOW_S = 5.0
APPLIED_RETENTION_MS = 120_000  # how long a flushed leg's id keeps late re-deliveries out of pending

# Fault injection for the crash tests: PAYENGINE_BUFFER_CRASH=after_commit makes the process SIGKILL
# itself right after a batch commits, before Redis hears of it (the worst moment to die).
CRASH_POINT = os.environ.get("PAYENGINE_BUFFER_CRASH", "")


@dataclass(slots=True)
class FlushStats:
    """Per-account figures a flusher keeps for status and metrics."""

    applied: collections.deque[tuple[float, int]] = field(default_factory=collections.deque)

    def rate(self, now: float, legs: int) -> float:
        self.applied.append((now, legs))
        while self.applied and now - self.applied[0][0] > RATE_WINDOW_S:
            self.applied.popleft()
        span = max(now - self.applied[0][0], 1.0) if self.applied else 1.0
        return sum(n for _, n in self.applied) / span


@dataclass(frozen=True, slots=True)
class FlushOutcome:
    taken: int  # legs read from the buffer
    applied: int  # legs that changed state in PostgreSQL (taken - applied were re-deliveries)
    balance: int | None
    loaded: bool  # False: the state was missing and has just been rebuilt instead of flushing


def _b2s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def flush_account(conn: Any, redis: aioredis.Redis, scripts: Scripts, account_id: str,
                        batch_size: int, stats: FlushStats) -> FlushOutcome:
    """Apply up to ``batch_size`` legs at the head of ``account_id``'s buffer (caller owns it)."""
    keys = list(account_keys(account_id).all())
    started = time.perf_counter()
    head = await scripts.take(keys=keys, args=[batch_size], client=redis)
    if not int(head[0]):
        await load_account(conn, redis, scripts, account_id)
        return FlushOutcome(0, 0, None, loaded=False)
    members = [_b2s(m) for m in head[1::2]]
    if not members:
        stats.rate(time.monotonic(), 0)
        metrics.DEPTH.labels(account_id).set(0)
        metrics.OLDEST_AGE.labels(account_id).set(0)
        return FlushOutcome(0, 0, None, loaded=True)
    result = await apply_batch(conn, account_id, [parse_leg_member(m) for m in members])
    if CRASH_POINT == "after_commit":
        os.kill(os.getpid(), signal.SIGKILL)
    elapsed_ms = int((time.perf_counter() - started) * 1000)
    rate = stats.rate(time.monotonic(), result.applied)
    _, depth, age_ms = await scripts.ack(keys=keys, args=[now_ms(), result.balance, APPLIED_RETENTION_MS, len(members),
                                                          elapsed_ms, f"{rate:.1f}", *members], client=redis)
    metrics.DEPTH.labels(account_id).set(int(depth))
    metrics.OLDEST_AGE.labels(account_id).set(int(age_ms) / 1000)
    metrics.BATCHES.labels(account_id).inc()
    metrics.LEGS_APPLIED.labels(account_id).inc(result.applied)
    metrics.BATCH_SIZE.observe(len(members))
    metrics.FLUSH_SECONDS.observe(time.perf_counter() - started)
    return FlushOutcome(len(members), result.applied, result.balance, loaded=True)
