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


class PoolConnection(asyncpg.Connection):  # type: ignore[misc]  # asyncpg ships no types
    """A pooled connection whose user may declare it left no session state behind.

    asyncpg resets every connection it takes back (advisory locks, cursors, LISTEN, settings): a whole
    round trip per release, which on the request path is one of the few per request. Code that ran only
    statements that cannot leave session state (no session advisory locks, SET, LISTEN, cursors; an
    open transaction is still rolled back by asyncpg) calls ``release_without_reset`` before releasing.
    Everyone else keeps the full reset, so the declaration can only ever cover its own use.
    """

    _no_session_state = False

    def declare_no_session_state(self) -> None:
        self._no_session_state = True

    def get_reset_query(self) -> str:
        if self._no_session_state:
            self._no_session_state = False
            return ""
        query: str = super().get_reset_query()
        return query


def release_without_reset(conn: object) -> None:
    """Declare that ``conn`` (a pooled connection or its proxy) left no session state; see PoolConnection."""
    declare = getattr(conn, "declare_no_session_state", None)
    if declare is not None:
        declare()


async def create_pool(database_url: str, min_size: int, max_size: int, command_timeout_s: float,
                      idle_s: float = 30.0) -> asyncpg.Pool:
    """Our pool: PoolConnection, prepared statements kept, connections idle ``idle_s`` closed (to min_size)."""
    pool = await asyncpg.create_pool(
        database_url, min_size=min_size, max_size=max_size, command_timeout=command_timeout_s,
        connection_class=PoolConnection, max_inactive_connection_lifetime=idle_s,
        # The posting function is called with the same statement text every time: keep it prepared.
        statement_cache_size=256,
    )
    assert pool is not None
    return pool
