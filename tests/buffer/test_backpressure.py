"""Back-pressure (refuse at once, retryable) and Redis unreachable (credits commit, hot debits refused)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY

from buffer.errors import BufferBackpressure, BufferUnavailable
from buffer.recovery import recover_account
from buffer.scripts import Scripts
from buffer.sink import RedisHotLegSink
from buffer.state import read_status
from buffer.tuning import BufferTuning, LiveTuning
from engine.booking import Booker
from tests.buffer.world import check_ledger, drain, open_world, pay, refund


async def _entries(conn: asyncpg.Connection, account_id: str) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM journal_legs WHERE account_id = $1", account_id))


async def test_posting_refused_when_buffer_is_deeper_than_max_depth(
        pool: asyncpg.Pool, side_pool: asyncpg.Pool, redis_client: aioredis.Redis,
        owner: asyncpg.Connection) -> None:
    world = await open_world(pool, customers=1, owner=owner)  # the owner flushes nothing until drain
    sink = RedisHotLegSink(side_pool, redis_client, LiveTuning(side_pool, BufferTuning(max_depth=10)))
    await sink.hot.refresh()
    booker = Booker(pool, sink)
    for _ in range(5):
        await pay(booker, world, world.customers[0], 1000, 10)
    before = await _entries(owner, world.merchant)
    refusals = REGISTRY.get_sample_value("payengine_buffer_backpressure_refusals_total",
                                         {"account": world.transit}) or 0
    with pytest.raises(BufferBackpressure) as refused:
        await pay(booker, world, world.customers[0], 1000, 10)
    # transit takes two legs per payment: its depth (10) reaches max_depth first
    assert refused.value.retry_after_s >= 1 and refused.value.account_id == world.transit and refused.value.depth == 10
    assert await _entries(owner, world.merchant) == before  # refused before anything was written
    assert (REGISTRY.get_sample_value("payengine_buffer_backpressure_refusals_total",
                                      {"account": world.transit}) or 0) > refusals
    await drain(owner, redis_client, world.hot)
    await asyncio.sleep(0.15)  # the refusing process re-reads a stale view before refusing again
    await pay(booker, world, world.customers[0], 1000, 10)
    await drain(owner, redis_client, world.hot)
    await check_ledger(owner, world.all)


async def test_posting_refused_when_oldest_leg_is_older_than_max_lag(
        pool: asyncpg.Pool, side_pool: asyncpg.Pool, redis_client: aioredis.Redis,
        owner: asyncpg.Connection) -> None:
    world = await open_world(pool, customers=1, owner=owner)
    sink = RedisHotLegSink(side_pool, redis_client, LiveTuning(side_pool, BufferTuning(max_lag_ms=200)))
    await sink.hot.refresh()
    booker = Booker(pool, sink)
    await pay(booker, world, world.customers[0], 5000, 0)
    await asyncio.sleep(0.3)
    with pytest.raises(BufferBackpressure):
        await pay(booker, world, world.customers[0], 1000, 0)
    with pytest.raises(BufferBackpressure):  # the hot debit's own Lua check says the same
        await refund(booker, world, world.customers[0], 100)
    await drain(owner, redis_client, world.hot)
    await asyncio.sleep(0.15)
    await refund(booker, world, world.customers[0], 100)


async def test_redis_unreachable_credits_commit_and_hot_debits_are_refused(
        pool: asyncpg.Pool, side_pool: asyncpg.Pool, redis_client: aioredis.Redis,
        owner: asyncpg.Connection) -> None:
    world = await open_world(pool, customers=1, owner=owner)
    down = aioredis.Redis.from_url("unix:///tmp/payengine-no-such-redis.sock", socket_connect_timeout=0.5)
    sink = RedisHotLegSink(side_pool, down, LiveTuning(side_pool, BufferTuning()))
    await sink.hot.refresh()
    booker = Booker(pool, sink)
    await pay(booker, world, world.customers[0], 5000, 50)  # commits; its legs wait for recovery
    with pytest.raises(BufferUnavailable):
        await refund(booker, world, world.customers[0], 100)
    assert await owner.fetchval("SELECT count(*) FROM journal_legs WHERE account_id = $1 AND status = 'buffered'",
                                world.merchant) == 1
    await drain(owner, redis_client, world.hot)  # the recovery sweep finds the leg Redis never saw
    assert await owner.fetchval("SELECT balance FROM accounts WHERE id = $1", world.merchant) == 4950
    await check_ledger(owner, world.all)
    await down.aclose()


async def test_legs_put_back_by_the_sweep_age_from_when_the_buffer_got_them(
        pool: asyncpg.Pool, side_pool: asyncpg.Pool, redis_client: aioredis.Redis,
        owner: asyncpg.Connection) -> None:
    """A leg committed long before Redis saw it (its enqueue was lost; or its booking's transaction ran
    long) is flushed in the next round once the sweep puts it back: it is no sign of a flusher falling
    behind, and must not make back-pressure refuse postings."""
    world = await open_world(pool, customers=1, owner=owner)
    down = aioredis.Redis.from_url("unix:///tmp/payengine-no-such-redis.sock", socket_connect_timeout=0.5)
    lost = RedisHotLegSink(side_pool, down, LiveTuning(side_pool, BufferTuning()))
    await lost.hot.refresh()
    await pay(Booker(pool, lost), world, world.customers[0], 5000, 50)  # commits; Redis never hears of it
    await asyncio.sleep(0.6)
    scripts = Scripts(redis_client)
    for account_id in world.hot:
        await recover_account(owner, redis_client, scripts, account_id, grace_ms=0)
    status = {s.account_id: s for s in await read_status(redis_client, scripts, world.hot)}
    assert status[world.merchant].depth == 1 and status[world.merchant].oldest_age_ms < 400
    sink = RedisHotLegSink(side_pool, redis_client, LiveTuning(side_pool, BufferTuning(max_lag_ms=400)))
    await sink.hot.refresh()
    await pay(Booker(pool, sink), world, world.customers[0], 1000, 10)  # not refused
    await drain(owner, redis_client, world.hot)
    await check_ledger(owner, world.all)
