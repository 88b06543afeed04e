"""drain: how many legs per second one flusher worker applies to one hot account.

The capacity figure an SRE sizes splitting from: one account can never be flushed faster than this (its
batches are applied one at a time, in order), so a merchant taking more payments per second than one
worker drains needs its account split. For each batch size: a fresh merchant whose pending-settlement
account alone is hot; ``--drain-payments`` wallet payments are booked through the Redis sink with no
flusher running (so the whole backlog waits in Redis and PostgreSQL, back-pressure lifted for the
phase), then one flusher worker (buffer.runner.FlushRunner, as ``payengine serve`` runs it) is started
on that account with the batch size stored as the live tuning, and timed from the moment it owns the
account until nothing is buffered (Redis take, PostgreSQL apply and ack included). Every point ends
with the money checks. The stored tuning is put back.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from bench.context import bench_context
from bench.modes import BenchContext
from bench.modes_hot import stored_tuning_put_back
from bench.money import buffered_legs, check_money, wait_drained
from bench.scenarios import Options
from bench.workload import Payer, WorkloadAccounts, open_workload
from engine.booking import Booker

BATCH_SIZES = (100, 1000, 5000)
PAYMENTS = 5000
QUEUE_CONCURRENCY = 64
DRAIN_TIMEOUT_S = 300.0
POLL_S = 0.005  # the drain is timed to within this


async def _queue(ctx: BenchContext, accounts: WorkloadAccounts, booker: Booker, payments: int, label: str,
                 shape: str) -> float:
    """Book ``payments`` payments with no flusher running; returns the seconds it took."""
    payer = Payer(accounts, booker, ctx.txn_nos, shape)
    left = payments
    started = time.monotonic()

    async def worker(index: int) -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await payer(index)

    async def progress() -> None:
        while True:
            await asyncio.sleep(1.0)
            print(f"  [{label}] queueing: {payments - max(left, 0)} of {payments} booked", file=sys.stderr, flush=True)

    reporter = asyncio.create_task(progress())
    try:
        await asyncio.gather(*(worker(i) for i in range(len(accounts.customers))))
    finally:
        reporter.cancel()
    return time.monotonic() - started


async def _drain_one(ctx: BenchContext, batch_size: int, payments: int, workload: str,
                     timeout_s: float) -> dict[str, Any]:
    from buffer.runner import FlushRunner
    from buffer.sink import RedisHotLegSink
    from buffer.tuning import BufferTuning, LiveTuning, save_tuning

    label = f"drain b{batch_size}"
    accounts = await open_workload(ctx.pool, ctx.txn_nos, f"drain-b{batch_size}", QUEUE_CONCURRENCY, shared=True)
    hot = accounts.merchant[0]
    async with ctx.pool.acquire() as conn:
        await conn.execute("UPDATE accounts SET hot = true WHERE id = $1", hot)
        # No flusher yet: the backlog must not be refused for its age or depth while it builds.
        await save_tuning(conn, BufferTuning(batch_size=batch_size, flush_interval_ms=5, max_lag_ms=3_600_000,
                                             max_depth=10_000_000, flusher_concurrency=1))
    tuning = LiveTuning(ctx.pool, BufferTuning())
    booker = Booker(ctx.pool, RedisHotLegSink(ctx.pool, ctx.redis, tuning))
    queue_s = await _queue(ctx, accounts, booker, payments, label, workload)
    backlog = await buffered_legs(ctx.pool, [hot])
    print(f"  [{label}] {backlog} legs queued on one account in {queue_s:.1f}s; starting one flusher worker",
          file=sys.stderr, flush=True)

    runner = FlushRunner(ctx.database_url, ctx.redis, tuning, only_accounts=[hot], grace_ms=60_000)
    runner.start(f"bench-{label}")
    try:
        deadline = time.monotonic() + timeout_s
        while hot not in runner.owned:  # timed from the moment the worker owns the account
            if time.monotonic() > deadline or runner.ended:
                raise RuntimeError(f"{label}: the flusher never took the account")
            await asyncio.sleep(POLL_S)
        seconds = await wait_drained(ctx.pool, [hot], timeout_s, poll_s=POLL_S)
    finally:
        await runner.stop()
    money = await check_money(ctx.pool, accounts.money_scope())
    print(f"[{label}] money checks ok ({money.get('entries', '?')} entries)", file=sys.stderr, flush=True)
    return {"batch_size": batch_size, "legs": backlog, "queue_s": round(queue_s, 2),
            "drain_s": round(seconds, 3), "legs_per_s": round(backlog / seconds, 1), "workload": workload}


async def drain(opts: Options) -> dict[str, Any]:
    batches = tuple(opts.extra.get("drain_batches") or BATCH_SIZES)
    payments = int(opts.extra.get("drain_payments") or PAYMENTS)
    timeout_s = float(opts.extra.get("drain_timeout_s") or DRAIN_TIMEOUT_S)
    async with bench_context(opts.database_url, opts.redis_url, QUEUE_CONCURRENCY + 16) as ctx, \
            stored_tuning_put_back(ctx.pool):
        points = [await _drain_one(ctx, b, payments, opts.workload, timeout_s) for b in batches]
    print("\ndrain: one flusher worker, one hot account, backlog booked first")
    print(f"{'batch size':>10} {'legs':>8} {'drain s':>8} {'legs/s':>9}")
    for p in points:
        print(f"{p['batch_size']:>10} {p['legs']:>8} {p['drain_s']:>8.2f} {p['legs_per_s']:>9.1f}")
    headline: dict[str, Any] = {"scenario": "drain", "payments": payments}
    for p in points:
        headline[f"b{p['batch_size']}_legs_per_s"] = p["legs_per_s"]
    headline["money_checks"] = "ok"  # check_money raised otherwise
    return {"scenario": "drain", "modes": {}, "points": points, "headline": headline}
