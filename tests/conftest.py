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
from engine.hang_dump import hang_watchdog, install_task_dump
from tests.databases import session_pool

Servers = embedded.TemporaryServers


install_task_dump()

TEST_HANG_S = 300  # far beyond the slowest test (about a minute on a loaded machine)


@pytest.fixture(autouse=True)
def _hang_watchdog(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test still running after TEST_HANG_S prints its asyncio tasks and every thread's stack, and 30 s
    later the run ends (exit 1): a hang fails CI in minutes, with the place it hung, not at its time limit."""
    capture = request.config.pluginmanager.getplugin("capturemanager")

    def uncapture() -> None:  # the dump goes to the real stderr (the CI log), not to the test's capture
        if capture is not None:
            capture.suspend_global_capture(in_=False)

    with hang_watchdog(TEST_HANG_S, request.node.nodeid, uncapture):
        yield


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
