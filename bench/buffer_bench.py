"""make bench-buffer: one hot merchant paid by many customers, synchronous vs buffered vs distinct.

Modes (same PAY_WALLET workload through ``Booker``, same concurrency, fresh accounts per mode):
- sync: merchant pending, fee income and gateway transit are ordinary rows: every payment takes
  their row locks (the collapse buffering exists to remove);
- buffered: those three accounts are hot: their legs go through the Redis buffer, flushed in batches
  by in-process flushers running during the load;
- distinct: every payer has its own merchant, fee and transit accounts (no hot row at all): the
  ceiling the buffered mode is compared with.
Afterwards the buffers drain and the money is checked (every leg applied, balances = Σ legs = what
the payers were told, entries balanced). The last stdout line is one JSON object.

``run_hot_merchant`` is reusable (the netem/1 ms variant calls it on its own servers).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import statistics
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
import redis.asyncio as aioredis

from accounts.model import AccountId, AccountKind, AccountSpec
from accounts.rules import build_entry
from accounts.store import open_account, post_entry
from accounts.subjects import ROLE_SUBJECTS
from bench.servers import fresh_servers
from buffer.runner import FlushRunner
from buffer.scripts import Scripts
from buffer.sink import RedisHotLegSink
from buffer.state import read_status
from buffer.tuning import BufferTuning, LiveTuning
from engine.booking import Booker
from engine.txn_no import TxnNoGenerator

MODES = ("sync", "buffered", "distinct")
AMOUNT, FEE = 1_000, 6
FUNDS = 10**10
WALLETS_PER_PAYER = 4
_txn = TxnNoGenerator(system=98, environment=9, shard=0, node=9_001)


def _txn_no() -> str:
    return _txn.next(datetime.now(UTC))


@dataclass
class Accounts:
    merchant: list[str]  # per payer (one shared id in sync/buffered)
    fee: list[str]
    transit: list[str]
    wallets: list[list[str]]
    source: str
    paid: list[int] = field(default_factory=list)

    @property
    def merchant_side(self) -> list[str]:
        return sorted(set(self.merchant) | set(self.fee) | set(self.transit))


async def _open(conn: Any, role: str, kind: AccountKind, hot: bool = False) -> str:
    spec = AccountSpec(id=AccountId(f"bb_{role}_{uuid.uuid4().hex[:12]}"), kind=kind,
                       owner_id=f"bb_{uuid.uuid4().hex[:12]}", role=role, subject_code=ROLE_SUBJECTS[role],
                       currency="CNY", hot=hot)
    return (await open_account(conn, spec)).id


async def open_accounts(pool: asyncpg.Pool, mode: str, payers: int) -> Accounts:
    hot = mode == "buffered"
    async with pool.acquire() as conn:
        source = await _open(conn, "channel_receivable", AccountKind.INTERNAL)
        n = payers if mode == "distinct" else 1
        merchant = [await _open(conn, "merchant_pending", AccountKind.MERCHANT, hot) for _ in range(n)]
        fee = [await _open(conn, "fee_income", AccountKind.INTERNAL, hot) for _ in range(n)]
        transit = [await _open(conn, "gateway_transit", AccountKind.INTERNAL, hot) for _ in range(n)]
        wallets: list[list[str]] = []
        for _ in range(payers):
            mine = [await _open(conn, "customer_wallet", AccountKind.CUSTOMER) for _ in range(WALLETS_PER_PAYER)]
            for wallet in mine:
                roles = {"channel_receivable": AccountId(source), "customer_wallet": AccountId(wallet)}
                await post_entry(conn, build_entry("TOPUP", _txn_no(), datetime.now(UTC).date(), "CNY", roles,
                                                   {"amount": FUNDS}))
            wallets.append(mine)
    if n == 1:
        merchant, fee, transit = merchant * payers, fee * payers, transit * payers
    return Accounts(merchant, fee, transit, wallets, source, [0] * payers)


async def check_money(pool: asyncpg.Pool, acc: Accounts) -> None:
    """Every leg applied, each balance = Σ its legs = what the payers were told, entries balanced."""
    expected: dict[str, int] = {}
    for i, count in enumerate(acc.paid):
        for ids, per in ((acc.merchant, AMOUNT - FEE), (acc.fee, FEE), (acc.transit, 0)):
            expected[ids[i]] = expected.get(ids[i], 0) + count * per
    ids = [*acc.merchant_side, acc.source, *(w for ws in acc.wallets for w in ws)]
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT a.id, a.balance, coalesce(sum(l.delta) FILTER (WHERE l.status = 'applied'), 0) AS applied,"
            " count(*) FILTER (WHERE l.status = 'buffered') AS buffered"
            " FROM accounts a LEFT JOIN journal_legs l ON l.account_id = a.id"
            " WHERE a.id = ANY($1::text[]) GROUP BY a.id, a.balance", ids)
        problems = [f"{r['id']}: balance {r['balance']} applied {r['applied']} buffered {r['buffered']}"
                    for r in rows if r["balance"] != r["applied"] or r["buffered"]]
        problems += [f"{r['id']}: balance {r['balance']} != expected {expected[r['id']]}"
                     for r in rows if r["id"] in expected and r["balance"] != expected[r["id"]]]
        wallets_spent = sum(FUNDS * WALLETS_PER_PAYER - sum(r["balance"] for r in rows if r["id"] in ws)
                            for ws in map(set, acc.wallets))
        if wallets_spent != sum(acc.paid) * AMOUNT:
            problems.append(f"wallets paid {wallets_spent}, payers saw {sum(acc.paid) * AMOUNT}")
        unbalanced = await conn.fetchval(
            "SELECT count(*) FROM (SELECT txn_no FROM journal_legs WHERE account_id = ANY($1::text[])"
            " GROUP BY txn_no) t WHERE (SELECT sum(CASE side WHEN 'D' THEN amount ELSE -amount END)"
            " FROM journal_legs l WHERE l.txn_no = t.txn_no) <> 0", acc.merchant_side)
        if unbalanced:
            problems.append(f"{unbalanced} entries do not balance")
    if problems:
        raise AssertionError("money check failed:\n  " + "\n  ".join(problems[:20]))


async def _wait_drained(pool: asyncpg.Pool, ids: list[str], timeout_s: float = 120) -> float:
    started = time.monotonic()
    while await pool.fetchval("SELECT count(*) FROM journal_legs WHERE account_id = ANY($1::text[])"
                              " AND status = 'buffered'", ids):
        if time.monotonic() - started > timeout_s:
            raise AssertionError(f"buffers not drained in {timeout_s}s")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def _spawn_flusher(database_url: str, redis_url: str, accounts: list[str],
                         pool: asyncpg.Pool) -> asyncio.subprocess.Process:
    """A ``python -m buffer.flush_main`` process for these accounts, returned once it owns them all."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "buffer.flush_main", "--database-url", database_url, "--redis-url", redis_url,
        "--accounts", ",".join(accounts), stdout=asyncio.subprocess.DEVNULL)
    for _ in range(1000):  # up to 20 s
        held = await pool.fetchval(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = $1",
            f"payengine-flusher:{proc.pid}")
        if held >= len(accounts):
            return proc
        await asyncio.sleep(0.02)
    raise RuntimeError("flusher process did not take its accounts")


