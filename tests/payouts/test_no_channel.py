"""A pending payout that no channel could ever take is held for a person, over HTTP against real simulators.

Waiting would keep its amount frozen for good, out of sight (not held, no give-up, not resolvable). Held as
no_channel it is listed with the other held payouts; an operator retries it once the configuration is fixed, or
fails it (nothing was sent, so its amount simply goes back). Succeed is refused: no channel can have paid it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from engine.payouts.checks import check_payout_money
from tests.payouts.conftest import CHANNEL, SECOND_CHANNEL, World, eventually, payout_body


@pytest.fixture
def world(two_channel_world: World) -> World:
    return two_channel_world  # held payouts of its own database harm no other test


def _held(p: dict[str, Any]) -> bool:
    return p.get("hold_reason") is not None


async def _resolve(world: World, payout_id: str, action: str, reason: str = "checked") -> tuple[int, Any]:
    return await world.admin("POST", f"/admin/payouts/{payout_id}/resolve", {"action": action, "reason": reason})


async def _internals(world: World, payout_id: str) -> dict[str, Any]:
    status, body = await world.admin("GET", f"/admin/payouts/{payout_id}")
    assert status == 200, body
    detail: dict[str, Any] = body
    return detail


async def _money_holds(world: World) -> None:
    async with world.pool.acquire() as conn:
        money = await check_payout_money(conn)
    assert money.holds, money


async def test_a_payout_above_every_channels_limit_is_held_and_can_be_failed_but_never_succeeded(
        world: World) -> None:
    client = await world.merchant()
    amount = 10**12 + 1  # above what any channel takes (ChannelTraits.amount_max_minor)
    await world.fund_merchant_available(client.merchant_id, amount)
    created = await client.create_payout(payout_body(amount, source="merchant"))
    assert created.status == 201, created.body
    held = await world.wait_payout(client, created.body["id"], _held)
    assert (held["status"], held["hold_reason"]) == ("pending", "no_channel"), held
    detail = await _internals(world, held["id"])
    assert (detail["internal_status"], detail["sends"], detail["next_attempt_at"]) == ("pending", 0, None), detail
    assert "amount" in detail["last_error"], detail  # why, in words
    status, listed = await world.admin("GET", f"/admin/payouts?held=true&merchant_id={client.merchant_id}")
    assert status == 200 and [p["id"] for p in listed["data"]] == [held["id"]], listed
    assert listed["data"][0]["hold_reason"] == "no_channel"

    status, body = await _resolve(world, held["id"], "succeed", "the bank paid it")
    assert status == 409 and body["error"]["code"] == "illegal_transition", body
    assert "never sent" in body["error"]["message"], body
    status, body = await _resolve(world, held["id"], "retry", "try again")  # nothing changed: held again
    assert status == 200, body
    async with world.pool.acquire() as conn:
        async def held_again() -> bool:
            return bool(await conn.fetchval("SELECT hold_reason IS NOT NULL AND next_attempt_at IS NULL"
                                            " FROM payouts WHERE id = $1", held["id"]))

        await eventually(held_again)
    assert await world.balance(client.merchant_id, "merchant_frozen") == amount
    assert await world.entries(held["id"]) == ["PAYOUT_FREEZE"]

    status, body = await _resolve(world, held["id"], "fail", "no channel takes this amount")
    assert status == 200, body
    payout = body["payout"]
    assert (payout["status"], payout["failure_code"], payout["hold_reason"]) == \
        ("failed", "failed_by_operator", None), payout
    assert "nothing was sent" in payout["failure_message"], payout
    assert [t["event"] for t in body["transitions"]] == ["resolve_retry:no_channel", "resolve_fail:no_channel"]
    assert await world.balance(client.merchant_id, "merchant_frozen") == 0
    assert await world.balance(client.merchant_id, "merchant_available") == amount
    assert await world.entries(held["id"]) == ["PAYOUT_FREEZE", "PAYOUT_UNFREEZE"]
    for second in (False, True):
        assert (await world.sim_payout(held["txn_no"], second=second))[0] == 404  # never sent anywhere
    await _money_holds(world)


async def test_a_payout_whose_merchant_may_no_longer_use_any_channel_is_held_and_paid_after_the_fix(
        world: World) -> None:
    client = await world.merchant(allowed_channels=[CHANNEL])
    customer = await world.funded_customer(client, 2_000)
    probe = "no_channel_probe_" + client.merchant_id.replace("-", "_")
    async with world.pool.acquire() as conn:
        # Keeps this merchant's payouts pending (their step to 'sending' fails) until the configuration changed.
        await conn.execute(f"ALTER TABLE payouts ADD CONSTRAINT {probe}"
                           f" CHECK (merchant_id <> '{client.merchant_id}' OR status <> 'sending') NOT VALID")
    try:
        created = await client.create_payout(payout_body(800, customer_id=customer))  # no channel named
        assert created.status == 201 and created.body["channel"] == CHANNEL, created.body
        async with world.pool.acquire() as conn:
            # The merchant's only channel was retired from the configuration after the payout was made.
            await conn.execute("UPDATE merchants SET allowed_channels = ARRAY['pobank-retired'] WHERE id = $1",
                               client.merchant_id)
        held = await world.wait_payout(client, created.body["id"], _held)
    finally:
        async with world.pool.acquire() as conn:
            await conn.execute(f"ALTER TABLE payouts DROP CONSTRAINT {probe}")
    assert (held["status"], held["hold_reason"]) == ("pending", "no_channel"), held
    await asyncio.sleep(0.3)  # held: no worker takes it, nothing is sent
    assert (await _internals(world, held["id"]))["sends"] == 0
    status, body = await _resolve(world, held["id"], "succeed", "looks fine")
    assert status == 409 and body["error"]["code"] == "illegal_transition", body

    status, body = await world.admin("PATCH", f"/admin/merchants/{client.merchant_id}",
                                     {"allowed_channels": [SECOND_CHANNEL]})
    assert status == 200, body
    status, body = await _resolve(world, held["id"], "retry", "merchant may use pobank-b now")
    assert status == 200, body
    done = await world.wait_payout(client, held["id"])
    assert (done["status"], done["channel"], done["hold_reason"]) == ("succeeded", SECOND_CHANNEL, None), done
    assert (await world.sim_payout(done["txn_no"], second=True))[0] == 200
    assert await world.entries(done["id"]) == ["PAYOUT_FREEZE", "PAYOUT_SETTLE"]
    assert await world.balance(customer, "customer_wallet") == 1_200
    await _money_holds(world)
