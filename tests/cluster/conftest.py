"""Cluster fixtures: a real 3-master Redis Cluster, and the buffer wired to it.

``cluster_client`` is the client engine.redis_client makes for a ``redis+cluster://`` URL (a
RedisCluster). ``redis_client`` is overridden here to be that client, so every test under
tests/cluster (including the buffer tests re-collected from tests/buffer) talks to the cluster.
PostgreSQL is the session's server, but a database of its own (``servers`` and ``pool`` are
overridden here): every other app of the session runs in-process flushers on the main database with the
standalone Redis, and one of them taking a cluster test's account lock (whenever a test's flusher lets
go of it) would flush that account through the wrong Redis, leaving the cluster's queue holding legs
PostgreSQL had already applied.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from engine.redis_client import RedisClient, create_redis

# The buffer tests' fixtures (sink, booker, owner, ...), so they run here unchanged on the cluster.
from tests.buffer.conftest import *  # noqa: F403
from tests.cluster.local_cluster import LocalCluster
from tests.conftest import Servers
from tests.databases import private_database, session_pool


@pytest.fixture(scope="session")
async def servers(servers: Servers) -> AsyncIterator[Servers]:
    """The session's servers, with a private (migrated) database for everything under tests/cluster."""
    async with private_database(servers.database_url, "cluster") as url:
        yield dataclasses.replace(servers, database_url=url)


@pytest.fixture(scope="session")
async def pool(servers: Servers) -> AsyncIterator[asyncpg.Pool]:
    """The cluster database's own pool (the session's ``pool`` is cached on the main database)."""
    async with session_pool(servers.database_url) as opened:
        yield opened


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[LocalCluster]:
    root = Path(tempfile.mkdtemp(prefix="pe-cluster-", dir="/tmp"))
    cluster = LocalCluster(root)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
async def cluster_client(redis_cluster: LocalCluster) -> AsyncIterator[RedisClient]:
    # A RedisCluster refuses a command at once (MaxConnectionsError) when a node's pool is full
    # (default 100 per node); the buffer tests fire 500 concurrent reservations at one account's node.
    client = create_redis(redis_cluster.seed_url, max_connections=1024, socket_timeout=5, socket_connect_timeout=2)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture(scope="session")
def redis_client(cluster_client: RedisClient) -> RedisClient:
    return cluster_client