async def run_hot_merchant(mode: str, pool: asyncpg.Pool, redis: aioredis.Redis, concurrency: int,
                           duration_s: float, database_url: str = "", redis_url: str = "",
                           flushers: str = "process") -> dict[str, Any]:
    """Run one mode for ``duration_s`` with ``concurrency`` payers; drain, check the money, return figures.

    Buffered mode needs ``database_url`` (and ``redis_url`` for ``flushers="process"``: a separate
    flusher process, as deployed with ``payengine flush``; "inprocess" runs them in this event loop, as
    ``payengine serve`` does by default). ``pool`` should hold at least ``concurrency`` connections.
    """
    acc = await open_accounts(pool, mode, concurrency)
    stop_flush = asyncio.Event()
    flushing: asyncio.Task[None] | None = None
    side: asyncpg.Pool | None = None
    booker = Booker(pool)
    flusher: asyncio.subprocess.Process | None = None
    if mode == "buffered":
        side = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
        assert side is not None
        tuning = LiveTuning(side, BufferTuning())
        sink = RedisHotLegSink(side, redis, tuning)
        await sink.start()
        booker = Booker(pool, sink)
        if flushers == "process":
            flusher = await _spawn_flusher(database_url, redis_url, acc.merchant_side, pool)
        else:
            runner = FlushRunner(database_url, redis, tuning, only_accounts=acc.merchant_side)
            flushing = asyncio.create_task(runner.run(stop_flush))
            for _ in range(500):  # up to 10 s: the window measures flushing, not flusher start-up
                if set(acc.merchant_side) <= runner.owned:
                    break
                await asyncio.sleep(0.02)
    latencies: list[float] = []
    lags: list[int] = []
    stop = asyncio.Event()
    today = datetime.now(UTC).date()

    async def payer(i: int) -> None:
        roles = {"gateway_transit": AccountId(acc.transit[i]), "merchant_pending": AccountId(acc.merchant[i]),
                 "fee_income": AccountId(acc.fee[i])}
        n = 0
        while not stop.is_set():
            wallet = acc.wallets[i][n % WALLETS_PER_PAYER]
            entry = build_entry("PAY_WALLET", _txn_no(), today, "CNY", {**roles, "customer_wallet": AccountId(wallet)},
                                {"amount": AMOUNT, "fee": FEE})
            t0 = time.perf_counter()
            await booker.book(entry)
            latencies.append(time.perf_counter() - t0)
            acc.paid[i] += 1
            n += 1

    async def sample_lag() -> None:
        scripts = Scripts(redis)
        while not stop.is_set():
            await asyncio.sleep(0.1)
            lags.extend(s.oldest_age_ms for s in await read_status(redis, scripts, acc.merchant_side[:3]))

    started = time.perf_counter()
    tasks = [asyncio.create_task(payer(i)) for i in range(concurrency)]
    sampler = asyncio.create_task(sample_lag()) if mode == "buffered" else None
    await asyncio.sleep(duration_s)
    stop.set()
    await asyncio.gather(*tasks, *([sampler] if sampler else []))
    elapsed = time.perf_counter() - started
    drain_s = await _wait_drained(pool, acc.merchant_side)
    if flushing is not None:
        stop_flush.set()
        await flushing
    if flusher is not None:
        flusher.send_signal(signal.SIGTERM)
        await flusher.wait()
    if side is not None:
        await side.close()
    await check_money(pool, acc)
    latencies.sort()
    payments = sum(acc.paid)
    return {
        "mode": mode, "payments": payments, "payments_per_s": round(payments / elapsed, 1),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 2) if latencies else None,
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 2) if latencies else None,
        "flush_lag_p50_ms": statistics.median(lags) if lags else None,
        "flush_lag_max_ms": max(lags) if lags else None,
        "drain_s": round(drain_s, 2), "money_checks": "ok",
    }


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 2) if b else None


