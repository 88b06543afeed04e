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
from tests.payouts.conftest import World, eventually, payout_body


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
