"""The bench harness against the real test servers: modes run and pass the money checks, a ledger
that disagrees with what the load generator saw fails them, and the delay proxy really delays."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis

from accounts.model import AccountId
from accounts.rules import build_entry
from accounts.store import post_entry
from bench.hot_merchant import run_hot_merchant_modes
from bench.load import percentile, run_load
from bench.modes import BenchContext, PostingMode, SyncMode, distinct_mode
from bench.modes_hot import batched_mode, buffered_mode
from bench.money import MoneyCheckFailed, check_money
from bench.netem import DelayedPostgres
from bench.workload import AMOUNT_MINOR, CURRENCY, FEE_MINOR, Payer, open_workload
from engine.booking import Booker
from engine.txn_no import TxnNoGenerator
from tests.conftest import Servers
from tests.databases import private_database

REPO = Path(__file__).resolve().parents[2]
# System code 98 is the bench's: its transaction numbers never collide with the tests' (99). One
# generator for the module, so two tests never restart the same node's counter.
TXN_NOS = TxnNoGenerator(98, 9, 0, 9997)


@pytest.fixture
async def ctx(servers: Servers, pool: asyncpg.Pool, redis_client: aioredis.Redis) -> AsyncIterator[BenchContext]:
    yield BenchContext(pool, redis_client, TXN_NOS, servers.database_url, servers.redis_url)


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([], 99) == 0.0


async def test_run_load_counts_successes_and_failures_by_type() -> None:
    calls = 0

    async def operation(worker: int) -> None:
        nonlocal calls
        calls += 1
        if calls % 4 == 0:
            raise ValueError("refused")
        await asyncio.sleep(0.001)

    result = await run_load("unit", operation, concurrency=4, duration_s=0.3, quiet=True)
    assert result.ok > 0 and result.errors["ValueError"] > 0
    assert result.ok + result.errors["ValueError"] == calls
    assert len(result.latencies_ms) == result.ok


async def test_modes_side_by_side_pass_the_money_checks(ctx: BenchContext) -> None:
    modes: list[PostingMode] = [SyncMode(), distinct_mode(), buffered_mode()]
    result = await run_hot_merchant_modes(ctx, modes, concurrency=4, duration_s=1.0, rounds=1, label="test")
    assert set(result["modes"]) == {"sync", "distinct", "buffered"}
    for mode in result["modes"].values():
        assert mode["ok"] > 0
        assert mode["money"]["money_checks"] == "ok"
        assert mode["money"]["entries"] == mode["ok"]
    assert "buffered_over_sync" in result["ratios"]


async def test_batched_mode_books_through_the_batcher_and_passes_the_money_checks(ctx: BenchContext) -> None:
    """bench-batch's batched mode on the test servers: the payments go through the in-process batcher (their
    entries carry their payment ids), flushers run, and the money checks count every one."""
    result = await run_hot_merchant_modes(ctx, [SyncMode(), batched_mode()], concurrency=8, duration_s=1.0,
                                          rounds=1, label="test")
    batched = result["modes"]["batched"]
    assert batched["ok"] > 0 and batched["money"]["money_checks"] == "ok"
    assert batched["money"]["entries"] == batched["ok"]
    assert "batched_over_sync" in result["ratios"]
    entries = await ctx.pool.fetchval("SELECT count(*) FROM payments WHERE id LIKE 'bench-%/%'")
    assert entries >= batched["ok"]  # booked by the batch statement, not by the serial Payer


async def test_money_check_fails_when_the_ledger_holds_an_unacknowledged_payment(ctx: BenchContext) -> None:
    accounts = await open_workload(ctx.pool, ctx.txn_nos, "sync", workers=2, shared=True)
    payer = Payer(accounts, Booker(ctx.pool), ctx.txn_nos)
    for worker in (0, 1, 0):
        await payer(worker)
    assert (await check_money(ctx.pool, accounts.money_scope()))["entries"] == 3
    # One more payment is booked that the load generator never saw succeed: a duplicate.
    now = datetime.now(UTC)
    entry = build_entry(
        "PAY_WALLET", ctx.txn_nos.next(now), now.date(), CURRENCY,
        {"customer_wallet": AccountId(accounts.customers[1][3]), "gateway_transit": AccountId(accounts.transit[0]),
         "merchant_pending": AccountId(accounts.merchant[0]), "fee_income": AccountId(accounts.fee[0])},
        {"amount": AMOUNT_MINOR, "fee": FEE_MINOR}, ref=accounts.ref)
    async with ctx.pool.acquire() as conn, conn.transaction():
        await post_entry(conn, entry)
    with pytest.raises(MoneyCheckFailed) as failed:
        await check_money(ctx.pool, accounts.money_scope(), drain_timeout_s=5)
    assert "journal entries 4 != payments acknowledged 3" in str(failed.value)
    assert "expected" in str(failed.value)  # the merchant's and fee income's totals are off too


@pytest.mark.parametrize("kind", ["c", "python"])
async def test_delay_proxy_adds_its_delay_to_every_round_trip(servers: Servers, kind: str,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    if kind == "python":
        monkeypatch.setenv("PAYENGINE_BENCH_DELAY_PROXY", "python")
    elif not (shutil.which("cc") or shutil.which("gcc")):
        pytest.skip("no C compiler: the bench uses the Python proxy here")
    delayed = DelayedPostgres(servers.database_url, delay_ms_each_way=2.0)
    try:
        delayed._start_proxy(2.0)
        assert delayed._proxy_kind.lower().startswith(kind)
        conns = [await asyncpg.connect(delayed.dsn) for _ in range(4)]
        try:
            assert await conns[0].fetchval("SELECT $1::int + 1", 41) == 42  # bytes pass through unchanged
            # Larger than one read in both directions, on several connections at once: every byte
            # arrives, in order, on its own connection.
            blobs = [bytes(range(256)) * 1200 + bytes([i]) for i in range(4)]
            echoed = await asyncio.gather(*(c.fetchval("SELECT $1::bytea", b)
                                            for c, b in zip(conns, blobs, strict=True)))
            assert echoed == blobs
            t0 = time.perf_counter()
            for _ in range(5):
                await conns[0].fetchval("SELECT 1")
            per_round_trip_ms = (time.perf_counter() - t0) * 1000 / 5
        finally:
            for conn in conns:
                await conn.close()
    finally:
        delayed.stop()
    assert per_round_trip_ms >= 4.0  # 2 ms each way at least; an upper bound would fail on a busy machine


def test_smoke_cli_lists_scenarios() -> None:
    done = subprocess.run([sys.executable, "-m", "bench", "--help"], cwd=REPO, capture_output=True, text=True,
                          check=True, timeout=60)
    for name in ("hot-merchant", "db-latency", "flush-sweep", "--smoke"):
        assert name in done.stdout


async def test_drain_times_one_flusher_over_a_backlog_and_restores_the_tuning(servers: Servers) -> None:
    from bench.drain import drain
    from bench.scenarios import Options

    # A database of its own: the stored tuning changes for the run, and no other app's flusher may take
    # the account before the timed one does.
    async with private_database(servers.database_url, "drain") as url:
        result = await drain(Options(url, servers.redis_url, extra={"drain_batches": [10, 100],
                                                                   "drain_payments": 60, "drain_timeout_s": 60}))
        conn = await asyncpg.connect(url)
        try:
            assert await conn.fetchval("SELECT count(*) FROM buffer_settings") == 0  # put back as it was
            assert await conn.fetchval("SELECT count(*) FROM journal_legs WHERE status = 'buffered'") == 0
        finally:
            await conn.close()
    assert [(p["batch_size"], p["legs"]) for p in result["points"]] == [(10, 60), (100, 60)]
    assert all(p["legs_per_s"] > 0 for p in result["points"])
    assert result["headline"]["money_checks"] == "ok" and set(result["headline"]) >= {"b10_legs_per_s",
                                                                                       "b100_legs_per_s"}