async def main_async(concurrency: int, duration_s: float, database_url: str, redis_url: str,
                     flushers: str) -> dict[str, Any]:
    async with fresh_servers(database_url, redis_url) as servers:
        pool = await asyncpg.create_pool(servers.database_url, min_size=concurrency, max_size=concurrency + 8,
                                         statement_cache_size=256)
        assert pool is not None
        redis = aioredis.Redis.from_url(servers.redis_url, decode_responses=False, max_connections=256)
        results: dict[str, dict[str, Any]] = {}
        try:
            for mode in MODES:
                print(f"{mode}: {concurrency} payers for {duration_s:.0f}s ...", file=sys.stderr, flush=True)
                results[mode] = await run_hot_merchant(mode, pool, redis, concurrency, duration_s,
                                                       servers.database_url, servers.redis_url, flushers)
        finally:
            await redis.aclose()
            await pool.close()
    print(f"{'mode':<10} {'payments/s':>11} {'p50 ms':>8} {'p99 ms':>8} {'lag p50':>8} {'lag max':>8} {'drain s':>8}")
    for r in results.values():
        print(f"{r['mode']:<10} {r['payments_per_s']:>11} {r['p50_ms']:>8} {r['p99_ms']:>8} "
              f"{r['flush_lag_p50_ms'] or '-':>8} {r['flush_lag_max_ms'] or '-':>8} {r['drain_s']:>8}")
    sync, buffered, distinct = (results[m]["payments_per_s"] for m in MODES)
    return {
        "scenario": "buffer", "concurrency": concurrency, "duration_s": duration_s, "flushers": flushers,
        "sync_payments_per_s": sync, "buffered_payments_per_s": buffered, "distinct_payments_per_s": distinct,
        "buffered_over_sync": _ratio(buffered, sync), "buffered_over_distinct": _ratio(buffered, distinct),
        "buffered_p99_ms": results["buffered"]["p99_ms"], "sync_p99_ms": results["sync"]["p99_ms"],
        "buffered_flush_lag_max_ms": results["buffered"]["flush_lag_max_ms"], "money_checks": "ok",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.buffer_bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per mode")
    parser.add_argument("--database-url", default="")
    parser.add_argument("--redis-url", default="")
    parser.add_argument("--flushers", choices=["process", "inprocess"], default="process",
                        help="buffered mode: a flusher process (default) or flushers in the bench's event loop")
    args = parser.parse_args(argv)
    import uvloop

    summary = uvloop.run(main_async(args.concurrency, args.duration, args.database_url, args.redis_url,
                                    args.flushers))
    print(orjson.dumps(summary).decode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
