"""The buffer on a real 3-master Redis Cluster: ordered apply under load with the FlushRunner, a master
restarted empty between and during loads, a flusher process SIGKILLed between its commit and its ack,
and two flusher processes handing accounts over mid-load.

Checks (tests/buffer/world.py): every leg applied exactly once, per-account seq 1..n with a running
balance consistent line by line, balance = Σ applied legs, entries balanced, Redis = PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import asyncpg

from accounts.errors import InsufficientFunds
from accounts.rules import build_entry
from buffer.flusher import FlushStats, flush_account
from buffer.keys import account_keys
from buffer.runner import FlushRunner
from buffer.scripts import Scripts
from buffer.sink import RedisHotLegSink
from buffer.store import flush_lock_key
from buffer.tuning import BufferTuning, LiveTuning
from engine.booking import Booker
from tests.buffer.world import World, check_ledger, open_world, pay, redis_matches_pg, refund, wait_drained
from tests.cluster.local_cluster import LocalCluster
from tests.cluster.locks import Backstop, hand_over, holder_app, waiters
from tests.conftest import Servers
from tests.factories import new_txn_no, today

REPO = Path(__file__).resolve().parents[2]


async def spread_world(pool: asyncpg.Pool, cluster: LocalCluster, customers: int, owner: asyncpg.Connection) -> World:
    """A world whose three hot accounts live on at least two different masters; ``owner`` holds their
    flush locks until the test hands them to its own flushers (locks.py), so no flusher of another
    test's app (on the standalone Redis) can claim them."""
    for _ in range(20):
        world = await open_world(pool, customers=customers, owner=owner)
        if len({cluster.node_of(account_keys(a).state) for a in world.hot}) >= 2:
            return world
    raise AssertionError("could not spread hot accounts over two masters")


@contextlib.asynccontextmanager
async def flushing(servers: Servers, redis: Any, pool: asyncpg.Pool, accounts: Sequence[str],
                   owner: asyncpg.Connection | None = None) -> AsyncIterator[None]:
    """The buffer's FlushRunner on ``accounts``, standing by for their locks; ``owner`` (if given)
    hands each lock over as soon as one of its workers queues for it."""
    tuning = LiveTuning(pool, BufferTuning(batch_size=13, flush_interval_ms=2, flusher_concurrency=3))
    runner = FlushRunner(servers.database_url, redis, tuning, accounts, grace_ms=0, standby_wait_ms=60_000)
    runner.start()
    try:
        if owner is not None:
            await hand_over(pool, owner, accounts)
        yield
    finally:
        await runner.stop()


async def stale_caches(pool: asyncpg.Pool, redis: Any, accounts: Sequence[str]) -> dict[str, tuple[int, int]]:
    """Accounts whose cached Redis applied + pending differs from PostgreSQL's balance + buffered net."""
    out: dict[str, tuple[int, int]] = {}
    for account_id in accounts:
        st = await redis.hgetall(account_keys(account_id).state)
        if b"loaded" not in st:
            continue
        pg = await pool.fetchval("SELECT balance + (SELECT coalesce(sum(delta), 0) FROM journal_legs"
                                 " WHERE account_id = $1 AND status = 'buffered') FROM accounts WHERE id = $1",
                                 account_id)
        cached = int(st[b"applied"]) + int(st.get(b"pending", b"0"))
        if cached != pg:
            out[account_id] = (cached, int(pg))
    return out


async def merchant_balance(pool: asyncpg.Pool, world: World) -> int:
    return int(await pool.fetchval("SELECT balance FROM accounts WHERE id = $1", world.merchant))


