"""Merchant refunds of channel payments, carried out at the channel by the gateway's channel_refund job."""

from __future__ import annotations

import time
import uuid
from typing import Any

from channels.protocol import RefundRequest
from engine.services import SERVICES
from tests.gateway.conftest import Gw


async def _succeeded(gw: Gw, channel: str) -> tuple[Any, dict[str, Any]]:
    client = await gw.merchant()
    ready = await gw.ready_payment(client, channel=channel, amount=1999)
    await gw.pay(channel, ready["voucher"]["pay_url"])
    done = await gw.wait_payment(client, ready["id"], lambda p: p["status"] == "succeeded")
    return client, done


async def _refund_final(client: Any, refund_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 8.0
    while True:
        got = await client.get_refund(refund_id)
        if got.body["status"] != "pending" or time.monotonic() > deadline:
            body: dict[str, Any] = got.body
            return body


async def test_partial_refund_is_made_at_the_channel_and_booked_once(gw: Gw) -> None:
    client, paid = await _succeeded(gw, "banksim")
    asked = await client.refund(paid["id"], 500, "rf-" + uuid.uuid4().hex)
    assert asked.status == 201 and asked.body["status"] == "pending", asked.body
    refund = await _refund_final(client, asked.body["id"])
    assert refund["status"] == "succeeded"
    assert await gw.entries(asked.body["id"]) == ["REFUND_CHANNEL"]
    order = gw.sims["banksim"].runtime.store.orders[paid["txn_no"]]
    assert order.refunded_minor == 500
    accounts = await client.accounts()
    # 1999 - 12 fee credited; the refund takes back 500 less its fee share of 3.
    pending = [a for a in accounts.body["data"] if a["currency"] == "CNY" and a["role"] == "merchant_pending"]
    assert [a["balance"] for a in pending] == [1987 - 497]


async def test_refund_the_channel_refuses_fails_and_releases_its_reservation(gw: Gw) -> None:
    client, paid = await _succeeded(gw, "wxsim")
    adapter = gw.app[SERVICES].gateway.channels["wxsim"].adapter
    # Someone refunded it all at the channel behind our back: our refund must be refused there.
    await adapter.refund(RefundRequest(paid["txn_no"], "OOB" + uuid.uuid4().hex[:20], 1999, 1999, "CNY"))
    asked = await client.refund(paid["id"], 500, "rf-" + uuid.uuid4().hex)
    refund = await _refund_final(client, asked.body["id"])
    assert refund["status"] == "failed"
    assert await gw.entries(asked.body["id"]) == []
    got = await client.get_payment(paid["id"])
    assert got.body["amount_refunded"] == 0
    async with gw.pool.acquire() as conn:
        events = [r["type"] for r in await conn.fetch("SELECT type FROM outbox_events WHERE object_id = $1",
                                                      asked.body["id"])]
    assert events == ["refund.failed"]
