"""Fault tests with real processes: flushers SIGKILLed (after commit, at random points), Redis killed
and restarted empty, the flusher's PostgreSQL connection terminated, two flushers on one account set.

After each: every leg applied exactly once (seq 1..n, balance = Σ legs, running balance consistent),
entries balanced, the merchant's balance equal to what the clients were told was booked, never
below zero, and Redis' applied + pending equal to PostgreSQL's projected balance.
"""

from __future__ import annotations

import asyncio
import random
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis

from buffer.sink import RedisHotLegSink
from buffer.tuning import BufferTuning, LiveTuning
from engine import embedded
from engine.booking import Booker
from tests.buffer.procs import Tally, kill, mixed_load, reap, spawn_flusher, wait_for
from tests.buffer.world import World, check_ledger, open_world, redis_matches_pg, wait_drained
from tests.conftest import Servers
from tests.databases import private_database

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Db:
    url: str
    redis_url: str


@pytest.fixture(scope="module")
async def db(servers: Servers) -> AsyncIterator[Db]:
    """A database of this module's own on the session's server: the in-process flushers of other
    tests' apps (they flush every hot account of the shared database) cannot take these tests'
    accounts from the processes under test, since advisory locks are per database."""
    async with private_database(servers.database_url, "buffer_faults") as url:
        yield Db(url, servers.redis_url)


@pytest.fixture(scope="module")
async def pool(db: Db) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(db.url, min_size=2, max_size=40)
    assert p is not None
    yield p
    await p.close()


@pytest.fixture(scope="module")
async def side_pool(db: Db) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(db.url, min_size=1, max_size=4)
    assert p is not None
    yield p
    await p.close()


@pytest.fixture
async def owner(db: Db) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(db.url)
    yield conn
    await conn.close()


async def _settle(pool: asyncpg.Pool, redis: aioredis.Redis, world: World, tally: Tally) -> None:
    await wait_drained(pool, world.hot, timeout_s=30)
    async with pool.acquire() as conn:
        await check_ledger(conn, world.all, floors={world.merchant: 0})
        assert await conn.fetchval("SELECT balance FROM accounts WHERE id = $1", world.merchant) == tally.merchant_net
        assert await conn.fetchval("SELECT balance FROM accounts WHERE id = $1", world.fee) == tally.fee_total
        assert await conn.fetchval("SELECT balance FROM accounts WHERE id = $1", world.transit) == 0
        for account_id in world.hot:
            await redis_matches_pg(conn, redis, account_id)


async def test_flusher_sigkilled_after_commit_and_at_random_points(
        pool: asyncpg.Pool, redis_client: aioredis.Redis, db: Db, sink: RedisHotLegSink,
        booker: Booker, owner: asyncpg.Connection) -> None:
    world = await open_world(pool, customers=8, owner=owner)
    await sink.hot.refresh()
    stop, tally = asyncio.Event(), Tally()
    loading = asyncio.create_task(mixed_load(booker, world, stop, tally, seed=1))
    await asyncio.sleep(0.3)  # some backlog before any flusher runs
    urls = (db.url, db.redis_url)
    crasher = await spawn_flusher(*urls, world.hot, crash_after_commit=True)
    await wait_for(pool, crasher, waiting=True)
    successor = await spawn_flusher(*urls, world.hot)
    await wait_for(pool, successor, waiting=True)
    await owner.execute("SELECT pg_advisory_unlock_all()")
    assert await reap(crasher) == -signal.SIGKILL  # died between its PostgreSQL commit and the Redis ack
    current, rng = successor, random.Random(7)
    for _ in range(4):  # then SIGKILL at random moments, a standby taking over each time
        await asyncio.sleep(rng.uniform(0.05, 0.4))
        standby = await spawn_flusher(*urls, world.hot)
        await wait_for(pool, standby, waiting=True)
        kill(current)
        assert await reap(current) == -signal.SIGKILL
        current = standby
    stop.set()
    await loading
    try:
        await _settle(pool, redis_client, world, tally)
    finally:
        kill(current, signal.SIGTERM)
        await reap(current)
    assert tally.payments > 50


@pytest.fixture
async def own_redis(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Path]:
    """A Redis of this test's own (no persistence), so killing it disturbs no other test."""
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="pe-bufr-", dir="/tmp"))  # short: unix socket paths are limited
    embedded.start_redis(root, appendonly=False)
    try:
        yield root
    finally:
        embedded.stop_redis(root, kill=True)
        import shutil

        shutil.rmtree(root, ignore_errors=True)


