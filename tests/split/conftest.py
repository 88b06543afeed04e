"""Split tests run with synchronous posting and, where it matters, with the hot-account buffer:
the parent is then hot, so its subs are hot too, bookings go through the Redis sink and flushers
(restricted to the test's family) apply the subs' legs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import asyncpg
import pytest
import redis.asyncio as aioredis

from accounts.split_store import sub_account_id
from buffer.runner import FlushRunner
from buffer.sink import RedisHotLegSink
from buffer.tuning import BufferTuning, LiveTuning
from engine.booking import Booker
from tests.conftest import Servers

DRAIN_TIMEOUT_S = 60.0


@pytest.fixture
def booker(pool: asyncpg.Pool) -> Booker:
    return Booker(pool)


@dataclass
class BookingMode:
    name: str
    booker: Booker
    hot: bool
    pool: asyncpg.Pool
    _watch: Callable[[str], None] = field(default=lambda _: None)

    def watch(self, parent_id: str) -> None:
        """Flush this family (the parent and every sub it could get) while the test runs."""
        self._watch(parent_id)

    async def drain(self, parent_id: str) -> None:
        """Wait until no leg of the family is still buffered."""
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while await self.pool.fetchval(
                "SELECT count(*) FROM journal_legs l JOIN accounts a ON a.id = l.account_id"
                " WHERE (a.id = $1 OR a.parent_id = $1) AND l.status = 'buffered'", parent_id):
            assert time.monotonic() < deadline, "buffer did not drain"
            await asyncio.sleep(0.05)


@pytest.fixture(params=["sync", "buffered"])
async def booking_mode(request: pytest.FixtureRequest, pool: asyncpg.Pool, servers: Servers,
                       redis_client: aioredis.Redis) -> AsyncIterator[BookingMode]:
    if request.param == "sync":
        yield BookingMode("sync", Booker(pool), False, pool)
        return
    tuning = LiveTuning(pool, BufferTuning())
    sink = RedisHotLegSink(pool, redis_client, tuning)
    runner = FlushRunner(servers.database_url, redis_client, tuning, only_accounts=[])

    def watch(parent_id: str) -> None:
        assert runner.only_accounts is not None
        runner.only_accounts += [parent_id, *(sub_account_id(parent_id, i) for i in range(256))]

    runner.start()
    try:
        yield BookingMode("buffered", Booker(pool, sink), True, pool, watch)
    finally:
        await runner.stop()
