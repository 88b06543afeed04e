"""Refunds through real HTTP: partial and multiple, limits under concurrency, duplicates, channel refunds."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from accounts.store import trial_balance
from engine.client import PayEngineClient
from tests.api.conftest import Api, order_no
from tests.api.ledger import snapshot


async def _paid(api: Api, amount: int, fee_bps: int = 100) -> tuple[PayEngineClient, str, dict[str, Any]]:
    client = await api.merchant(fee_bps=fee_bps)
    customer = await api.funded_customer(client, amount)
    paid = await client.create_payment({"merchant_order_no": order_no(), "amount": amount, "currency": "CNY",
                                        "method": "wallet", "customer_id": customer})
    assert paid.status == 201, paid.body
    return client, customer, paid.body


async def test_partial_refunds_credit_the_customer_and_return_the_fee_proportionally(api: Api,
                                                                                   pool: asyncpg.Pool) -> None:
    client, customer, payment = await _paid(api, 1000, fee_bps=333)  # fee 33
    first = await client.refund(payment["id"], 300, "r1")
    second = await client.refund(payment["id"], 700, "r2")
    assert first.status == 201 and second.status == 201, (first.body, second.body)
    assert first.body["status"] == "succeeded" and first.body["payment_id"] == payment["id"]
    assert (await client.get_customer(customer)).body["balance"] == 1000
    got = await client.get_payment(payment["id"])
    assert got.body["amount_refunded"] == 1000
    assert (await client.get_refund(first.body["id"])).body == first.body
    async with pool.acquire() as conn:
        shares = await conn.fetch("SELECT fee_refunded FROM refunds WHERE payment_id = $1 ORDER BY created_at",
                                  payment["id"])
        merchant_balance = await conn.fetchval(
            "SELECT balance FROM accounts WHERE owner_id = $1 AND role = 'merchant_pending' AND currency = 'CNY'",
            client.merchant_id)
    assert [r["fee_refunded"] for r in shares] == [10, 23]  # 33*300/1000 = 9.9 -> 10; the rest
    assert merchant_balance == 0
    over = await client.refund(payment["id"], 1, "r3")
    assert over.status == 402 and over.error_code == "refund_exceeds_payment"


async def test_refund_over_the_remaining_amount_is_402_and_changes_nothing(api: Api, pool: asyncpg.Pool) -> None:
    client, customer, payment = await _paid(api, 1000)
    await client.refund(payment["id"], 600, "r1")
    before = await snapshot(pool, [client.merchant_id, customer])
    over = await client.refund(payment["id"], 401, "r2")
    assert over.status == 402 and over.body["error"]["type"] == "payment_error"
    assert await snapshot(pool, [client.merchant_id, customer]) == before


async def test_duplicate_merchant_refund_no_is_409_naming_the_first_refund(api: Api) -> None:
    client, _, payment = await _paid(api, 1000)
    first = await client.refund(payment["id"], 100, "same")
    again = await client.refund(payment["id"], 100, "same")
    assert again.status == 409 and again.error_code == "duplicate_order"
    assert again.body["error"]["existing_id"] == first.body["id"]
    assert (await client.get_payment(payment["id"])).body["amount_refunded"] == 100


async def test_fifty_concurrent_refunds_never_exceed_the_payment(api: Api, pool: asyncpg.Pool) -> None:
    client, customer, payment = await _paid(api, 1000)
    results = await asyncio.gather(*(client.refund(payment["id"], 30, f"r{i}")
                                     for i in range(50)))
    ok = [r for r in results if r.status == 201]
    refused = [r for r in results if r.status != 201]
    assert len(ok) == 33  # 33 * 30 = 990 <= 1000 < 34 * 30
    assert {(r.status, r.error_code) for r in refused} == {(402, "refund_exceeds_payment")}
    assert (await client.get_payment(payment["id"])).body["amount_refunded"] == 990
    assert (await client.get_customer(customer)).body["balance"] == 990
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM refunds WHERE payment_id = $1", payment["id"]) == 33
        assert (await trial_balance(conn)).holds


async def test_refunds_of_unpaid_or_unknown_payments_are_refused(api: Api) -> None:
    client = await api.merchant()
    pending = await client.create_payment({"merchant_order_no": order_no(), "amount": 100, "currency": "CNY",
                                           "method": "channel"})
    refused = await client.refund(pending.body["id"], 10, "r1")
    assert refused.status == 402 and refused.error_code == "payment_not_refundable"
    missing = await client.refund("pay_doesnotexist", 10, "r1")
    assert missing.status == 404 and missing.error_code == "resource_missing"
    assert (await client.get_refund("rf_doesnotexist")).status == 404