async def test_redis_killed_and_restarted_empty_mid_load(
        pool: asyncpg.Pool, side_pool: asyncpg.Pool, db: Db, owner: asyncpg.Connection,
        own_redis: Path) -> None:
    redis_url = f"unix://{embedded.redis_socket(own_redis)}"
    redis = aioredis.Redis.from_url(redis_url, decode_responses=False, socket_timeout=2, socket_connect_timeout=1)
    sink = RedisHotLegSink(side_pool, redis, LiveTuning(side_pool, BufferTuning()))
    booker = Booker(pool, sink)
    world = await open_world(pool, customers=8, owner=owner)
    await sink.start()
    flusher = await spawn_flusher(db.url, redis_url, world.hot)
    await wait_for(pool, flusher, waiting=True)
    await owner.execute("SELECT pg_advisory_unlock_all()")
    await wait_for(pool, flusher, holding=3)
    stop, tally = asyncio.Event(), Tally()
    loading = asyncio.create_task(mixed_load(booker, world, stop, tally, seed=2))
    try:
        await asyncio.sleep(0.5)
        embedded.stop_redis(own_redis, kill=True)  # SIGKILL: no shutdown save (and none configured)
        embedded.wipe_redis_data(own_redis)
        booked_before_outage = tally.payments
        await asyncio.sleep(0.5)  # payments keep committing while Redis is gone
        assert tally.payments > booked_before_outage
        embedded.start_redis(own_redis, appendonly=False)
        await asyncio.sleep(1.0)
        stop.set()
        await loading
        await _settle(pool, redis, world, tally)
        assert tally.refused.get("BufferUnavailable", 0) > 0  # hot debits refused while it was down
    finally:
        stop.set()
        await loading
        kill(flusher, signal.SIGTERM)
        await reap(flusher)
        await redis.aclose()


async def test_flusher_postgres_connection_terminated_during_flushes(
        pool: asyncpg.Pool, redis_client: aioredis.Redis, db: Db, sink: RedisHotLegSink,
        booker: Booker, owner: asyncpg.Connection) -> None:
    world = await open_world(pool, customers=8, owner=owner)
    await sink.hot.refresh()
    flusher = await spawn_flusher(db.url, db.redis_url, world.hot, batch_size=8)
    await wait_for(pool, flusher, waiting=True)
    await owner.execute("SELECT pg_advisory_unlock_all()")
    stop, tally = asyncio.Event(), Tally()
    loading = asyncio.create_task(mixed_load(booker, world, stop, tally, seed=3))
    terminated = 0
    try:
        rng = random.Random(3)
        for _ in range(8):
            await wait_for(pool, flusher, holding=1)  # reconnected and owning again: hit it mid-flush
            await asyncio.sleep(rng.uniform(0.05, 0.25))
            terminated += await pool.fetchval(
                "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = $1) t", f"payengine-flusher:{flusher.pid}")
        stop.set()
        await loading
        await _settle(pool, redis_client, world, tally)
        assert terminated >= 8 and flusher.returncode is None  # it reconnected every time
    finally:
        stop.set()
        await loading
        kill(flusher, signal.SIGTERM)
        await reap(flusher)


async def test_two_flusher_processes_on_the_same_accounts(
        pool: asyncpg.Pool, redis_client: aioredis.Redis, db: Db, sink: RedisHotLegSink,
        booker: Booker, owner: asyncpg.Connection) -> None:
    world = await open_world(pool, customers=8, owner=owner)
    await sink.hot.refresh()
    first = await spawn_flusher(db.url, db.redis_url, world.hot)
    second = await spawn_flusher(db.url, db.redis_url, world.hot)
    await wait_for(pool, first, waiting=True)
    await wait_for(pool, second, waiting=True)
    await owner.execute("SELECT pg_advisory_unlock_all()")
    stop, tally = asyncio.Event(), Tally()
    loading = asyncio.create_task(mixed_load(booker, world, stop, tally, seed=4))
    try:
        await asyncio.sleep(0.8)
        kill(first, signal.SIGTERM)  # a clean stop hands its accounts to the other mid-load
        await reap(first)
        await asyncio.sleep(0.5)
        stop.set()
        await loading
        await _settle(pool, redis_client, world, tally)
    finally:
        stop.set()
        await loading
        for proc in (first, second):
            kill(proc, signal.SIGTERM)
            await reap(proc)
