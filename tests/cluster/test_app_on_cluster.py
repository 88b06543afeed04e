"""The whole engine on a Redis Cluster: ``PAYENGINE_REDIS_URL=redis+cluster://...`` end to end.

``create_app`` builds every Redis client it uses from that URL (engine.redis_client makes a RedisCluster),
so this runs the API as `payengine serve` would: signed wallet payments to a hot merchant, refunds that
reserve against the hot pending account, an idempotent replay, a merchant limit counted in Redis, and the
in-process flushers applying the hot legs, all through real HTTP. The app gets a database of its own, so
its flushers own only its accounts.

The buffer must work on the cluster, not merely be rescued: the recovery sweep would apply legs whose
enqueue failed after its grace period and the money would still add up, so the test also requires that
no enqueue failed and nothing was re-enqueued.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import asyncpg
import pytest
from prometheus_client import REGISTRY
from redis.asyncio.cluster import RedisCluster

from accounts.store import trial_balance
from engine.bootstrap import create_app
from engine.services import SERVICES
from engine.settings import Settings
from tests.api.conftest import ADMIN_TOKEN, AdminHttp, Api
from tests.buffer.world import check_ledger, wait_drained
from tests.cluster.local_cluster import LocalCluster
from tests.conftest import Servers
from tests.databases import private_database
from tests.serving import serving

PAYMENTS = 60
AMOUNT = 1_000


def _counter(name: str) -> float:
    return sum(sample.value for metric in REGISTRY.collect() if metric.name == name.removesuffix("_total")
               for sample in metric.samples if sample.name == name)


@pytest.fixture
async def cluster_api(servers: Servers, redis_cluster: LocalCluster) -> AsyncIterator[tuple[Api, str]]:
    async with private_database(servers.database_url, "clusterapp") as database_url:
        settings = Settings(admin_token=ADMIN_TOKEN)
        app = create_app(settings, database_url, redis_cluster.seed_url)
        async with serving(app) as served, aiohttp.ClientSession() as session:
            yield Api(served.url, settings, session, app), database_url


async def test_payments_refunds_and_limits_through_the_api_on_a_redis_cluster(
        cluster_api: tuple[Api, str]) -> None:
    api, database_url = cluster_api
    assert isinstance(api.app[SERVICES].redis, RedisCluster)
    failures_before = _counter("payengine_buffer_enqueue_failures_total")
    recovered_before = _counter("payengine_buffer_recovery_reenqueued_total")
    client = await api.merchant(name="cluster merchant", currencies=["CNY"], hot=True)
    # Counted by the controls' Lua scripts on the merchant's slot: one payment more than allowed is refused.
    limited = await AdminHttp(api).call("PUT", f"/admin/merchants/{client.merchant_id}/limits",
                                        {"limits": [{"scope": "merchant", "window": "daily",
                                                     "count_max": PAYMENTS}]})
    assert limited.status == 200, limited.body
    customers = [await api.funded_customer(client, 100 * AMOUNT) for _ in range(6)]

    async def pay(i: int) -> Any:
        body = {"merchant_order_no": f"ord-{i}", "amount": AMOUNT + i, "currency": "CNY", "method": "wallet",
                "customer_id": customers[i % len(customers)]}
        return await client.create_payment(body, idempotency_key=f"idem-{i}")

    paid = await asyncio.gather(*(pay(i) for i in range(PAYMENTS)))
    assert [r.status for r in paid] == [201] * PAYMENTS, [r.body for r in paid if r.status != 201][:3]
    replay = await pay(0)  # the same key and body: the stored answer, not a second payment
    assert (replay.status, replay.body["id"]) == (201, paid[0].body["id"])
    over = await pay(PAYMENTS)
    assert (over.status, over.error_code) == (402, "limit_exceeded"), over.body

    refunds = await asyncio.gather(*(client.refund(p.body["id"], 300, f"rf-{i}")
                                     for i, p in enumerate(paid[:20])))
    assert [r.status for r in refunds] == [201] * 20, [r.body for r in refunds if r.status != 201][:3]

    conn = await asyncpg.connect(database_url)
    try:
        hot = [r["id"] for r in await conn.fetch("SELECT id FROM accounts WHERE hot")]
        merchant_hot = await conn.fetchval("SELECT count(*) FROM accounts WHERE hot AND owner_id = $1",
                                           client.merchant_id)
        assert merchant_hot >= 1 and len(hot) >= 3  # its pending account, gateway transit, fee income
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
        try:
            await wait_drained(pool, hot, timeout_s=60)
        finally:
            await pool.close()
        pending_id, pending = await conn.fetchrow(
            "SELECT id, balance FROM accounts WHERE owner_id = $1 AND role = 'merchant_pending'", client.merchant_id)
        await check_ledger(conn, [r["id"] for r in await conn.fetch("SELECT id FROM accounts")],
                           floors={pending_id: 0})
        assert (await trial_balance(conn)).holds
        gross = sum(AMOUNT + i for i in range(PAYMENTS))
        fees = await conn.fetchval("SELECT sum(fee) - sum(fee_refunded) FROM payments WHERE merchant_id = $1",
                                   client.merchant_id)
        assert pending == gross - 20 * 300 - fees
    finally:
        await conn.close()
    assert _counter("payengine_buffer_enqueue_failures_total") == failures_before
    assert _counter("payengine_buffer_recovery_reenqueued_total") == recovered_before
