"""The buffer as shipped, on the plain cluster client (no EvalPipelineCluster).

Its unpipelined paths (flusher take/ack, recovery, load) work; its pipelined script calls do not:
redis-py's ClusterPipeline blocks EVALSHA. These xfails are strict, so the fix in buffer/ (EVAL in
cluster pipelines, see eval_pipeline.py) turns them into failures that ask for their removal.
"""

from __future__ import annotations

import asyncpg
import pytest
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisClusterException

from buffer.recovery import recover_account
from buffer.scripts import Scripts
from buffer.sink import RedisHotLegSink
from buffer.state import read_status
from buffer.tuning import BufferTuning, LiveTuning
from engine.booking import Booker
from tests.buffer.world import check_ledger, drain, open_world, pay, refund

BLOCKED = "redis-py ClusterPipeline blocks EVALSHA: buffer/sink.py and buffer/state.py pipeline registered scripts"


@pytest.mark.xfail(raises=RedisClusterException, strict=True, reason=BLOCKED)
async def test_enqueue_after_commit_as_shipped(pool: asyncpg.Pool, cluster_client: RedisCluster) -> None:
    world = await open_world(pool, customers=1)
    sink = RedisHotLegSink(pool, cluster_client, LiveTuning(pool, BufferTuning()))  # type: ignore[arg-type]
    await sink.hot.refresh()
    await pay(Booker(pool, sink), world, world.customers[0], 1_000, 10)


@pytest.mark.xfail(raises=RedisClusterException, strict=True, reason=BLOCKED)
async def test_reserve_before_commit_as_shipped(pool: asyncpg.Pool, cluster_client: RedisCluster) -> None:
    world = await open_world(pool, customers=1)
    sink = RedisHotLegSink(pool, cluster_client, LiveTuning(pool, BufferTuning()))  # type: ignore[arg-type]
    await sink.hot.refresh()
    await refund(Booker(pool, sink), world, world.customers[0], 1_000)


@pytest.mark.xfail(raises=RedisClusterException, strict=True, reason=BLOCKED)
async def test_read_status_as_shipped(cluster_client: RedisCluster) -> None:
    await read_status(cluster_client, Scripts(cluster_client), ["acct_a", "acct_b"])  # type: ignore[arg-type]


async def test_recovery_and_flush_as_shipped(pool: asyncpg.Pool, cluster_client: RedisCluster,
                                             owner: asyncpg.Connection) -> None:
    """Booked without the sink (legs 'buffered' in PostgreSQL only): the shipped recovery sweep and
    flusher bring them through the plain cluster client, in journal order, each once."""
    world = await open_world(pool, customers=2, owner=owner)
    unbuffered = Booker(pool, None)
    for i in range(40):
        await pay(unbuffered, world, world.customers[i % 2], 700 + i, 7)
    scripts = Scripts(cluster_client)  # type: ignore[arg-type]
    for account_id in world.hot:
        await recover_account(owner, cluster_client, scripts, account_id, grace_ms=0)  # type: ignore[arg-type]
    await drain(owner, cluster_client, world.hot, batch_size=9)  # type: ignore[arg-type]
    async with pool.acquire() as conn:
        await check_ledger(conn, world.all)
        assert await conn.fetchval("SELECT balance FROM accounts WHERE id = $1", world.merchant) == \
            sum(700 + i - 7 for i in range(40))
