"""Payments through real HTTP: wallet and channel, fees, duplicates, listing, closing, isolation."""

from __future__ import annotations

import asyncpg

from engine.payments.store import transitions_of
from tests.api.conftest import Api, order_no
from tests.api.ledger import snapshot


def wallet_payment(customer: str, amount: int = 1999, **extra: object) -> dict[str, object]:
    return {"merchant_order_no": order_no(), "amount": amount, "currency": "CNY", "method": "wallet",
            "customer_id": customer, **extra}


async def test_wallet_payment_books_pay_wallet_with_fee_and_records_its_transition(api: Api,
                                                                                  pool: asyncpg.Pool) -> None:
    client = await api.merchant(fee_bps=250, fee_fixed=30)
    customer = await api.funded_customer(client, 10_000)
    paid = await client.create_payment(wallet_payment(customer, 1000, description="tea", metadata={"k": "v"}))
    assert paid.status == 201, paid.body
    body = paid.body
    assert body["status"] == "succeeded" and body["fee"] == 30 + 25 and body["amount_refunded"] == 0
    assert body["voucher"] is None and body["metadata"] == {"k": "v"} and body["description"] == "tea"
    assert len(body["txn_no"]) == 32 and body["id"].startswith("pay_")
    async with pool.acquire() as conn:
        legs = await conn.fetch("SELECT account_id, side, amount FROM journal_legs WHERE txn_no = $1 ORDER BY leg_no",
                                body["txn_no"])
        code = await conn.fetchval("SELECT txn_code FROM journal_entries WHERE txn_no = $1", body["txn_no"])
        transitions = await transitions_of(conn, body["id"])
        event = await conn.fetchrow("SELECT type, payload FROM outbox_events WHERE object_id = $1", body["id"])
    assert code == "PAY_WALLET" and len(legs) == 5
    assert sum(r["amount"] for r in legs if r["side"] == "D") == sum(r["amount"] for r in legs if r["side"] == "C")
    assert [(t.from_status, t.to_status, t.event) for t in transitions] == [("created", "succeeded", "wallet_debited")]
    assert event["type"] == "payment.succeeded"
    assert (await client.get_customer(customer)).body["balance"] == 9000
    accounts = (await client.accounts()).body["data"]
    cny = next(a for a in accounts if a["currency"] == "CNY" and a["role"] == "merchant_pending")
    assert cny["balance"] == 1000 - 55 and cny["role"] == "merchant_pending"


async def test_wallet_payment_refused_for_insufficient_funds_books_nothing(api: Api, pool: asyncpg.Pool) -> None:
    client = await api.merchant()
    customer = await api.funded_customer(client, 500)
    before = await snapshot(pool, [client.merchant_id, customer])
    refused = await client.create_payment(wallet_payment(customer, 501))
    assert refused.status == 402 and refused.body["error"]["type"] == "payment_error"
    assert refused.error_code == "insufficient_funds"
    assert await snapshot(pool, [client.merchant_id, customer]) == before


async def test_duplicate_merchant_order_no_is_409_naming_the_existing_payment(api: Api) -> None:
    client = await api.merchant()
    customer = await api.funded_customer(client, 10_000)
    first = await client.create_payment(wallet_payment(customer, 100, merchant_order_no="o-1"))
    again = await client.create_payment(wallet_payment(customer, 100, merchant_order_no="o-1"))
    assert again.status == 409 and again.error_code == "duplicate_order"
    assert again.body["error"]["existing_id"] == first.body["id"]
    assert again.body["error"]["param"] == "merchant_order_no"
    assert (await client.get_customer(customer)).body["balance"] == 9900


async def test_channel_payment_is_pending_voucher_with_voucher_and_gateway_job(api: Api, pool: asyncpg.Pool) -> None:
    client = await api.merchant()
    created = await client.create_payment({"merchant_order_no": order_no(), "amount": 5000, "currency": "CNY",
                                           "method": "channel", "channel": "wxsim", "expires_in_s": 600})
    assert created.status == 201, created.body
    payment = created.body
    assert payment["status"] == "pending_voucher" and payment["voucher"]["status"] == "pending"
    assert payment["voucher"]["channel"] == "wxsim" and payment["customer_id"] is None
    async with pool.acquire() as conn:
        job = await conn.fetchrow("SELECT kind, status, payload::text FROM jobs WHERE ref_id = $1",
                                  payment["voucher"]["id"])
        entries = await conn.fetchval("SELECT count(*) FROM journal_entries WHERE txn_no = $1", payment["txn_no"])
    # The job was written with the payment; a gateway worker of another app sharing this session's
    # database may already have taken it, so its status is whatever that worker made of it.
    assert job["kind"] == "create_voucher" and payment["id"] in job["payload"]
    assert job["status"] in ("queued", "running", "done", "failed")
    assert entries == 0  # booked only when the channel reports the money