async def wait_queues_empty(redis: Any, accounts: Sequence[str], timeout_s: float = 30.0) -> dict[str, int]:
    """Wait (bounded) until the accounts' Redis queues are empty; returns the depths left (empty dict = ok)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        depths = {a: int(await redis.zcard(account_keys(a).queue)) for a in accounts}
        if not any(depths.values()):
            return {}
        if asyncio.get_running_loop().time() >= deadline:
            return {a: d for a, d in depths.items() if d}
        await asyncio.sleep(0.1)


async def verify(pool: asyncpg.Pool, redis: Any, world: World, expected_merchant: int, merchant_legs: int,
                 redis_cache: bool = True, queue_empty: bool = True) -> None:
    async with pool.acquire() as conn:
        await check_ledger(conn, world.all, floors={world.merchant: 0})
        for account_id in world.hot if redis_cache else []:
            await redis_matches_pg(conn, redis, account_id)
        assert await conn.fetchval("SELECT count(*) FROM journal_legs WHERE account_id = $1",
                                   world.merchant) == merchant_legs
    assert await merchant_balance(pool, world) == expected_merchant
    if queue_empty:
        assert await redis.zcard(account_keys(world.merchant).queue) == 0


async def test_ordered_apply_under_load_across_masters(pool: asyncpg.Pool, redis_client: Any, servers: Servers,
                                                       redis_cluster: LocalCluster, booker: Booker,
                                                       sink: Any, owner: asyncpg.Connection) -> None:
    world = await spread_world(pool, redis_cluster, customers=6, owner=owner)
    await sink.hot.refresh()
    rng = random.Random(7)
    expected, legs = 0, 0

    async def customer(c: str) -> None:
        nonlocal expected, legs
        for i in range(20):
            if i % 5 == 4:
                amount = rng.randint(100, 3000)
                try:
                    await refund(booker, world, c, amount)
                except InsufficientFunds:
                    continue
                expected -= amount
            else:
                amount = rng.randint(500, 5000)
                await pay(booker, world, c, amount, amount // 50)
                expected += amount - amount // 50
            legs += 1

    async with flushing(servers, redis_client, pool, world.hot, owner):
        await asyncio.gather(*(customer(c) for c in world.customers))
        await wait_drained(pool, world.hot)
    await verify(pool, redis_client, world, expected, legs)


async def test_master_restarted_empty_loses_nothing(pool: asyncpg.Pool, redis_client: Any, servers: Servers,
                                                    redis_cluster: LocalCluster, side_pool: asyncpg.Pool,
                                                    owner: asyncpg.Connection) -> None:
    # No flusher runs until the end, so legs age: a lag bound far above this test's length keeps
    # back-pressure (tested in tests/buffer/test_backpressure.py) out of it on a slow machine.
    sink = RedisHotLegSink(side_pool, redis_client, LiveTuning(side_pool, BufferTuning(max_lag_ms=600_000)))
    booker = Booker(pool, sink)
    world = await spread_world(pool, redis_cluster, customers=4, owner=owner)
    await sink.hot.refresh()
    for i in range(50):
        await pay(booker, world, world.customers[i % 4], 1_000 + i, 10)
    scripts = Scripts(redis_client)
    applied = 0  # some applied, the rest queued; the first call may only load the state
    while applied < 20:
        applied += (await flush_account(owner, redis_client, scripts, world.merchant, 10, FlushStats())).applied
    assert await merchant_balance(pool, world) == sum(1_000 + i - 10 for i in range(20))

    redis_cluster.restart_empty(redis_cluster.node_of(account_keys(world.merchant).state))
    assert await redis_client.exists(account_keys(world.merchant).queue) == 0  # 30 queued legs gone

    for i in range(30):  # bookings go on: the merchant's state reloads from PostgreSQL on first use
        await pay(booker, world, world.customers[i % 4], 2_000, 20)
    for i in range(5):  # hot debits are checked against the reloaded projected balance
        await refund(booker, world, world.customers[i % 4], 3_000)
    async with flushing(servers, redis_client, pool, world.hot, owner):
        await wait_drained(pool, world.hot)
    expected = sum(1_000 + i - 10 for i in range(50)) + 30 * 1_980 - 5 * 3_000
    await verify(pool, redis_client, world, expected, 85)


async def test_flusher_process_killed_between_commit_and_ack(pool: asyncpg.Pool, redis_client: Any,
                                                             servers: Servers, redis_cluster: LocalCluster,
                                                             booker: Booker, sink: Any,
                                                             owner: asyncpg.Connection) -> None:
    world = await spread_world(pool, redis_cluster, customers=3, owner=owner)
    await sink.hot.refresh()
    for i in range(60):
        await pay(booker, world, world.customers[i % 3], 500 + i, 5)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.cluster.flusher_proc", servers.database_url, redis_cluster.seed_url,
        ",".join(world.hot), "--crash-after-commit", env=env, cwd=REPO)
    backstop, kept = Backstop(), list(world.hot)
    try:
        for account_id in world.hot:  # each lock: the flusher first in line, then our backstop
            while True:  # polling pg_locks: there is no event to wait on
                if proc.returncode is not None or await waiters(pool, account_id):
                    break
                await asyncio.sleep(0.01)
            if proc.returncode is not None:
                break
            await backstop.queue(servers.database_url, pool, [account_id])
            await owner.execute("SELECT pg_advisory_unlock($1)", flush_lock_key(account_id))
            kept.remove(account_id)
        code = await asyncio.wait_for(proc.wait(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert code == -9  # it died right after committing a batch
    queued = {a: int(await redis_client.zcard(account_keys(a).queue)) for a in world.hot}
    buffered = {r["account_id"]: r["n"] for r in await pool.fetch(
        "SELECT account_id, count(*) FILTER (WHERE status = 'buffered') AS n FROM journal_legs"
        " WHERE account_id = ANY($1::text[]) GROUP BY account_id", world.hot)}
    # committed in PostgreSQL, never acked: Redis still queues legs that are already applied
    assert any(queued[a] > buffered[a] for a in world.hot), (queued, buffered)

    async with flushing(servers, redis_client, pool, world.hot):  # another flusher takes over
        await backstop.settle(pool)
        await hand_over(pool, owner, kept)
        await wait_drained(pool, world.hot)
        await asyncio.sleep(0.1)  # let the re-taken batch be acked
    await backstop.close()
    await verify(pool, redis_client, world, sum(500 + i - 5 for i in range(60)), 60)


class Load:
    """Pays and refunds booked until ``stop``; remembers which txn_nos the caller saw succeed or fail."""

    def __init__(self, booker: Booker, world: World, seed: int) -> None:
        self.booker, self.world, self.rng = booker, world, random.Random(seed)
        self.ok: dict[str, int] = {}  # txn_no -> merchant delta
        self.failed: dict[str, str] = {}  # txn_no -> exception type
        self.deltas: dict[str, int] = {}  # txn_no -> merchant delta, for every attempt

    async def run(self, stop: asyncio.Event, customer: str) -> None:
        while not stop.is_set():
            refund_now = self.rng.random() < 0.25
            amount = self.rng.randint(100, 2_000)
            entry = build_entry(
                "REFUND_WALLET" if refund_now else "PAY_WALLET", new_txn_no(), today(), "CNY",
                {"merchant_pending": self.world.merchant, "fee_income": self.world.fee, "customer_wallet": customer}
                if refund_now else {"customer_wallet": customer, "gateway_transit": self.world.transit,
                                    "merchant_pending": self.world.merchant, "fee_income": self.world.fee},
                {"amount": amount, "fee": 0 if refund_now else amount // 100})
            self.deltas[entry.txn_no] = -amount if refund_now else amount - amount // 100
            try:
                await self.booker.book(entry)
            except Exception as exc:  # refusals are fine; what matters is whether they committed
                self.failed[entry.txn_no] = type(exc).__name__
                await asyncio.sleep(0.02)
                continue
            self.ok[entry.txn_no] = self.deltas[entry.txn_no]

    async def check(self, pool: asyncpg.Pool) -> tuple[int, dict[str, str]]:
        """Every success committed. Returns the merchant's expected balance and the bookings that
        committed although the caller saw an error (the sink's enqueue raised after the commit)."""
        committed = {r["txn_no"] for r in await pool.fetch(
            "SELECT txn_no FROM journal_entries WHERE txn_no = ANY($1::text[])", [*self.ok, *self.failed])}
        assert set(self.ok) <= committed, "a booking the caller saw succeed is missing"
        wrong = {t: e for t, e in self.failed.items() if t in committed}
        return sum(self.ok.values()) + sum(self.deltas[t] for t in wrong), wrong


async def test_master_restarted_empty_mid_load(pool: asyncpg.Pool, redis_client: Any, servers: Servers,
                                               redis_cluster: LocalCluster, booker: Booker, sink: Any,
                                               owner: asyncpg.Connection) -> None:
    world = await spread_world(pool, redis_cluster, customers=4, owner=owner)
    await sink.hot.refresh()
    for i in range(20):  # funds on the merchant so refunds can pass
        await pay(booker, world, world.customers[i % 4], 5_000, 50)
    load, stop = Load(booker, world, seed=11), asyncio.Event()
    async with flushing(servers, redis_client, pool, world.hot, owner):
        tasks = [asyncio.create_task(load.run(stop, c)) for c in world.customers]
        await asyncio.sleep(0.5)
        # down long enough (3 s > node timeout 2 s) for cluster_state:fail: every node refuses meanwhile
        await asyncio.to_thread(redis_cluster.restart_empty, redis_cluster.node_of(account_keys(world.merchant).state),
                                3.0)
        await asyncio.sleep(1.0)
        stop.set()
        await asyncio.gather(*tasks)
        await wait_drained(pool, world.hot)
        # A batch applied while the master was down may still sit in its queue (its ack failed): the
        # flusher re-takes it, PostgreSQL changes nothing, and that ack empties the queue.
        leftover = await wait_queues_empty(redis_client, world.hot)
    net, wrong = await load.check(pool)
    assert len(load.ok) > 20
    # The money, strictly: every leg applied once, in order, balances = Σ legs = what callers were told.
    await verify(pool, redis_client, world, 20 * 4_950 + net, 20 + len(load.ok) + len(wrong), redis_cache=False,
                 queue_empty=False)
    # Redis agrees with PostgreSQL again, and the queues emptied: a batch whose ack failed during the
    # outage was re-taken and acked (it used to be flushed through another app's Redis instead: the
    # cluster tests now have a database of their own, see conftest.py).
    assert not wrong, f"caller saw an error for committed bookings: {wrong}"
    assert not leftover, f"queues still holding applied legs after 30 s: {leftover}"
    assert not await stale_caches(pool, redis_client, world.hot)


async def test_two_flusher_processes_hand_over_on_the_cluster(pool: asyncpg.Pool, redis_client: Any,
                                                              servers: Servers, redis_cluster: LocalCluster,
                                                              booker: Booker, sink: Any,
                                                              owner: asyncpg.Connection) -> None:
    world = await spread_world(pool, redis_cluster, customers=4, owner=owner)
    await sink.hot.refresh()
    for i in range(20):
        await pay(booker, world, world.customers[i % 4], 5_000, 50)
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    async def spawn() -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.cluster.flusher_proc", servers.database_url, redis_cluster.seed_url,
            ",".join(world.hot), env=env, cwd=REPO)

    procs = [await spawn()]
    backstop = Backstop()
    load, stop = Load(booker, world, seed=12), asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    try:
        await hand_over(pool, owner, world.hot)  # all to the first process
        procs.append(await spawn())  # the second stands by
        tasks = [asyncio.create_task(load.run(stop, c)) for c in world.customers]
        await asyncio.sleep(1.0)
        await backstop.queue(servers.database_url, pool, world.hot)
        procs[0].terminate()  # a clean stop mid-load: its accounts go to the other process
        await asyncio.wait_for(procs[0].wait(), 20)
        await backstop.settle(pool)
        await asyncio.sleep(1.0)
        stop.set()
        await asyncio.gather(*tasks)
        await wait_drained(pool, world.hot)
        await asyncio.sleep(0.1)
        owners = {await holder_app(pool, a) for a in world.hot}
        assert owners == {f"payengine-flusher:{procs[1].pid}"}, owners
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        await backstop.close()
        for proc in procs:
            if proc.returncode is None:
                proc.terminate()
                await asyncio.wait_for(proc.wait(), 20)
    net, wrong = await load.check(pool)
    assert not wrong, f"committed, yet the caller saw an error: {wrong}"
    await verify(pool, redis_client, world, 20 * 4_950 + net, 20 + len(load.ok))
