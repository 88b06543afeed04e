"""Limits and risk before the freeze: over a payout limit is 402 limit_exceeded and a card on the risk blocklist
402 risk_declined, with nothing frozen; a freeze that fails (insufficient funds) gives the counted usage back;
the gate's record is kept with the payout."""

from __future__ import annotations

import asyncio
import json

import pytest

from engine.controls.usage_release import release_owed
from engine.services import SERVICES
from tests.payouts.conftest import GOOD_CARD, World, payout_body


async def test_payout_limit_refuses_before_freezing_and_failed_freezes_count_nothing(world: World) -> None:
    client = await world.merchant()
    await world.limit_customer_payouts(client.merchant_id, 1_500)
    customer = await world.funded_customer(client, 1_200)
    first = await client.create_payout(payout_body(1_000, customer_id=customer))
    assert first.status == 201, first.body
    short = await client.create_payout(payout_body(400, customer_id=customer))  # 200 left: no freeze
    assert short.status == 402 and short.body["error"]["code"] == "insufficient_funds", short.body
    over = await client.create_payout(payout_body(600, customer_id=customer))
    assert over.status == 402 and over.body["error"]["code"] == "limit_exceeded", over.body
    # The first may be paid out already on a busy machine: once it is, the refused ones froze nothing.
    assert (await world.wait_payout(client, first.body["id"]))["status"] == "succeeded"
    assert await world.balance(customer, "customer_frozen") == 0
    assert await world.balance(customer, "customer_wallet") == 200
    async with world.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM payouts WHERE merchant_id = $1", client.merchant_id) == 1
    # 1_000 + 200 fits only because the refused 400 was given back.
    last = await client.create_payout(payout_body(200, customer_id=customer))
    assert last.status == 201, last.body
    assert await world.balance(customer, "customer_wallet") == 0
    async with world.pool.acquire() as conn:
        risk = await conn.fetchval("SELECT risk::text FROM payouts WHERE id = $1", first.body["id"])
    assert risk is not None and "admission" in json.loads(risk)
    await world.wait_payout(client, last.body["id"])


async def test_a_payout_the_channel_failed_no_longer_counts_against_the_limit(world: World) -> None:
    client = await world.merchant()
    await world.limit_customer_payouts(client.merchant_id, 1_500)
    customer = await world.funded_customer(client, 5_000)
    doomed = await client.create_payout(payout_body(
        1_000, customer_id=customer,
        destination={"kind": "bank_account", "number": "6222021000000", "holder_name": "Li Lei"}))
    assert doomed.status == 201, doomed.body
    failed = await world.wait_payout(client, doomed.body["id"])
    assert failed["status"] == "failed"
    # 1_000 more fits the 1_500 daily limit only because the failed 1_000 was given back.
    again = None
    for _ in range(40):  # the usage is given back just after the unfreeze commits
        again = await client.create_payout(payout_body(1_000, customer_id=customer))
        if again.status == 201:
            break
        assert again.body["error"]["code"] == "limit_exceeded", again.body
        await asyncio.sleep(0.05)
    assert again is not None and again.status == 201, again.body
    await world.wait_payout(client, again.body["id"])


async def test_a_failed_payout_whose_release_fails_stays_owed_until_the_release_loop_gives_it_back(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    client = await world.merchant()
    await world.limit_customer_payouts(client.merchant_id, 1_500)
    customer = await world.funded_customer(client, 5_000)
    tried: asyncio.Queue[str] = asyncio.Queue()

    async def broken(admission_id: str, *, by_reset: bool = False) -> bool:
        tried.put_nowait(admission_id)
        raise ConnectionResetError(f"lost Redis while releasing {admission_id}")

    monkeypatch.setattr(world.app[SERVICES].gate, "release_admission", broken)
    doomed = await client.create_payout(payout_body(
        1_000, customer_id=customer,
        destination={"kind": "bank_account", "number": "6222021000000", "holder_name": "Li Lei"}))
    assert doomed.status == 201, doomed.body
    assert (await world.wait_payout(client, doomed.body["id"]))["status"] == "failed"
    admission = await asyncio.wait_for(tried.get(), 10)  # the worker tried to give it back, and failed
    monkeypatch.undo()
    async with world.pool.acquire() as conn:
        risk = json.loads(await conn.fetchval("SELECT risk::text FROM payouts WHERE id = $1", doomed.body["id"]))
        owed = await conn.fetchval("SELECT admission_id FROM usage_releases WHERE movement_id = $1",
                                   doomed.body["id"])
    assert admission == risk["admission"] and owed == admission  # recorded with the unfreeze, still owed
    over = await client.create_payout(payout_body(1_000, customer_id=customer))
    assert over.status == 402 and over.body["error"]["code"] == "limit_exceeded", over.body  # still counted

    await release_owed(world.pool, world.app[SERVICES].release_usage, grace_s=0, batch_max=100)
    async with world.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM usage_releases WHERE movement_id = $1",
                                   doomed.body["id"]) == 0
    again = await client.create_payout(payout_body(1_000, customer_id=customer))
    assert again.status == 201, again.body
    await release_owed(world.pool, world.app[SERVICES].release_usage, grace_s=0, batch_max=100)
    more = await client.create_payout(payout_body(600, customer_id=customer))  # 1_600 > 1_500: given back once
    assert more.status == 402 and more.body["error"]["code"] == "limit_exceeded", more.body
    await world.wait_payout(client, again.body["id"])


async def test_payout_to_a_blocklisted_card_is_402_risk_declined_and_freezes_nothing(world: World) -> None:
    client = await world.merchant()
    customer = await world.funded_customer(client, 1_000)
    status, rule = await world.admin("POST", "/admin/risk/rules", {
        "name": "blocked cards", "kind": "blocklist", "action": "deny", "merchant_id": client.merchant_id,
        "params": {"list": "instrument"}})
    assert status == 201, rule
    entry = {"list": "instrument", "value": GOOD_CARD}
    status, added = await world.admin("POST", "/admin/risk/blocklist", {**entry, "reason": "fraud"})
    assert status == 201 and GOOD_CARD not in str(added), added  # only the keyed hash is kept
    try:
        # Typed with spaces, as a person would: the same card.
        spaced = " ".join(GOOD_CARD[i:i + 4] for i in range(0, len(GOOD_CARD), 4))
        for number in (GOOD_CARD, spaced):
            denied = await client.create_payout(payout_body(
                500, customer_id=customer, destination={"kind": "bank_card", "number": number, "holder_name": "Li"}))
            assert denied.status == 402 and denied.body["error"]["code"] == "risk_declined", denied.body
            assert denied.body["error"]["details"]["rule"] == rule["id"]
        assert await world.balance(customer, "customer_wallet") == 1_000
        assert await world.balance(customer, "customer_frozen") == 0
        async with world.pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM payouts WHERE merchant_id = $1",
                                       client.merchant_id) == 0
    finally:
        status, removed = await world.admin("DELETE", "/admin/risk/blocklist", entry)
        assert status == 200, removed
    allowed = await client.create_payout(payout_body(500, customer_id=customer))
    assert allowed.status == 201, allowed.body
    await world.wait_payout(client, allowed.body["id"])
