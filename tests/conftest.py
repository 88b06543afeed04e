"""Session fixtures: real PostgreSQL and Redis from the embedded wheels (or PAYENGINE_*_URL).

Servers start once per test session in a short temporary directory; each test makes its own
accounts and merchants with random ids, so tests never depend on each other.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis

from engine import embedded
from engine.migrate import migrate


@dataclass(frozen=True)
class Servers:
    database_url: str
    redis_url: str
    root: Path | None  # None when external servers are used
    pg_dir: Path | None
    redis_dir: Path | None


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    database_url = os.environ.get("PAYENGINE_DATABASE_URL", "")
    redis_url = os.environ.get("PAYENGINE_REDIS_URL", "")
    root = Path(tempfile.mkdtemp(prefix="pe-", dir="/tmp")) if not (database_url and redis_url) else None
    pg_dir = redis_dir = None
    if not database_url:
        assert root is not None
        pg_dir = root / "pg"
        database_url = embedded.start_postgres(pg_dir).dsn
    if not redis_url:
        assert root is not None
        redis_dir = root / "redis"
        redis_url = embedded.start_redis(redis_dir).url
    try:
        yield Servers(database_url, redis_url, root, pg_dir, redis_dir)
    finally:
        if redis_dir is not None:
            embedded.stop_redis(redis_dir)
        if pg_dir is not None:
            embedded.stop_postgres(pg_dir, mode="immediate")
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
async def pool(servers: Servers) -> AsyncIterator[asyncpg.Pool]:
    conn = await asyncpg.connect(servers.database_url)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    pool = await asyncpg.create_pool(servers.database_url, min_size=2, max_size=80)
    assert pool is not None
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture(scope="session")
async def redis_client(servers: Servers) -> AsyncIterator[aioredis.Redis]:
    # A blocking pool waits for a free connection instead of failing a burst of 500 concurrent bookings.
    pool = aioredis.BlockingConnectionPool.from_url(servers.redis_url, max_connections=200, timeout=20)
    client = aioredis.Redis(connection_pool=pool)
    try:
        yield client
    finally:
        await client.aclose()
