"""The gateway's endings without money give back the limit usage the payment counted when it was created: a
voucher that fails for good and a payment the janitor expires. A payment the channel paid keeps its usage,
whether the merchant then tries to close it or refunds it."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

from engine.client import PayEngineClient
from engine.controls.gate import Attempt
from engine.controls.store import AdmissionClaim
from engine.keys import PAYMENT, VOUCHER, new_id
from engine.payments.store import Job, NewPayment, Transition, insert_payment
from engine.services import SERVICES
from tests.factories import new_txn_no
from tests.gateway.conftest import Gw

TWO_A_DAY = {"scope": "customer", "window": "daily", "method": "channel", "count_max": 2}
AMOUNT = 500


async def _limited_customer(gw: Gw) -> tuple[PayEngineClient, str]:
    client = await gw.merchant()
    created = await client.create_customer("ext-" + uuid.uuid4().hex)
    assert created.status == 201, created.body
    status, body = await gw.admin("PUT", f"/admin/merchants/{client.merchant_id}/limits", {"limits": [TWO_A_DAY]})
    assert status == 200, body
    return client, created.body["id"]


async def _attempt(client: PayEngineClient, customer: str) -> int:
    """The status of one more channel payment for the customer (402: the daily count limit refused it)."""
    created = await client.create_payment({"merchant_order_no": "ord-" + uuid.uuid4().hex, "amount": AMOUNT,
                                           "currency": "CNY", "method": "channel", "channel": "wxsim",
                                           "customer_id": customer})
    return created.status


async def _given_back(gw: Gw, payment_id: str) -> None:
    async def done() -> bool:
        async with gw.pool.acquire() as conn:
            left = await conn.fetchval(
                "SELECT (SELECT count(*) FROM usage_releases WHERE movement_id = $1)"
                " + (SELECT count(*) FROM limit_usage WHERE movement_id = $1)", payment_id)
        return bool(left == 0)

    await gw.eventually(done)


async def _admitted_for_unconfigured_channel(gw: Gw, client: PayEngineClient, customer: str) -> str:
    """What create_payment writes (admission counted, controls stored with the payment), for a channel the API
    would refuse: its voucher fails for good."""
    now = datetime.now(UTC)
    payment_id, voucher_id = new_id(PAYMENT), new_id(VOUCHER)
    admission = await gw.app[SERVICES].gate.admit(Attempt("payment", "channel", client.merchant_id, customer, AMOUNT,
                                                          "CNY", movement_id=payment_id))
    row = NewPayment(payment_id, client.merchant_id, "ord-" + uuid.uuid4().hex, AMOUNT, "CNY", "channel",
                     "nosuchchannel", customer, "pending_voucher", 3, new_txn_no(), None, {},
                     now + timedelta(minutes=15), now, voucher_id)
    job = Job("create_voucher", voucher_id, json.dumps({"payment_id": payment_id, "channel": "nosuchchannel"}).encode())
    async with gw.pool.acquire() as conn, conn.transaction():
        await insert_payment(conn, row, Transition("created", "pending_voucher", "channel_order_created"), job,
                             None, None, admission=AdmissionClaim(admission.id, admission.record()))
    return payment_id


async def test_payment_whose_voucher_fails_gives_its_usage_back(gw: Gw) -> None:
    client, customer = await _limited_customer(gw)
    assert await _attempt(client, customer) == 201
    failing = await _admitted_for_unconfigured_channel(gw, client, customer)
    failed = await gw.wait_payment(client, failing, lambda p: p["status"] != "pending_voucher")
    assert failed["status"] == "failed", failed

    await _given_back(gw, failing)
    assert await _attempt(client, customer) == 201
    assert await _attempt(client, customer) == 402


async def test_payment_the_janitor_expires_gives_its_usage_back(gw: Gw) -> None:
    client, customer = await _limited_customer(gw)
    ready = await gw.ready_payment(client, amount=AMOUNT, customer_id=customer)
    assert await _attempt(client, customer) == 201
    assert await _attempt(client, customer) == 402
    async with gw.pool.acquire() as conn:  # let its deadline pass without waiting the API's minimum minute
        await conn.execute("UPDATE payments SET expires_at = now() - interval '1 second' WHERE id = $1", ready["id"])
    await gw.wait_payment(client, ready["id"], lambda p: p["status"] == "closed")

    await _given_back(gw, ready["id"])
    assert await _attempt(client, customer) == 201
    assert await _attempt(client, customer) == 402


async def test_paid_payment_keeps_its_usage_when_closed_or_refunded(gw: Gw) -> None:
    client, customer = await _limited_customer(gw)
    ready = await gw.ready_payment(client, amount=AMOUNT, customer_id=customer)
    await gw.pay("wxsim", ready["voucher"]["pay_url"])
    await gw.wait_payment(client, ready["id"], lambda p: p["status"] == "succeeded")
    assert await _attempt(client, customer) == 201

    assert (await client.close_payment(ready["id"])).status == 409
    refund = await client.refund(ready["id"], AMOUNT, "rf-" + uuid.uuid4().hex)
    assert refund.status == 201, refund.body
    assert await _attempt(client, customer) == 402
    async with gw.pool.acquire() as conn:
        owed = await conn.fetchval("SELECT count(*) FROM usage_releases WHERE movement_id = $1", ready["id"])
        counted = await conn.fetchval("SELECT count(*) FROM limit_usage WHERE movement_id = $1", ready["id"])
    assert (owed, counted) == (0, 1)
