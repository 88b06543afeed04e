"""Flush accounts: take the head of each buffer, apply them in one PostgreSQL transaction, then ack.

The caller must own the accounts (hold their advisory locks on ``conn``), so batches of one account
are applied one at a time, in buffer order. Every step can die without losing or doubling money:
- before the commit: nothing changed; the legs are still queued and are taken again;
- after the commit, before the ack: PostgreSQL has them applied, Redis still queues them; the next
  flush re-takes them and the ``status = 'buffered'`` guard makes that batch change nothing, then
  the ack drops them and refreshes the cached balance (applied + pending was right all along).
The crash tests die at that worst moment on purpose: they hand the flusher an ``after_commit`` hook
(called with the committed batches, before Redis hears of them) that SIGKILLs its own process.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from buffer import metrics
from buffer.keys import account_keys, parse_leg_member
from buffer.scripts import Scripts, run_scripts
from buffer.state import load_account, now_ms
from buffer.store import BatchResult, apply_batch, apply_batches

log = logging.getLogger(__name__)

# A connection in any of these states is done for; InternalClientError is how asyncpg reports a
# protocol left mid-operation by a killed backend.
PG_GONE = (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError, asyncpg.AdminShutdownError,
           asyncpg.InternalClientError)
RATE_WINDOW_S = 5.0
APPLIED_RETENTION_MS = 120_000  # how long a flushed leg's id keeps late re-deliveries out of pending

# Called with each account's committed batch after the PostgreSQL commit, before the Redis ack.
AfterCommit = Callable[[Mapping[str, BatchResult]], None]


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
    error: str | None = None  # the batch could not be applied (left queued; see flush_accounts)


def _b2s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def flush_account(conn: Any, redis: aioredis.Redis, scripts: Scripts, account_id: str,
                        batch_size: int, stats: FlushStats) -> FlushOutcome:
    """Apply up to ``batch_size`` legs at the head of ``account_id``'s buffer (caller owns it)."""
    return (await flush_accounts(conn, redis, scripts, [account_id], batch_size, {account_id: stats}))[account_id]


async def flush_accounts(conn: Any, redis: aioredis.Redis, scripts: Scripts, account_ids: Sequence[str],
                         batch_size: int, stats: dict[str, FlushStats],
                         after_commit: AfterCommit | None = None) -> dict[str, FlushOutcome]:
    """One flush round over several owned accounts in three round trips, however many accounts: take
    every head in one Redis pipeline, apply every batch in one PostgreSQL statement (one transaction),
    ack every batch in one pipeline. A split account's N sub-accounts so cost a flusher about what one
    account costs. If the combined statement fails for a reason other than a lost connection (say one
    account's overdraft CHECK), each batch is retried alone so one bad account does not stall the rest;
    its outcome carries the error and its legs stay queued. A single account's failure is raised.
    ``after_commit``, when given, is called once batches have committed and before they are acked."""
    started = time.perf_counter()
    keys = {a: list(account_keys(a).all()) for a in account_ids}
    heads = await run_scripts(redis, [(scripts.take, keys[a], [batch_size]) for a in account_ids])
    out: dict[str, FlushOutcome] = {}
    work: list[tuple[str, list[str]]] = []
    for account_id, head in zip(account_ids, heads, strict=True):
        if not int(head[0]):
            await load_account(conn, redis, scripts, account_id)
            out[account_id] = FlushOutcome(0, 0, None, loaded=False)
            continue
        members = [_b2s(m) for m in head[1::2]]
        if members:
            work.append((account_id, members))
            continue
        stats[account_id].rate(time.monotonic(), 0)
        metrics.DEPTH.labels(account_id).set(0)
        metrics.OLDEST_AGE.labels(account_id).set(0)
        out[account_id] = FlushOutcome(0, 0, None, loaded=True)
    if not work:
        return out
    results, errors = await _apply(conn, work)
    if after_commit is not None and results:
        after_commit(results)
    elapsed_ms = int((time.perf_counter() - started) * 1000)
    acks: list[tuple[str, list[str], BatchResult, float]] = []
    for account_id, members in work:
        if account_id in errors:
            out[account_id] = FlushOutcome(len(members), 0, None, loaded=True, error=errors[account_id])
        else:
            result = results[account_id]
            acks.append((account_id, members, result,
                         stats[account_id].rate(time.monotonic(), result.applied)))
    answers = await run_scripts(redis, [
        (scripts.ack, keys[a], [now_ms(), _acked_balance(r, len(m)), APPLIED_RETENTION_MS, len(m), elapsed_ms,
                                f"{rate:.1f}", *m])
        for a, m, r, rate in acks])
    seconds = time.perf_counter() - started
    applied_at = time.time()
    for (account_id, members, result, _), (_, depth, age_ms) in zip(acks, answers, strict=True):
        metrics.DEPTH.labels(account_id).set(int(depth))
        metrics.OLDEST_AGE.labels(account_id).set(int(age_ms) / 1000)
        metrics.LAST_APPLIED.labels(account_id).set(applied_at)
        metrics.BATCHES.labels(account_id).inc()
        metrics.LEGS_APPLIED.labels(account_id).inc(result.applied)
        metrics.BATCH_SIZE.observe(len(members))
        metrics.FLUSH_SECONDS.observe(seconds)
        out[account_id] = FlushOutcome(len(members), result.applied, result.balance, loaded=True)
        if log.isEnabledFor(logging.DEBUG):  # a line per batch only when asked: the counters above are the record
            log.debug("batch applied", extra={"account_id": account_id, "legs": len(members),
                                              "applied": result.applied, "depth": int(depth),
                                              "ms": round(seconds * 1000, 1)})
    return out


def _acked_balance(result: BatchResult, taken: int) -> int | str:
    """The applied balance the ack sets, or '' (move the batch's net from pending to applied) when the batch
    re-took legs PostgreSQL had applied already: a flusher died after its commit, and the rest of its batch
    may still be queued behind this one, held in PostgreSQL's balance and in Redis' pending at once."""
    return result.balance if result.applied == taken else ""


async def _apply(conn: Any, work: Sequence[tuple[str, list[str]]]) -> tuple[dict[str, BatchResult], dict[str, str]]:
    batches = [(a, [parse_leg_member(m) for m in members]) for a, members in work]
    try:
        return await apply_batches(conn, batches), {}
    except asyncpg.PostgresError as exc:
        if len(batches) == 1 or isinstance(exc, PG_GONE):
            raise
    results: dict[str, BatchResult] = {}
    errors: dict[str, str] = {}
    for account_id, legs in batches:
        try:
            results[account_id] = await apply_batch(conn, account_id, legs)
        except asyncpg.PostgresError as exc:
            if isinstance(exc, PG_GONE):
                raise
            errors[account_id] = f"{type(exc).__name__}: {exc}"
    return results, errors
