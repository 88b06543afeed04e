"""Refused payouts answer in the API error shape and freeze nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.payouts.conftest import GOOD_CARD, World, payout_body


async def _refused(world: World, body: dict[str, Any], status: int, code: str, param: str | None = None) -> None:
    client = await world.merchant()
    customer = await world.funded_customer(client, 1_000)
    if body.get("source", "customer") == "customer" and "customer_id" not in body:
        body = {**body, "customer_id": customer}
    got = await client.create_payout(body)
    assert got.status == status, got.body
    error = got.body["error"]
    assert error["code"] == code and error["message"], error
    if param is not None:
        assert error["param"] == param, error
    assert await world.balance(customer, "customer_wallet") == 1_000
    assert await world.balance(customer, "customer_frozen") == 0
    async with world.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM payouts WHERE merchant_id = $1", client.merchant_id) == 0


def _dest(kind: str, number: str, holder: str = "Li Lei") -> dict[str, str]:
    return {"kind": kind, "number": number, "holder_name": holder}


@pytest.mark.parametrize(("destination", "param"), [
    (_dest("bank_card", "4111111111111112"), "destination.number"),  # Luhn check digit wrong
    (_dest("bank_card", "411111111111"), "destination.number"),  # 12 digits: too short for a card
    (_dest("bank_card", "4111-1111-abcd-1111"), "destination.number"),
    (_dest("bank_account", "12345"), "destination.number"),  # too short for an account
    (_dest("bank_account", "1" * 35), "destination.number"),
    (_dest("bank_card", GOOD_CARD, "   "), "destination.holder_name"),
    (_dest("iban", "DE89370400440532013000"), "destination.kind"),
])
async def test_unusable_destination_is_422_and_freezes_nothing(world: World, destination: dict[str, str],
                                                               param: str) -> None:
    await _refused(world, payout_body(500, destination=destination), 422, "invalid_destination", param)


async def test_unknown_customer_is_404(world: World) -> None:
    await _refused(world, payout_body(500, customer_id="cus_doesnotexist"), 404, "resource_missing")


async def test_more_than_the_balance_is_402(world: World) -> None:
    await _refused(world, payout_body(1_001), 402, "insufficient_funds")


@pytest.mark.parametrize("amount", [0, -5])
async def test_amount_not_positive_is_400(world: World, amount: int) -> None:
    await _refused(world, payout_body(amount), 400, "parameter_invalid", "amount")


async def test_currency_other_than_the_wallet_is_400(world: World) -> None:
    await _refused(world, payout_body(500, currency="USD"), 400, "currency_mismatch", "currency")


async def test_customer_payout_needs_a_customer(world: World) -> None:
    client = await world.merchant()
    got = await client.create_payout(payout_body(500))
    assert got.status == 400 and got.body["error"]["param"] == "customer_id", got.body


async def test_merchant_without_available_balance_is_402(world: World) -> None:
    client = await world.merchant()
    got = await client.create_payout(payout_body(500, source="merchant"))
    assert got.status == 402 and got.body["error"]["code"] == "insufficient_funds", got.body


async def test_unknown_channel_and_unknown_field_are_400(world: World) -> None:
    await _refused(world, payout_body(500, channel="nosuchbank"), 400, "parameter_invalid", "channel")
    await _refused(world, payout_body(500, surprise=1), 400, "unknown_field", "surprise")


async def test_payout_of_another_merchant_is_404(world: World) -> None:
    owner = await world.merchant()
    customer = await world.funded_customer(owner, 1_000)
    created = await owner.create_payout(payout_body(100, customer_id=customer))
    assert created.status == 201, created.body
    stranger = await world.merchant()
    got = await stranger.get_payout(created.body["id"])
    assert got.status == 404 and got.body["error"]["code"] == "resource_missing"
    await world.wait_payout(owner, created.body["id"])
