"""Every money movement at once, through HTTP: wallet payments, refunds, customer-to-customer transfers,
cash-backs, customer and merchant payouts (the bank failing and losing answers now and then), then the
money checks: trial balance, balances = Σ legs with a consistent running balance, frozen = Σ open payouts,
no wallet ever below zero, every success booked exactly once, and every minor unit accounted for."""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any

from accounts.store import find_account, trial_balance
from engine.client import ApiResult, PayEngineClient
from engine.payouts.checks import check_payout_money
from tests.buffer.world import check_ledger
from tests.payouts.conftest import World, payout_body

CUSTOMERS = 6
FUNDED = 20_000
MERCHANT_FUNDED = 30_000


def ref(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


async def test_mixed_run_of_every_movement_keeps_every_money_check(world: World) -> None:
    rng = random.Random(10)
    client = await world.merchant()
    customers = [await world.funded_customer(client, FUNDED) for _ in range(CUSTOMERS)]
    await world.fund_merchant_available(client.merchant_id, MERCHANT_FUNDED)
    paid = [await _wallet_payment(client, rng.choice(customers), rng.randint(500, 3_000)) for _ in range(12)]
    paid_ids = [p.body["id"] for p in paid if p.status == 201]
    assert len(paid_ids) == 12

    def operation() -> Any:
        roll = rng.random()
        payer, payee = rng.sample(customers, 2)
        if roll < 0.25:
            return _wallet_payment(client, payer, rng.randint(100, 4_000))
        if roll < 0.40:
            return client.refund(rng.choice(paid_ids), rng.randint(50, 800), ref("rf"))
        if roll < 0.65:
            return client.create_transfer({"transfer_no": ref("tr"), "source": "customer", "from_customer_id": payer,
                                           "to_customer_id": payee, "amount": rng.randint(100, 5_000),
                                           "currency": "CNY"})
        if roll < 0.75:
            return client.create_transfer({"transfer_no": ref("cb"), "source": "merchant", "to_customer_id": payee,
                                           "amount": rng.randint(100, 2_000), "currency": "CNY"})
        if roll < 0.92:
            return client.create_payout(payout_body(rng.randint(100, 6_000), customer_id=payer))
        return client.create_payout(payout_body(rng.randint(100, 4_000), source="merchant", destination={
            "kind": "bank_account", "number": "62220212345", "holder_name": "Shop"}))

    await world.set_faults(payout_timeout_rate=0.15, payout_fail_rate=0.15, payout_settle_ms=50)
    try:
        results: list[ApiResult] = await asyncio.gather(*(operation() for _ in range(160)))
        unexpected = [r.body for r in results if r.status not in (201, 402)]
        assert not unexpected, unexpected  # a refusal is only ever for money (insufficient, refund exceeds)
        payouts = [r.body["id"] for r in results if r.status == 201 and r.body["id"].startswith("po_")]
        done = await asyncio.gather(*(world.wait_payout(client, p, timeout_s=30) for p in payouts))
    finally:
        await world.set_faults()
    assert {p["status"] for p in done} == {"succeeded", "failed"}  # the bank both paid and refused
    kinds = {r.body["id"].split("_")[0] for r in results if r.status == 201}
    assert kinds == {"pay", "rf", "tr", "po"}, kinds  # every kind of movement succeeded at least once
    assert sum(r.status == 402 for r in results) > 0 and sum(r.status == 201 for r in results) > 80

    async with world.pool.acquire() as conn:
        tb = await trial_balance(conn)
        assert tb.holds_drained, tb
        money = await check_payout_money(conn)
        assert money.holds, money
        wallets = [(await find_account(conn, c, "customer_wallet", "CNY")) for c in customers]
        available = await find_account(conn, client.merchant_id, "merchant_available", "CNY")
        assert available is not None and all(w is not None for w in wallets)
        mine = [w.id for w in wallets if w is not None] + [available.id]
        await check_ledger(conn, mine, floors={a: 0 for a in mine})  # no running balance ever below zero
        # Each success is booked once: one entry of its code per movement, none for a refusal.
        codes = {r["ref"]: sorted(r["codes"]) for r in await conn.fetch(
            "SELECT ref, array_agg(txn_code) AS codes FROM journal_entries WHERE ref = ANY($1::text[]) GROUP BY ref",
            [r.body["id"] for r in results if r.status == 201])}
        payment_of_refund = {r["id"]: r["payment_id"] for r in await conn.fetch(
            "SELECT id, payment_id FROM refunds WHERE payment_id = ANY($1::text[])", paid_ids)}
    for result in (r for r in results if r.status == 201):
        object_id = result.body["id"]
        if object_id.startswith("po_"):
            status = next(p["status"] for p in done if p["id"] == object_id)
            closing = "PAYOUT_SETTLE" if status == "succeeded" else "PAYOUT_UNFREEZE"
            assert codes.get(object_id) == sorted(["PAYOUT_FREEZE", closing]), (object_id, codes.get(object_id))
        elif object_id.startswith("rf_"):
            assert object_id in payment_of_refund
            assert len(codes.get(object_id, [])) == 1, (object_id, codes.get(object_id))
        else:
            assert len(codes.get(object_id, [])) == 1, (object_id, codes.get(object_id))

    # Conservation inside the merchant: what the customers and the merchant's available balance hold, plus what
    # payouts took out, equals what was put in plus what wallet payments net of refunds moved to pending.
    wallet_total = sum(w.balance_minor for w in wallets if w is not None)
    paid_out = sum(p["amount"] for p in done if p["status"] == "succeeded")
    async with world.pool.acquire() as conn:
        pending = await find_account(conn, client.merchant_id, "merchant_pending", "CNY")
        assert pending is not None
        available_now = (await find_account(conn, client.merchant_id, "merchant_available", "CNY"))
        assert available_now is not None
    assert wallet_total + available_now.balance_minor + pending.balance_minor + paid_out == (
        CUSTOMERS * FUNDED + MERCHANT_FUNDED)


async def _wallet_payment(client: PayEngineClient, customer: str, amount: int) -> ApiResult:
    return await client.create_payment({"merchant_order_no": ref("ord"), "amount": amount, "currency": "CNY",
                                        "method": "wallet", "customer_id": customer})
