"""Buffer fixtures: a sink and a Booker wired to the session's real PostgreSQL and Redis."""

from __future__ import annotations

import asyncpg
import pytest
import redis.asyncio as aioredis

from buffer.sink import RedisHotLegSink
from buffer.tuning import BufferTuning, LiveTuning
from engine.booking import Booker


@pytest.fixture
async def sink(pool: asyncpg.Pool, redis_client: aioredis.Redis) -> RedisHotLegSink:
    s = RedisHotLegSink(pool, redis_client, LiveTuning(pool, BufferTuning()))
    return s


@pytest.fixture
async def booker(pool: asyncpg.Pool, sink: RedisHotLegSink) -> Booker:
    return Booker(pool, sink)
