"""Order expiry under test: the real app on its own database and Redis (so no other app's expiry worker
pops this queue or sweeps these payments), with the in-process worker off: tests drive the delay queue
and the sweep themselves, so they can tell the two paths apart."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import asyncpg
import pytest
import redis.asyncio as aioredis
from aiohttp import web

from engine.bootstrap import create_app
from engine.client import PayEngineClient, create_merchant
from engine.payments.expiry import ExpiryQueue
from engine.services import SERVICES
from engine.settings import Settings
from tests.conftest import Servers
from tests.serving import serving
from tests.webhooks.isolated import Isolated, isolated_servers

ADMIN_TOKEN = "expiry-test-admin-token"
SETTINGS = Settings(admin_token=ADMIN_TOKEN, db_pool_max=20, expiry_in_process=False, expiry_batch_max=50,
                    webhooks_in_process=False, gateway_in_process=False)


@dataclass
class ExpiryWorld:
    url: str
    session: aiohttp.ClientSession
    pool: asyncpg.Pool
    redis: aioredis.Redis
    app: web.Application
    iso: Isolated

    @property
    def queue(self) -> ExpiryQueue:
        return self.app[SERVICES].expiry

    async def merchant(self) -> PayEngineClient:
        created = await create_merchant(self.url, ADMIN_TOKEN, {"name": "expiry merchant", "currencies": ["CNY"]},
                                        self.session)
        return PayEngineClient(self.url, created["id"], created["secret"], session=self.session)

    async def channel_payment(self, client: PayEngineClient, **extra: Any) -> dict[str, Any]:
        created = await client.create_payment({"merchant_order_no": "o-" + uuid.uuid4().hex, "amount": 500,
                                               "currency": "CNY", "method": "channel", "channel": "wxsim",
                                               "expires_in_s": 60, **extra})
        assert created.status == 201, created.body
        body: dict[str, Any] = created.body
        return body

    async def backdate(self, payment_id: str, seconds: float, in_queue: bool = True) -> None:
        """Move a deadline into the past in PostgreSQL (and in the queue, as creation would have)."""
        row = await self.pool.fetchrow(
            "UPDATE payments SET expires_at = now() - make_interval(secs => $2) WHERE id = $1"
            " RETURNING merchant_id, expires_at", payment_id, seconds)
        assert row is not None
        if in_queue:
            await self.queue.schedule(row["merchant_id"], payment_id, row["expires_at"])


@pytest.fixture(scope="module")
async def world(servers: Servers) -> AsyncIterator[ExpiryWorld]:
    async with isolated_servers(servers.database_url, "pe_expiry") as iso:
        app = create_app(SETTINGS, iso.database_url, iso.redis_url)
        async with serving(app) as served:
            pool = await asyncpg.create_pool(iso.database_url, min_size=1, max_size=10)
            assert pool is not None
            redis = aioredis.Redis.from_url(iso.redis_url)
            try:
                async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
                    yield ExpiryWorld(served.url, session, pool, redis, app, iso)
            finally:
                await redis.aclose()
                await pool.close()
