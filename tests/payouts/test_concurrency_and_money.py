"""Concurrent withdrawals never freeze more than the balance; after a mixed run the money checks hold."""

from __future__ import annotations

import asyncio
import random

from engine.payouts.checks import check_payout_money, frozen_mismatches
from tests.payouts.conftest import World, payout_body


async def test_100_concurrent_withdrawals_freeze_no_more_than_the_balance(world: World) -> None:
    client = await world.merchant()
    customer = await world.funded_customer(client, 5_000)
    await world.set_faults(payout_settle_ms=300)  # keep them open a while: frozen is checked while they are
    try:
        results = await asyncio.gather(*(client.create_payout(payout_body(100, customer_id=customer))
                                         for _ in range(100)))
        statuses = sorted(r.status for r in results)
        assert statuses == [201] * 50 + [402] * 50, statuses
        assert all(r.body["error"]["code"] == "insufficient_funds" for r in results if r.status == 402)
        assert await world.balance(customer, "customer_wallet") == 0
        assert await world.balance(customer, "customer_frozen") <= 5_000
        async with world.pool.acquire() as conn:
            assert not await frozen_mismatches(conn)
        done = await asyncio.gather(*(world.wait_payout(client, r.body["id"]) for r in results if r.status == 201))
    finally:
        await world.set_faults()
    assert {p["status"] for p in done} == {"succeeded"}
    assert await world.balance(customer, "customer_frozen") == 0
    async with world.pool.acquire() as conn:
        settled = await conn.fetchval(
            "SELECT count(*) FROM journal_entries e JOIN payouts p ON p.id = e.ref"
            " WHERE p.customer_id = $1 AND e.txn_code = 'PAYOUT_SETTLE'", customer)
    assert settled == 50


async def test_money_checks_hold_during_and_after_a_mixed_run(world: World) -> None:
    """Successes, channel failures, lost answers and refusals at once; frozen = Σ open payouts throughout."""
    rng = random.Random(5)
    client = await world.merchant()
    customers = [await world.funded_customer(client, 20_000) for _ in range(4)]
    await world.fund_merchant_available(client.merchant_id, 30_000)
    await world.set_faults(payout_timeout_rate=0.2, payout_fail_rate=0.2, payout_settle_ms=100)
    checks: list[bool] = []

    async def watch(stop: asyncio.Event) -> None:
        while not stop.is_set():
            async with world.pool.acquire() as conn:
                checks.append(not await frozen_mismatches(conn))
            await asyncio.sleep(0.05)

    def body() -> dict[str, object]:
        if rng.random() < 0.2:
            return payout_body(rng.randint(100, 4_000), source="merchant",
                               destination={"kind": "bank_account", "number": "62220212345", "holder_name": "Shop"})
        number = "6222021000000" if rng.random() < 0.1 else "6222029876543"  # ...000000: ACCOUNT_INVALID
        return payout_body(rng.randint(100, 9_000), customer_id=rng.choice(customers),
                           destination={"kind": "bank_account", "number": number, "holder_name": "Li Lei"})

    stop = asyncio.Event()
    watcher = asyncio.create_task(watch(stop))
    try:
        results = await asyncio.gather(*(client.create_payout(body()) for _ in range(60)))
        assert {r.status for r in results} <= {201, 402}, [r.body for r in results if r.status not in (201, 402)]
        created = [r.body["id"] for r in results if r.status == 201]
        done = await asyncio.gather(*(world.wait_payout(client, i, timeout_s=20) for i in created))
    finally:
        await world.set_faults()
        stop.set()
        await watcher
    assert checks and all(checks)
    assert {p["status"] for p in done} <= {"succeeded", "failed"} and len(done) == len(created)
    async with world.pool.acquire() as conn:
        money = await check_payout_money(conn)
        frozen_total = await conn.fetchval(
            "SELECT coalesce(sum(balance), 0) FROM accounts WHERE owner_id = ANY($1::text[])"
            " AND role IN ('customer_frozen', 'merchant_frozen')", [*customers, client.merchant_id])
        paid = await conn.fetchval("SELECT coalesce(sum(amount), 0) FROM payouts WHERE merchant_id = $1"
                                   " AND status = 'succeeded'", client.merchant_id)
    assert money.holds, money
    assert frozen_total == 0
    left = sum([await world.balance(c, "customer_wallet") for c in customers])
    left += await world.balance(client.merchant_id, "merchant_available")
    assert left + paid == 4 * 20_000 + 30_000  # every minor unit is either still there or paid out once
