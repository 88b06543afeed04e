"""PostgreSQL and Redis connections for a process: embedded or external, per settings."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import asyncpg

from engine import embedded
from engine.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ServerUrls:
    database_url: str
    redis_url: str


def ensure_servers(settings: Settings) -> ServerUrls:
    """Use the configured external servers, or start/reuse the embedded ones in the data dir."""
    database_url = settings.database_url
    redis_url = settings.redis_url
    if not database_url:
        handle = embedded.start_postgres(settings.data_dir / "pg", tcp_port=settings.embedded_pg_port)
        database_url = handle.dsn
    if not redis_url:
        redis_url = embedded.start_redis(settings.data_dir / "redis").url
    return ServerUrls(database_url, redis_url)


async def create_pool(database_url: str, min_size: int, max_size: int, command_timeout_s: float) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        database_url, min_size=min_size, max_size=max_size, command_timeout=command_timeout_s,
        # The posting function is called with the same statement text every time: keep it prepared.
        statement_cache_size=256,
    )
    assert pool is not None
    return pool
