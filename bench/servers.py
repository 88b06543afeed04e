"""Fresh PostgreSQL and Redis for one benchmark run: started in a temporary directory, stopped after.

Given ``--database-url``/``--redis-url`` (or PAYENGINE_DATABASE_URL/PAYENGINE_REDIS_URL) the run uses
those servers instead and leaves them alone; every scenario makes its own accounts with random ids,
so a shared database is fine.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import redis.asyncio as aioredis

from engine import embedded
from engine.db import create_pool
from engine.migrate import migrate


@dataclass(frozen=True, slots=True)
class BenchServers:
    database_url: str
    redis_url: str
    root: Path | None  # temporary directory we own (None for external servers)


@asynccontextmanager
async def fresh_servers(database_url: str = "", redis_url: str = "") -> AsyncIterator[BenchServers]:
    """Start embedded servers in a temp dir (unless URLs are given), migrate, stop and delete after."""
    root = Path(tempfile.mkdtemp(prefix="pe-bench-", dir="/tmp")) if not (database_url and redis_url) else None
    pg_dir = redis_dir = None
    try:
        if not database_url:
            assert root is not None
            pg_dir = root / "pg"
            database_url = embedded.start_postgres(pg_dir).dsn
        if not redis_url:
            assert root is not None
            redis_dir = root / "redis"
            # AOF stays on: the buffer's durability cost belongs in the measurement.
            redis_url = embedded.start_redis(redis_dir).url
        conn = await asyncpg.connect(database_url)
        try:
            await migrate(conn)
        finally:
            await conn.close()
        print(f"servers: postgresql {'embedded in ' + str(pg_dir) if pg_dir else 'external'}, "
              f"redis {'embedded in ' + str(redis_dir) if redis_dir else 'external'}", file=sys.stderr)
        yield BenchServers(database_url, redis_url, root)
    finally:
        if redis_dir is not None:
            embedded.stop_redis(redis_dir)
        if pg_dir is not None:
            embedded.stop_postgres(pg_dir, mode="fast")
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)


async def open_pool(database_url: str, size: int) -> asyncpg.Pool:
    """A pool sized to the load and opened in full up front, so no mode pays for connecting in its window."""
    return await create_pool(database_url, min_size=size, max_size=size, command_timeout_s=60)


def open_redis(redis_url: str) -> aioredis.Redis:
    return aioredis.Redis.from_url(redis_url, decode_responses=False, max_connections=512)
