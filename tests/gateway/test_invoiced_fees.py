"""A merchant on an invoiced fee plan, paid and refunded through a channel: the gateway books the whole
amount to pending and the fee (then its refunded share back) on the merchant's fee-payable account."""

from __future__ import annotations

import uuid
from typing import Any

from engine.client import PayEngineClient, create_merchant
from tests.gateway.conftest import ADMIN_TOKEN, Gw
from tests.gateway.test_channel_refunds import _refund_final


async def _invoiced_merchant(gw: Gw) -> PayEngineClient:
    name = "inv_" + uuid.uuid4().hex[:12]
    status, plan = await gw.admin("POST", "/admin/fee-plans", {"name": name, "fee_bps": 60,
                                                                "collection": "invoiced"})
    assert status == 201, plan
    created = await create_merchant(gw.url, ADMIN_TOKEN, {"name": "invoiced", "currencies": ["CNY"],
                                                           "fee_plan": name}, gw.http)
    return PayEngineClient(gw.url, created["id"], created["secret"], session=gw.http)


def _balances(accounts: dict[str, Any]) -> dict[str, int]:
    return {a["role"]: a["balance"] for a in accounts["data"] if a["currency"] == "CNY"}


async def test_channel_payment_and_refund_of_an_invoiced_merchant_book_the_fee_to_fee_payable(gw: Gw) -> None:
    client = await _invoiced_merchant(gw)
    ready = await gw.ready_payment(client, channel="banksim", amount=1999)
    await gw.pay("banksim", ready["voucher"]["pay_url"])
    paid = await gw.wait_payment(client, ready["id"], lambda p: p["status"] == "succeeded")
    assert paid["fee"] == 12 and await gw.entries(paid["id"]) == ["PAY_CHANNEL_INVOICED"]
    asked = await client.refund(paid["id"], 500, "rf-" + uuid.uuid4().hex)
    assert asked.status == 201, asked.body
    assert (await _refund_final(client, asked.body["id"]))["status"] == "succeeded"
    assert await gw.entries(asked.body["id"]) == ["REFUND_CHANNEL_INVOICED"]
    # The whole 1999 less the whole 500 refunded; the fee 12 owed, less the refund's share of 3.
    balances = _balances((await client.accounts()).body)
    assert (balances["merchant_pending"], balances["merchant_fee_payable"]) == (1999 - 500, 12 - 3)
