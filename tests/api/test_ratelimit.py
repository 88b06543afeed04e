"""Per-merchant rate limit: 429 with Retry-After past the burst, recovery as tokens refill, and fail-open
(with a metric) while its Redis is down. The app here has its own redis-server, so killing it touches
no other test."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY

from engine import embedded
from engine.bootstrap import create_app
from engine.client import PayEngineClient, create_merchant
from engine.settings import Settings
from tests.conftest import Servers
from tests.serving import serving

ADMIN_TOKEN = "ratelimit-admin-token"
RATE_PER_S, BURST = 4, 4


@dataclass
class Limited:
    url: str
    session: aiohttp.ClientSession
    redis_dir: Path

    async def merchant(self) -> PayEngineClient:
        created = await create_merchant(self.url, ADMIN_TOKEN, {"name": "rl", "currencies": ["CNY"]}, self.session)
        return PayEngineClient(self.url, created["id"], created["secret"], session=self.session, retries_max=0)


@pytest.fixture(scope="module")
async def limited(servers: Servers) -> AsyncIterator[Limited]:
    root = Path(tempfile.mkdtemp(prefix="pe-rl-", dir="/tmp"))
    redis = embedded.start_redis(root / "redis", appendonly=False)
    settings = Settings(admin_token=ADMIN_TOKEN, rate_limit_per_s=RATE_PER_S, rate_limit_burst=BURST,
                        rate_limit_timeout_ms=200, webhooks_in_process=False, expiry_in_process=False,
                        gateway_in_process=False, db_pool_max=10)
    app = create_app(settings, servers.database_url, redis.url)
    try:
        async with serving(app) as served, aiohttp.ClientSession() as session:
            yield Limited(served.url, session, root / "redis")
    finally:
        embedded.stop_redis(root / "redis", kill=True)
        shutil.rmtree(root, ignore_errors=True)


def _fail_open_count() -> float:
    return REGISTRY.get_sample_value("payengine_ratelimit_fail_open_total") or 0.0


async def test_burst_then_429_with_retry_after_then_recovery(limited: Limited) -> None:
    client = await limited.merchant()
    statuses = [(await client.accounts()).status for _ in range(BURST)]
    assert statuses == [200] * BURST
    refused = await client.accounts()
    assert refused.status == 429
    assert refused.body["error"]["type"] == "rate_limit_error" and refused.body["error"]["code"] == "rate_limited"
    assert refused.headers["Retry-After"] == "1"
    # POSTs are limited too, and a refused POST did nothing (its idempotency key stays unused).
    refused_post = await client.create_customer("c-1", idempotency_key="rl-key-1")
    assert refused_post.status == 429

    await asyncio.sleep(int(refused.headers["Retry-After"]))
    assert (await client.accounts()).status == 200
    created = await client.create_customer("c-1", idempotency_key="rl-key-1")
    assert created.status == 201 and not created.replayed


async def test_each_merchant_has_its_own_bucket_and_bad_signatures_spend_nothing(limited: Limited) -> None:
    noisy, quiet = await limited.merchant(), await limited.merchant()
    forged = PayEngineClient(limited.url, quiet.merchant_id, "sk_wrong", session=limited.session, retries_max=0)
    for _ in range(10):
        assert (await forged.accounts()).status == 401
    for _ in range(BURST + 2):
        await noisy.accounts()
    assert (await noisy.accounts()).status == 429
    assert [(await quiet.accounts()).status for _ in range(BURST)] == [200] * BURST


async def test_redis_down_fails_open_with_metric_then_limits_again(limited: Limited) -> None:
    client = await limited.merchant()
    embedded.stop_redis(limited.redis_dir, kill=True)
    before = _fail_open_count()
    try:
        statuses = [(await client.accounts()).status for _ in range(BURST * 3)]
        assert statuses == [200] * (BURST * 3)  # no limit, but no outage either
        assert _fail_open_count() - before == BURST * 3
    finally:
        embedded.start_redis(limited.redis_dir, appendonly=False)
    await asyncio.sleep(1.1)  # the limiter leaves Redis alone for a second after a failure
    statuses = [(await client.accounts()).status for _ in range(BURST + 1)]
    assert statuses == [200] * BURST + [429]


async def test_chunked_tokens_never_exceed_the_bucket_under_concurrency(redis_client: aioredis.Redis) -> None:
    """Two limiters (two processes) share one merchant's bucket: each takes chunks, none over-spends."""
    from engine.http.ratelimit import RateLimiter

    limiters = [RateLimiter(redis_client, rate_per_s=100, burst=100, timeout_ms=1000) for _ in range(2)]
    assert limiters[0].chunk == 5
    merchant_id = "mch_rl_" + uuid.uuid4().hex
    started = time.monotonic()
    answers = await asyncio.gather(*(limiters[n % 2].retry_after_s(merchant_id) for n in range(400)))
    elapsed = time.monotonic() - started
    allowed = answers.count(None)
    assert 100 <= allowed <= 100 + 100 * elapsed + 2 * limiters[0].chunk
    assert all(a == 1 for a in answers if a is not None)
