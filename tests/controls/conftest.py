"""Controls under test: the real app (tests/api/conftest.py's ``api``), its admin API over HTTP, and
merchants/customers of their own (random ids). Global limits are only ever set inside one test, in a
currency/method no other test pays with at that moment, and restored before it ends."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
import redis.asyncio as aioredis

from engine import embedded
from engine.bootstrap import create_app
from engine.client import ApiResult, PayEngineClient
from engine.keys import controls_keys_pattern
from engine.settings import Settings
from tests.api.conftest import ADMIN_TOKEN, AdminHttp, Api, api
from tests.conftest import Servers
from tests.serving import serving
from tests.webhooks.isolated import isolated_servers

__all__ = ["api"]


class Admin(AdminHttp):
    async def merchant_limits(self, client: PayEngineClient, *limits: dict[str, Any]) -> None:
        reply = await self.call("PUT", f"/admin/merchants/{client.merchant_id}/limits", {"limits": list(limits)})
        assert reply.status == 200, reply.body

    async def rule(self, **spec: Any) -> dict[str, Any]:
        reply = await self.call("POST", "/admin/risk/rules", spec)
        assert reply.status == 201, reply.body
        created: dict[str, Any] = reply.body
        return created

    async def controls_of(self, payment_id: str) -> dict[str, Any]:
        reply = await self.call("GET", f"/admin/payments/{payment_id}/controls")
        assert reply.status == 200, reply.body
        controls: dict[str, Any] = reply.body["controls"]
        return controls


@pytest.fixture
def admin(api: Api) -> Admin:
    return Admin(api)


def order_no() -> str:
    return "ord-" + uuid.uuid4().hex


async def pay(client: PayEngineClient, customer: str | None, amount: int, method: str = "wallet",
              **kw: Any) -> ApiResult:
    body: dict[str, Any] = {"merchant_order_no": order_no(), "amount": amount, "currency": "CNY", "method": method}
    if customer is not None:
        body["customer_id"] = customer
    return await client.create_payment(body, **kw)


async def wipe_control_keys(redis: aioredis.Redis) -> int:
    """What a Redis restart without persistence does to the controls: every counter, log and history gone.
    (Only our keys: the buffer's keys belong to other tests sharing this Redis.)"""
    gone = 0
    async for key in redis.scan_iter(match=controls_keys_pattern(), count=1000):
        gone += await redis.delete(key)
    return gone


@dataclass(frozen=True)
class PrivateWorld:
    """An app with a database and a redis-server of its own: tests that wipe or restart Redis, or sweep
    every usage row, must not touch what the session's other tests hold."""

    api: Api
    pool: asyncpg.Pool
    redis: aioredis.Redis
    redis_dir: Path

    async def wipe_redis(self) -> None:
        """What a Redis restart without persistence does: everything gone."""
        await self.redis.flushall()

    async def restart_redis(self) -> None:
        """Kill the real redis-server (a crash), drop its data and start it again empty."""
        embedded.stop_redis(self.redis_dir, kill=True)
        embedded.wipe_redis_data(self.redis_dir)
        embedded.start_redis(self.redis_dir, appendonly=False)


@pytest.fixture(scope="module")
async def private(servers: Servers) -> AsyncIterator[PrivateWorld]:
    # The orphan sweep only when a test runs it (it would judge every row of the database).
    settings = Settings(admin_token=ADMIN_TOKEN, webhooks_in_process=False, expiry_in_process=False,
                        gateway_in_process=False, db_pool_max=20, controls_orphan_sweep_interval_s=3_600)
    async with isolated_servers(servers.database_url, "pe_controls") as iso:
        app = create_app(settings, iso.database_url, iso.redis_url)
        async with serving(app) as served:
            pool = await asyncpg.create_pool(iso.database_url, min_size=1, max_size=10)
            assert pool is not None
            redis = aioredis.Redis.from_url(iso.redis_url)
            try:
                async with aiohttp.ClientSession() as session:
                    yield PrivateWorld(Api(served.url, settings, session, app), pool, redis, iso.redis_dir)
            finally:
                await redis.aclose()
                await pool.close()
