"""A bench context: pool, Redis client and a leased transaction-number generator on given servers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from bench.modes import BenchContext
from bench.servers import open_pool, open_redis
from engine.txn_no import NodeLease, TxnNoGenerator

BENCH_SYSTEM_CODE = 98  # bench entries are recognisable by their transaction numbers


@asynccontextmanager
async def bench_context(database_url: str, redis_url: str, pool_size: int,
                        flushers: str = "inproc") -> AsyncIterator[BenchContext]:
    pool = await open_pool(database_url, pool_size)
    redis = open_redis(redis_url)
    try:
        async with pool.acquire() as conn:
            lease = await NodeLease.acquire(conn, 3600)
        try:
            txn_nos = TxnNoGenerator(BENCH_SYSTEM_CODE, 9, 0, lease.node_id)
            yield BenchContext(pool, redis, txn_nos, database_url, redis_url, flushers)
        finally:
            async with pool.acquire() as conn:
                await lease.release(conn)
    finally:
        await redis.aclose()
        await pool.close()
