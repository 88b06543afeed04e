"""One factory that turns a Redis URL into a redis-py asyncio client: one server or a Redis Cluster.

- ``redis://host:port/db``, ``rediss://...``, ``unix:///path/redis.sock``: ``redis.asyncio.Redis``.
- ``redis+cluster://host:port`` (``rediss+cluster://`` with TLS), or a ``redis(s)://`` URL with
  ``cluster=True`` (``PAYENGINE_REDIS_CLUSTER=1``): ``redis.asyncio.cluster.RedisCluster``. The node
  in the URL is only a seed: the client reads the slot map from it and follows MOVED/ASK itself.

Both clients speak the commands the buffer uses (EVALSHA of registered scripts, non-transactional
pipelines, hashes, sorted sets). The buffer's keys carry a per-account hash tag, so a cluster
pipeline splits by slot and every script runs on the one node that owns its account.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeAlias

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from engine.settings import Settings

RedisClient: TypeAlias = aioredis.Redis | RedisCluster

# cluster scheme -> the scheme redis-py parses
CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
PLAIN_SCHEMES = ("redis", "rediss", "unix")
DEFAULT_MAX_CONNECTIONS = 100
POOL_WAIT_S = 5.0  # longest a command waits for a pooled connection before failing


class RedisUrlError(ValueError):
    """A Redis URL this factory cannot serve (unknown scheme, or a cluster over a unix socket)."""


@dataclass(frozen=True, slots=True)
class RedisTarget:
    url: str  # a URL redis-py's from_url understands
    cluster: bool


def parse_redis_url(url: str, cluster: bool = False) -> RedisTarget:
    """Which client ``url`` needs; ``cluster`` forces cluster mode for a plain TCP URL."""
    scheme, sep, rest = url.partition("://")
    if not sep or not rest:
        raise RedisUrlError(f"not a Redis URL: {url!r}")
    if scheme in CLUSTER_SCHEMES:
        return RedisTarget(f"{CLUSTER_SCHEMES[scheme]}://{rest}", True)
    if scheme not in PLAIN_SCHEMES:
        raise RedisUrlError(f"unknown Redis URL scheme {scheme!r} (expected one of "
                            f"{', '.join((*PLAIN_SCHEMES, *CLUSTER_SCHEMES))})")
    if cluster and scheme == "unix":
        # Cluster nodes announce TCP addresses to each other and to clients; a socket path is no seed.
        raise RedisUrlError("a Redis Cluster needs a TCP seed node (redis://host:port), not a unix socket")
    return RedisTarget(url, cluster)


def create_redis(url: str, *, cluster: bool = False, max_connections: int | None = None,
                 socket_timeout: float | None = None, socket_connect_timeout: float | None = None) -> RedisClient:
    """A client for ``url`` returning bytes (``decode_responses=False``, as the buffer expects).

    ``max_connections`` bounds the pool: per process for one server, per node for a cluster. Size it
    to the process's concurrency: past it a RedisCluster fails the command at once with
    MaxConnectionsError (its default is 100 per node). Nothing connects here; the first command does.
    """
    target = parse_redis_url(url, cluster)
    options: dict[str, Any] = {"decode_responses": False}
    if max_connections is not None:
        options["max_connections"] = max_connections
    if socket_timeout is not None:
        options["socket_timeout"] = socket_timeout
    if socket_connect_timeout is not None:
        options["socket_connect_timeout"] = socket_connect_timeout
    if target.cluster:
        return RedisCluster.from_url(target.url, **options)
    # A blocking pool makes a burst past max_connections wait (bounded) for a free connection instead
    # of failing the command at once with MaxConnectionsError, as redis-py's default pool does.
    options.setdefault("max_connections", DEFAULT_MAX_CONNECTIONS)
    pool = aioredis.BlockingConnectionPool.from_url(target.url, timeout=POOL_WAIT_S, **options)
    return aioredis.Redis(connection_pool=pool)


def redis_from_settings(settings: Settings, url: str, *, max_connections: int | None = None,
                        socket_timeout: float | None = None,
                        socket_connect_timeout: float | None = None) -> RedisClient:
    """``create_redis`` with cluster mode taken from ``PAYENGINE_REDIS_CLUSTER`` and, unless given, socket
    timeouts from ``PAYENGINE_REDIS_TIMEOUT_S``.

    ``url`` is passed separately because an empty ``settings.redis_url`` means the embedded server,
    whose URL only ``engine.db.ensure_servers`` knows.
    """
    timeout = float(settings.redis_timeout_s)
    return create_redis(url, cluster=settings.redis_cluster, max_connections=max_connections,
                        socket_timeout=socket_timeout if socket_timeout is not None else timeout,
                        socket_connect_timeout=socket_connect_timeout if socket_connect_timeout is not None
                        else timeout)


def is_cluster(client: RedisClient) -> bool:
    return isinstance(client, RedisCluster)
