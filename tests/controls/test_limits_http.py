"""Limits through HTTP: each window and scope, release on a failed booking, 200 concurrent payments
against a daily limit, and Redis losing the counters mid-day."""

from __future__ import annotations

import asyncio

import asyncpg
import redis.asyncio as aioredis

from tests.api.conftest import Api
from tests.controls.conftest import Admin, order_no, pay, wipe_control_keys


async def test_single_daily_and_monthly_limits_per_customer_answer_402_naming_the_limit(api: Api,
                                                                                        admin: Admin) -> None:
    client = await api.merchant()
    customer = await api.funded_customer(client, 100_000)
    await admin.merchant_limits(
        client, {"scope": "customer", "window": "single", "method": "wallet", "amount_max": 5_000},
        {"scope": "customer", "window": "daily", "amount_max": 8_000},
        {"scope": "customer", "window": "monthly", "count_max": 3})
    single = await pay(client, customer, 5_001)
    assert single.status == 402 and single.error_code == "limit_exceeded"
    assert single.body["error"]["details"] == {"scope": "customer", "window": "single", "metric": "amount",
                                               "method": "wallet", "currency": "CNY", "limit": 5_000, "used": 0,
                                               "attempted": 5_001}
    assert (await pay(client, customer, 5_000)).status == 201
    daily = await pay(client, customer, 3_001)
    assert daily.status == 402
    assert daily.body["error"]["details"] | {} == {"scope": "customer", "window": "daily", "metric": "amount",
                                                   "method": "*", "currency": "CNY", "limit": 8_000, "used": 5_000,
                                                   "attempted": 3_001}
    assert (await pay(client, customer, 3_000)).status == 201
    await admin.merchant_limits(client, {"scope": "customer", "window": "monthly", "count_max": 3})
    assert (await pay(client, customer, 10)).status == 201
    monthly = await pay(client, customer, 10)
    assert monthly.status == 402
    details = monthly.body["error"]["details"]
    assert (details["window"], details["metric"], details["limit"], details["used"]) == ("monthly", "count", 3, 3)


async def test_merchant_daily_limit_per_method_counts_all_its_customers(api: Api, admin: Admin) -> None:
    client = await api.merchant()
    alice = await api.funded_customer(client, 10_000)
    bob = await api.funded_customer(client, 10_000)
    await admin.merchant_limits(client, {"scope": "merchant", "window": "daily", "method": "wallet",
                                         "amount_max": 1_500, "count_max": 10})
    assert (await pay(client, alice, 1_000)).status == 201
    refused = await pay(client, bob, 600)
    assert refused.status == 402 and refused.body["error"]["details"]["scope"] == "merchant"
    assert refused.body["error"]["details"]["used"] == 1_000
    assert (await pay(client, bob, 500)).status == 201
    assert (await pay(client, None, 5_000, "channel")).status == 201  # the limit is for wallet payments


async def test_failed_booking_and_replayed_key_give_the_usage_back(api: Api, admin: Admin,
                                                                   pool: asyncpg.Pool) -> None:
    client = await api.merchant()
    customer = await api.funded_customer(client, 1_000)
    await admin.merchant_limits(client, {"scope": "customer", "window": "daily", "count_max": 3})
    poor = await pay(client, customer, 5_000)
    assert poor.status == 402 and poor.error_code == "insufficient_funds"
    first = await pay(client, customer, 100, idempotency_key="k-" + order_no())
    body = {"merchant_order_no": order_no(), "amount": 100, "currency": "CNY", "method": "wallet",
            "customer_id": customer}
    keyed = await client.create_payment(body, idempotency_key="same-key")
    replay = await client.create_payment(body, idempotency_key="same-key")
    assert (first.status, keyed.status, replay.status, replay.replayed) == (201, 201, 201, True)
    duplicate = await client.create_payment(body, idempotency_key="other-key")  # same merchant_order_no
    assert duplicate.status == 409
    assert (await pay(client, customer, 100)).status == 201
    over = await pay(client, customer, 100)
    assert over.status == 402 and over.body["error"]["details"]["used"] == 3
    late_replay = await client.create_payment(body, idempotency_key="same-key")  # a replay is not a new attempt
    assert (late_replay.status, late_replay.replayed) == (201, True)
    async with pool.acquire() as conn:
        rows = await conn.fetchval("SELECT count(*) FROM limit_usage WHERE merchant_id = $1", client.merchant_id)
    assert rows == 3  # the refused, replayed and duplicate attempts left no usage behind


