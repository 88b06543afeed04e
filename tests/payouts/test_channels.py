"""Which channel a payout goes to, through HTTP against two real bank simulators (CHANNEL, SECOND_CHANNEL).

- A channel outside the merchant's allowed channels is refused as for a payment (403), with nothing frozen.
- A channel the merchant named is never changed: while its breaker is open the payout waits.
- With no channel named, only channels that can pay out and that the merchant may use are candidates; the
  payout may move to another of them while nothing was sent, never after a send that may have arrived.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from engine.client import PayEngineClient
from tests.payouts.conftest import CHANNEL, SECOND_CHANNEL, World, eventually, payout_body


async def _count_payouts(world: World, merchant_id: str) -> int:
    async with world.pool.acquire() as conn:
        return int(await conn.fetchval("SELECT count(*) FROM payouts WHERE merchant_id = $1", merchant_id))


async def _sends(world: World, payout_id: str) -> int:
    async with world.pool.acquire() as conn:
        return int(await conn.fetchval("SELECT sends FROM payouts WHERE id = $1", payout_id))


async def _open_breaker(world: World, client: PayEngineClient, customer: str) -> list[dict[str, Any]]:
    """Fail every call to CHANNEL's simulator until its breaker opens; returns the payouts that did it (they
    never reached the simulator, and are sent again and paid there once the faults are off)."""
    await world.set_faults(error_rate=1.0)
    openers = []
    for _ in range(2):
        opener = await client.create_payout(payout_body(100, customer_id=customer, channel=CHANNEL))
        assert opener.status == 201, opener.body
        openers.append(opener.body)

    async def opened() -> bool:
        return await world.breaker(CHANNEL) == "open"

    await eventually(opened)
    return openers


async def test_payout_on_a_channel_the_merchant_may_not_use_is_403_and_freezes_nothing(
        two_channel_world: World) -> None:
    world = two_channel_world
    client = await world.merchant(allowed_channels=[CHANNEL])
    customer = await world.funded_customer(client, 1_000)
    refused = await client.create_payout(payout_body(500, customer_id=customer, channel=SECOND_CHANNEL))
    assert refused.status == 403, refused.body
    error = refused.body["error"]
    assert (error["code"], error["param"]) == ("payment_method_not_allowed", "channel"), error
    assert await world.balance(customer, "customer_wallet") == 1_000
    assert await world.balance(customer, "customer_frozen") == 0
    assert await _count_payouts(world, client.merchant_id) == 0
    allowed = await client.create_payout(payout_body(500, customer_id=customer, channel=CHANNEL))
    assert allowed.status == 201 and allowed.body["channel"] == CHANNEL, allowed.body
    await world.wait_payout(client, allowed.body["id"])


async def test_payout_naming_no_channel_goes_only_to_a_channel_the_merchant_may_use(two_channel_world: World) -> None:
    world = two_channel_world
    client = await world.merchant(allowed_channels=[SECOND_CHANNEL])  # not the default channel
    customer = await world.funded_customer(client, 1_000)
    created = await client.create_payout(payout_body(400, customer_id=customer))
    assert created.status == 201 and created.body["channel"] == SECOND_CHANNEL, created.body
    done = await world.wait_payout(client, created.body["id"])
    assert done["status"] == "succeeded" and done["channel"] == SECOND_CHANNEL, done
    status, sim = await world.sim_payout(done["txn_no"], second=True)
    assert status == 200 and sim["state"] == "SUCCESS", sim
    assert (await world.sim_payout(done["txn_no"]))[0] == 404


@pytest.mark.parametrize(("named", "allowed", "paid_at"), [
    (True, None, CHANNEL),  # named: never changed, whatever else the merchant may use
    (False, [CHANNEL], CHANNEL),  # not named, but the only channel the merchant may use
    (False, None, SECOND_CHANNEL),  # not named, nothing sent yet: may move to a healthy channel
])
async def test_pending_payout_moves_only_when_unnamed_and_to_a_channel_the_merchant_may_use(
        two_channel_world: World, named: bool, allowed: list[str] | None, paid_at: str) -> None:
    world = two_channel_world
    client = await world.merchant(allowed_channels=allowed)
    customer = await world.funded_customer(client, 5_000)
    try:
        openers = await _open_breaker(world, client, customer)
        extra = {"channel": CHANNEL} if named else {}
        created = await client.create_payout(payout_body(1_000, customer_id=customer, **extra))
        assert created.status == 201 and created.body["channel"] == CHANNEL, created.body
        if paid_at == CHANNEL:
            await asyncio.sleep(0.3)  # time enough to have moved it (a worker step comes every 20 ms)
            waiting = (await client.get_payout(created.body["id"])).body
            assert waiting["channel"] == CHANNEL and waiting["status"] != "succeeded", waiting
            assert (await world.sim_payout(waiting["txn_no"], second=True))[0] == 404
    finally:
        await world.set_faults()
    done = await world.wait_payout(client, created.body["id"])
    assert done["status"] == "succeeded" and done["channel"] == paid_at, done
    assert (await world.sim_payout(done["txn_no"], second=paid_at == SECOND_CHANNEL))[0] == 200
    assert (await world.sim_payout(done["txn_no"], second=paid_at == CHANNEL))[0] == 404
    for opener in openers:
        assert (await world.wait_payout(client, opener["id"]))["channel"] == CHANNEL


async def test_payout_sent_once_stays_on_its_channel_though_another_is_healthy(two_channel_world: World) -> None:
    world = two_channel_world
    client = await world.merchant()
    customer = await world.funded_customer(client, 3_000)
    # Both channels answer every call with a system error: the first send goes to either and never arrives.
    await world.set_faults(error_rate=1.0)
    await world.set_faults(second=True, error_rate=1.0)
    try:
        created = await client.create_payout(payout_body(1_000, customer_id=customer))
        assert created.status == 201, created.body

        async def sent() -> bool:
            return await _sends(world, created.body["id"]) >= 1

        await eventually(sent)
        async with world.pool.acquire() as conn:
            sent_to = await conn.fetchval("SELECT channel FROM payouts WHERE id = $1", created.body["id"])
        other = SECOND_CHANNEL if sent_to == CHANNEL else CHANNEL
        await world.set_faults(second=other == SECOND_CHANNEL)  # the other channel is healthy again

        async def opened() -> bool:  # the payout's own queries keep failing until its channel's breaker opens
            return await world.breaker(sent_to) == "open"

        await eventually(opened)
    finally:
        await world.set_faults()
        await world.set_faults(second=True)
    done = await world.wait_payout(client, created.body["id"])
    assert done["status"] == "succeeded" and done["channel"] == sent_to, done
    assert await _sends(world, done["id"]) == 2  # the same out_payout_no again, at the same channel
    assert (await world.sim_payout(done["txn_no"], second=other == SECOND_CHANNEL))[0] == 404