async def test_unknown_channel_and_wallet_without_customer_are_400_naming_the_field(api: Api) -> None:
    client = await api.merchant()
    bad_channel = await client.create_payment({"merchant_order_no": order_no(), "amount": 1, "currency": "CNY",
                                               "method": "channel", "channel": "nosuch"})
    assert bad_channel.status == 400 and bad_channel.body["error"]["param"] == "channel"
    no_customer = await client.create_payment({"merchant_order_no": order_no(), "amount": 1, "currency": "CNY",
                                               "method": "wallet"})
    assert no_customer.status == 400 and no_customer.body["error"]["param"] == "customer_id"


async def test_close_closes_an_unpaid_payment_once_and_refuses_a_paid_one(api: Api, pool: asyncpg.Pool) -> None:
    client = await api.merchant()
    created = await client.create_payment({"merchant_order_no": order_no(), "amount": 5000, "currency": "CNY",
                                           "method": "channel"})
    closed = await client.close_payment(created.body["id"])
    assert closed.status == 200 and closed.body["status"] == "closed"
    assert closed.body["voucher"]["status"] == "expired"
    assert (await client.get_payment(created.body["id"])).body == closed.body
    again = await client.close_payment(created.body["id"])
    assert again.status == 409 and again.error_code == "illegal_transition"
    async with pool.acquire() as conn:
        kinds = {r["kind"] for r in await conn.fetch("SELECT kind FROM jobs WHERE ref_id = $1", created.body["id"])}
        voucher_moves = await transitions_of(conn, created.body["voucher"]["id"])
    assert kinds == {"close_order"}
    # The app's voucher worker may issue the channel order before the close lands; both histories are legal,
    # and either way the voucher ends expired exactly once.
    assert [(t.from_status, t.to_status) for t in voucher_moves] in (
        [("pending", "expired")], [("pending", "ready"), ("ready", "expired")])
    customer = await api.funded_customer(client, 100)
    paid = await client.create_payment(wallet_payment(customer, 100))
    refused = await client.close_payment(paid.body["id"])
    assert refused.status == 409 and refused.body["error"]["type"] == "conflict_error"


async def test_list_is_newest_first_with_filters_and_cursor(api: Api) -> None:
    client = await api.merchant()
    customer = await api.funded_customer(client, 10_000)
    ids = [(await client.create_payment(wallet_payment(customer, 10))).body["id"] for _ in range(5)]
    page1 = await client.list_payments("limit=2")
    assert [p["id"] for p in page1.body["data"]] == ids[::-1][:2] and page1.body["has_more"] is True
    page2 = await client.list_payments(f"limit=2&starting_after={ids[3]}")
    assert [p["id"] for p in page2.body["data"]] == [ids[2], ids[1]]
    page3 = await client.list_payments(f"limit=2&starting_after={ids[1]}")
    assert [p["id"] for p in page3.body["data"]] == [ids[0]] and page3.body["has_more"] is False
    one = await client.get_payment(ids[2])
    by_order = await client.list_payments(f"merchant_order_no={one.body['merchant_order_no']}")
    assert [p["id"] for p in by_order.body["data"]] == [ids[2]]
    assert len((await client.list_payments("status=succeeded&limit=100")).body["data"]) == 5
    assert (await client.list_payments("status=closed")).body["data"] == []
    assert (await client.list_payments("limit=0")).status == 400
    assert (await client.list_payments("status=bogus")).status == 400
    assert (await client.list_payments("starting_after=pay_nope")).status == 404


async def test_another_merchants_objects_are_404(api: Api) -> None:
    alice, mallory = await api.merchant(), await api.merchant()
    customer = await api.funded_customer(alice, 1000)
    paid = await alice.create_payment(wallet_payment(customer, 100))
    refund = await alice.refund(paid.body["id"], 10, "r1")
    account_id = (await alice.accounts()).body["data"][0]["id"]
    for result in (await mallory.get_payment(paid.body["id"]), await mallory.get_customer(customer),
                   await mallory.get_refund(refund.body["id"]), await mallory.account(account_id),
                   await mallory.statement(account_id), await mallory.refund(paid.body["id"], 1, "steal"),
                   await mallory.close_payment(paid.body["id"]), await mallory.topup(customer, 1, "t"),
                   await mallory.create_payment(wallet_payment(customer, 1))):
        assert result.status == 404, result.body
        assert result.body["error"]["type"] == "invalid_request_error"
    assert (await mallory.list_payments()).body["data"] == []
