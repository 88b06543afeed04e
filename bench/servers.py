"""Fresh PostgreSQL and Redis for one benchmark run: started in a temporary directory, stopped after.

Given ``--database-url``/``--redis-url`` (or PAYENGINE_DATABASE_URL/PAYENGINE_REDIS_URL) the run uses
those servers instead and leaves them alone; every scenario makes its own accounts with random ids,
so a shared database is fine.
"""

from __future__ import annotations

import sys
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
    with embedded.temporary_servers(database_url, redis_url, prefix="pe-bench-") as servers:
        conn = await asyncpg.connect(servers.database_url)
        try:
            await migrate(conn)
        finally:
            await conn.close()
        pg, rd = servers.pg_dir, servers.redis_dir
        print(f"servers: postgresql {'embedded in ' + str(pg) if pg else 'external'}, "
              f"redis {'embedded in ' + str(rd) if rd else 'external'}", file=sys.stderr)
        yield BenchServers(servers.database_url, servers.redis_url, servers.root)


async def open_pool(database_url: str, size: int) -> asyncpg.Pool:
    """A pool sized to the load and opened in full up front, so no mode pays for connecting in its window."""
    return await create_pool(database_url, min_size=size, max_size=size, command_timeout_s=60)


def open_redis(redis_url: str) -> aioredis.Redis:
    return aioredis.Redis.from_url(redis_url, decode_responses=False, max_connections=512)
