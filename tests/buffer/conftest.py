"""Buffer fixtures: a sink and a Booker wired to the session's real PostgreSQL and Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
import redis.asyncio as aioredis

from buffer.sink import RedisHotLegSink
from buffer.tuning import BufferTuning, LiveTuning
from engine.booking import Booker
from tests.conftest import Servers


@pytest.fixture(scope="session")
async def side_pool(servers: Servers, pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Pool]:
    """The buffer's own small pool (the booking pool must never be used from inside reserve)."""
    side = await asyncpg.create_pool(servers.database_url, min_size=1, max_size=4)
    assert side is not None
    yield side
    await side.close()


@pytest.fixture
async def sink(side_pool: asyncpg.Pool, redis_client: aioredis.Redis) -> RedisHotLegSink:
    return RedisHotLegSink(side_pool, redis_client, LiveTuning(side_pool, BufferTuning()))


@pytest.fixture
async def booker(pool: asyncpg.Pool, sink: RedisHotLegSink) -> Booker:
    return Booker(pool, sink)


@pytest.fixture
async def owner(servers: Servers) -> AsyncIterator[asyncpg.Connection]:
    """A connection the test holds its accounts' flush locks on (see world.open_world)."""
    conn = await asyncpg.connect(servers.database_url)
    yield conn
    await conn.close()
