"""Outcomes the worker cannot see are asked at the channel, never guessed.

- The simulator accepts the payout, then its answer hangs past our call timeout (or the connection is cut):
  the payout stays "sending", is queried, and settles with one channel payout and one send.
- The channel fails the create call before accepting (5xx): the query finds nothing; once the safe delay has
  passed the same out_payout_no is sent again and pays once.
"""

from __future__ import annotations

import asyncio

import pytest

from engine.payouts.checks import frozen_mismatches
from tests.payouts.conftest import CHANNEL, World, eventually, payout_body


async def _sends(world: World, payout_id: str) -> int:
    async with world.pool.acquire() as conn:
        return int(await conn.fetchval("SELECT sends FROM payouts WHERE id = $1", payout_id))


@pytest.mark.parametrize("fault", ["payout_timeout_rate", "payout_drop_rate"])
async def test_answer_lost_after_acceptance_is_resolved_by_query(world: World, fault: str) -> None:
    client = await world.merchant()
    customer = await world.funded_customer(client, 9_000)
    await world.set_faults(**{fault: 1.0})
    try:
        created = await client.create_payout(payout_body(4_000, customer_id=customer))
        assert created.status == 201, created.body

        async def sent() -> bool:
            return await _sends(world, created.body["id"]) >= 1

        await eventually(sent)
        done = await world.wait_payout(client, created.body["id"])
    finally:
        await world.set_faults()
    assert done["status"] == "succeeded", done
    assert await _sends(world, done["id"]) == 1  # resolved by asking, not by sending again
    status, sim = await world.sim_payout(done["txn_no"])
    assert status == 200 and sim["state"] == "SUCCESS" and sim["payout_id"] == done["channel_payout_no"]
    assert await world.balance(customer, "customer_wallet") == 5_000
    assert await world.entries(done["id"]) == ["PAYOUT_FREEZE", "PAYOUT_SETTLE"]


async def test_send_that_never_arrived_is_sent_again_after_the_safe_delay(world: World) -> None:
    client = await world.merchant()
    customer = await world.funded_customer(client, 3_000)
    await world.set_faults(error_rate=1.0)  # every call answers a system error before doing anything
    try:
        created = await client.create_payout(payout_body(1_000, customer_id=customer))
        assert created.status == 201, created.body

        async def sent() -> bool:
            return await _sends(world, created.body["id"]) >= 1

        await eventually(sent)
        await asyncio.sleep(0.2)
    finally:
        await world.set_faults()
    status, _ = await world.sim_payout(created.body["txn_no"])
    assert status == 404  # it really never arrived
    done = await world.wait_payout(client, created.body["id"])
    assert done["status"] == "succeeded", done
    assert await _sends(world, done["id"]) == 2
    assert await world.entries(done["id"]) == ["PAYOUT_FREEZE", "PAYOUT_SETTLE"]
    async with world.pool.acquire() as conn:
        assert not await frozen_mismatches(conn)


async def test_payout_processing_at_the_channel_is_polled_until_final(world: World) -> None:
    client = await world.merchant()
    customer = await world.funded_customer(client, 3_000)
    await world.set_faults(payout_settle_ms=600)
    try:
        created = await client.create_payout(payout_body(1_500, customer_id=customer))
        processing = await world.wait_payout(client, created.body["id"], lambda p: p["status"] == "processing")
        assert processing["status"] == "processing"
        done = await world.wait_payout(client, created.body["id"])
    finally:
        await world.set_faults()
    assert done["status"] == "succeeded" and await _sends(world, done["id"]) == 1


async def test_system_error_answer_after_acceptance_is_queried_not_taken_as_failure(world: World) -> None:
    client = await world.merchant()
    customer = await world.funded_customer(client, 3_000)
    await world.set_faults(payout_system_error_rate=1.0)  # accepted, then answered ACQ.SYSTEM_ERROR
    try:
        created = await client.create_payout(payout_body(1_200, customer_id=customer))
        assert created.status == 201, created.body
        done = await world.wait_payout(client, created.body["id"])
    finally:
        await world.set_faults()
    assert done["status"] == "succeeded", done
    assert await _sends(world, done["id"]) == 1  # resolved by asking
    status, sim = await world.sim_payout(done["txn_no"])
    assert status == 200 and sim["state"] == "SUCCESS" and sim["payout_id"] == done["channel_payout_no"]
    assert await world.balance(customer, "customer_wallet") == 1_800
    assert await world.balance(customer, "customer_frozen") == 0
    assert await world.entries(done["id"]) == ["PAYOUT_FREEZE", "PAYOUT_SETTLE"]


async def test_channel_reporting_another_amount_keeps_the_payout_open_for_a_person(two_channel_world: World) -> None:
    world = two_channel_world  # a payout of its own database: it stays open for good
    client = await world.merchant()
    customer = await world.funded_customer(client, 3_000)
    await world.set_faults(payout_report_skew_minor=1)  # the channel says 1_001 for our 1_000
    try:
        created = await client.create_payout(payout_body(1_000, customer_id=customer, channel=CHANNEL))
        assert created.status == 201, created.body
        held = await world.wait_payout(client, created.body["id"], lambda p: p.get("hold_reason") is not None)
        await asyncio.sleep(0.5)  # the channel settles at once; nothing may book it meanwhile
    finally:
        await world.set_faults()
    assert held["hold_reason"] == "amount_mismatch" and held["status"] == "processing", held
    status, sim = await world.sim_payout(held["txn_no"])
    assert status == 200 and sim["state"] == "SUCCESS"  # the channel paid: only a person may say what
    await asyncio.sleep(0.5)
    still = (await client.get_payout(held["id"])).body
    assert (still["status"], still["hold_reason"], still["finished_at"]) == ("processing", "amount_mismatch", None)
    assert await world.entries(held["id"]) == ["PAYOUT_FREEZE"]  # no amount was booked, ours or theirs
    assert await world.balance(customer, "customer_frozen") == 1_000
    assert await world.balance(customer, "customer_wallet") == 2_000
    async with world.pool.acquire() as conn:
        row = await conn.fetchrow("SELECT next_attempt_at, last_error FROM payouts WHERE id = $1", held["id"])
        assert not await frozen_mismatches(conn)
    assert row["next_attempt_at"] is None and "1001" in row["last_error"], dict(row)
    async with world.http.get(f"{world.url}/metrics") as r:
        metrics = await r.text()
    assert 'payengine_payouts_held_total{reason="amount_mismatch"}' in metrics
