"""Limits and risk before the freeze: over a payout limit is 402 limit_exceeded with nothing frozen; a freeze
that fails (insufficient funds) gives the counted usage back; the gate's record is kept with the payout."""

from __future__ import annotations

import json

from tests.payouts.conftest import World, payout_body


async def test_payout_limit_refuses_before_freezing_and_failed_freezes_count_nothing(world: World) -> None:
    client = await world.merchant()
    status, body = await world.admin("PUT", f"/admin/merchants/{client.merchant_id}/limits", {"limits": [
        {"scope": "customer", "window": "daily", "method": "payout", "amount_max": 1_500}]})
    assert status == 200, body
    customer = await world.funded_customer(client, 1_200)
    first = await client.create_payout(payout_body(1_000, customer_id=customer))
    assert first.status == 201, first.body
    short = await client.create_payout(payout_body(400, customer_id=customer))  # 200 left: no freeze
    assert short.status == 402 and short.body["error"]["code"] == "insufficient_funds", short.body
    over = await client.create_payout(payout_body(600, customer_id=customer))
    assert over.status == 402 and over.body["error"]["code"] == "limit_exceeded", over.body
    # 1_000 + 200 fits only because the refused 400 was given back.
    last = await client.create_payout(payout_body(200, customer_id=customer))
    assert last.status == 201, last.body
    assert await world.balance(customer, "customer_wallet") == 0
    async with world.pool.acquire() as conn:
        risk = await conn.fetchval("SELECT risk::text FROM payouts WHERE id = $1", first.body["id"])
    assert risk is not None and "admission" in json.loads(risk)
    for payout in (first.body, last.body):
        await world.wait_payout(client, payout["id"])
