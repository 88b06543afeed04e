"""Session fixtures: real PostgreSQL and Redis from the embedded wheels (or PAYENGINE_*_URL).

Servers start once per test session in a short temporary directory; each test makes its own
accounts and merchants with random ids, so tests never depend on each other.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
import redis.asyncio as aioredis

from engine import embedded
from tests.databases import session_pool

Servers = embedded.TemporaryServers


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    with embedded.temporary_servers(os.environ.get("PAYENGINE_DATABASE_URL", ""),
                                    os.environ.get("PAYENGINE_REDIS_URL", ""), pg_stop_mode="immediate") as found:
        yield found


@pytest.fixture(scope="session")
async def pool(servers: Servers) -> AsyncIterator[asyncpg.Pool]:
    async with session_pool(servers.database_url) as opened:
        yield opened


@pytest.fixture(scope="session")
async def redis_client(servers: Servers) -> AsyncIterator[aioredis.Redis]:
    # A blocking pool waits for a free connection instead of failing a burst of 500 concurrent bookings.
    pool = aioredis.BlockingConnectionPool.from_url(servers.redis_url, max_connections=200, timeout=20)
    client = aioredis.Redis(connection_pool=pool)
    try:
        yield client
    finally:
        await client.aclose()