async def test_200_concurrent_payments_never_pass_a_daily_limit(api: Api, admin: Admin, pool: asyncpg.Pool) -> None:
    client = await api.merchant()
    customer = await api.funded_customer(client, 200 * 100)
    await admin.merchant_limits(client, {"scope": "customer", "window": "daily", "amount_max": 37 * 100},
                                {"scope": "merchant", "window": "daily", "method": "channel", "count_max": 41})
    wallet, channel = await asyncio.gather(
        asyncio.gather(*(pay(client, customer, 100) for _ in range(200))),
        asyncio.gather(*(pay(client, None, 100, "channel") for _ in range(200))))
    assert sorted({r.status for r in wallet}) == [201, 402]
    assert sum(r.status == 201 for r in wallet) == 37
    assert sum(r.status == 201 for r in channel) == 41
    assert all(r.error_code == "limit_exceeded" for r in (*wallet, *channel) if r.status != 201)
    async with pool.acquire() as conn:
        booked = await conn.fetch("SELECT method, count(*) AS n, sum(amount) AS total FROM payments"
                                  " WHERE merchant_id = $1 GROUP BY method", client.merchant_id)
    assert {r["method"]: (r["n"], r["total"]) for r in booked} == {"wallet": (37, 3_700), "channel": (41, 4_100)}
    balance = (await client.get_customer(customer)).body
    assert balance["balance"] == 200 * 100 - 3_700


async def test_daily_limit_holds_after_redis_lost_the_counters_mid_day(api: Api, admin: Admin,
                                                                        redis_client: aioredis.Redis) -> None:
    client = await api.merchant()
    customer = await api.funded_customer(client, 100_000)
    await admin.merchant_limits(client, {"scope": "customer", "window": "daily", "amount_max": 1_000})
    assert (await pay(client, customer, 700)).status == 201
    assert await wipe_control_keys(redis_client) > 0
    over = await pay(client, customer, 301)
    assert over.status == 402 and over.body["error"]["details"]["used"] == 700
    await wipe_control_keys(redis_client)
    # Rebuilt under concurrency: 30 attempts of 10 for the 300 left, counters gone when they start.
    results = await asyncio.gather(*(pay(client, customer, 10) for _ in range(60)))
    assert sum(r.status == 201 for r in results) == 30
    assert (await pay(client, customer, 1)).status == 402


async def test_global_default_applies_unless_the_merchant_overrides_it(api: Api, admin: Admin) -> None:
    before = await admin.call("GET", "/admin/limits")
    assert before.status == 200
    plain, lifted = await api.merchant(), await api.merchant()
    plain_customer = await api.funded_customer(plain, 10_000, "USD")
    lifted_customer = await api.funded_customer(lifted, 10_000, "USD")
    rule = {"scope": "customer", "window": "single", "method": "wallet", "currency": "USD", "amount_max": 500}
    try:
        put = await admin.call("PUT", "/admin/limits", {"limits": [*before.body["limits"], rule]})
        assert put.status == 200, put.body
        await admin.merchant_limits(lifted, {**rule, "amount_max": None})
        body = {"amount": 600, "currency": "USD", "method": "wallet"}
        refused = await plain.create_payment({**body, "merchant_order_no": order_no(), "customer_id": plain_customer})
        allowed = await lifted.create_payment({**body, "merchant_order_no": order_no(),
                                               "customer_id": lifted_customer})
        assert (refused.status, refused.error_code, allowed.status) == (402, "limit_exceeded", 201)
        view = await admin.call("GET", f"/admin/merchants/{lifted.merchant_id}/limits")
        assert view.body["limits"] == [{**rule, "amount_max": None, "count_max": None}]
        assert {**rule, "amount_max": None, "count_max": None} in view.body["effective"]
    finally:
        restored = await admin.call("PUT", "/admin/limits", before.body)
        assert restored.status == 200
