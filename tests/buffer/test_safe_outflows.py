"""Safe outflows: concurrent debits on a hot non-overdraft account never take it below zero."""

from __future__ import annotations

import asyncio

import asyncpg
import redis.asyncio as aioredis

from accounts.errors import InsufficientFunds
from buffer.runner import FlushRunner
from buffer.sink import RedisHotLegSink
from buffer.tuning import BufferTuning, LiveTuning
from engine.booking import Booker
from tests.buffer.world import check_ledger, drain, open_world, pay, refund, wait_drained
from tests.conftest import Servers

AMOUNT = 1_000


async def test_500_concurrent_debits_covering_100_exactly_100_succeed(
        pool: asyncpg.Pool, side_pool: asyncpg.Pool, redis_client: aioredis.Redis, servers: Servers,
        owner: asyncpg.Connection) -> None:
    # A generous max lag: on a loaded machine 500 tasks in one loop can starve the flusher for
    # seconds, and a back-pressure refusal is not what this test is about.
    sink = RedisHotLegSink(side_pool, redis_client, LiveTuning(side_pool, BufferTuning(max_lag_ms=120_000)))
    booker = Booker(pool, sink)
    world = await open_world(pool, customers=10, funds=10_000_000, owner=owner)
    await sink.hot.refresh()
    # 60 of the 100 covered debits are applied, 40 still pending in the buffer when the race starts.
    for i in range(60):
        await pay(booker, world, world.customers[i % 10], AMOUNT, 0)
    await drain(owner, redis_client, world.hot)
    for i in range(40):
        await pay(booker, world, world.customers[i % 10], AMOUNT, 0)

    await owner.execute("SELECT pg_advisory_unlock_all()")  # hand the accounts to the flusher below
    runner = FlushRunner(servers.database_url, redis_client,
                         LiveTuning(pool, BufferTuning(batch_size=7, flush_interval_ms=2)), world.hot)
    runner.start()

    async def debit(i: int) -> bool:
        try:
            await refund(booker, world, world.customers[i % 10], AMOUNT)
            return True
        except InsufficientFunds:
            return False

    try:
        outcomes = await asyncio.gather(*(debit(i) for i in range(500)))
        await wait_drained(pool, world.hot)
    finally:
        await runner.stop()
    assert sum(outcomes) == 100
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT balance FROM accounts WHERE id = $1", world.merchant) == 0
        # floors: every running balance the flusher ever wrote for the merchant stayed >= 0
        await check_ledger(conn, world.all, floors={world.merchant: 0})
        batches_min = await conn.fetchval("SELECT min(balance_after) FROM journal_legs WHERE account_id = $1",
                                          world.merchant)
        assert batches_min >= 0
