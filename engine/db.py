"""PostgreSQL and Redis connections for a process: embedded or external, per settings."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from engine import embedded
from engine.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ServerUrls:
    database_url: str
    redis_url: str
    # The data dirs of the embedded servers this call started; None for an external URL or a server that was
    # running already (someone else's to stop).
    started_postgres: Path | None = None
    started_redis: Path | None = None

    @property
    def started(self) -> list[str]:
        """The names of the embedded servers this run started, in the order they are stopped."""
        return [name for name, where in (("Redis", self.started_redis), ("PostgreSQL", self.started_postgres))
                if where is not None]


def ensure_servers(settings: Settings) -> ServerUrls:
    """Use the configured external servers, or start/reuse the embedded ones in the data dir. Logs one line
    saying, per server, whether it is external, was running already or was started now."""
    database_url, redis_url = settings.database_url, settings.redis_url
    started_postgres = started_redis = None
    where = {"postgresql": "external", "redis": "external"}
    if not database_url:
        pg = embedded.start_postgres(settings.data_dir / "pg", tcp_port=settings.embedded_pg_port)
        database_url = pg.dsn
        started_postgres = pg.pgdata if pg.started else None
        where["postgresql"] = f"{'started' if pg.started else 'running'} in {pg.pgdata}"
    if not redis_url:
        redis = embedded.start_redis(settings.data_dir / "redis")
        redis_url = redis.url
        started_redis = redis.data_dir if redis.started else None
        where["redis"] = f"{'started' if redis.started else 'running'} in {redis.data_dir}"
    log.info("servers ready", extra=where)
    return ServerUrls(database_url, redis_url, started_postgres, started_redis)


def stop_started_servers(urls: ServerUrls) -> None:
    """Stop the embedded servers that ``ensure_servers`` started (never one it found running, never an external
    one). Redis first: nothing writes to it once the engine stopped."""
    if urls.started_redis is not None:
        embedded.stop_redis(urls.started_redis)
    if urls.started_postgres is not None:
        embedded.stop_postgres(urls.started_postgres)


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
