"""Amounts across the whole accepted range: never a 5xx, the money always adds up.

Before: `amount` up to 2^63-1 was accepted; one channel payment of that size made every later wallet payment
of its merchant a 500 (bigint overflow in the limit-usage sums), and a top-up that took the shared channel
receivable past the bigint range was a 500. Now a request moves at most 10^15 minor units (the schema), and
at most its currency's limit (PAYENGINE_AMOUNT_MAX, default 10^12: 400 amount_too_large); usage sums
saturate instead of overflowing; a balance that would leave the range is 422 amount_out_of_range with
nothing written.
"""

from __future__ import annotations

import uuid

import asyncpg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.store import trial_balance
from engine.client import PayEngineClient
from engine.settings import AMOUNT_MAX_DEFAULT_MINOR, REQUEST_AMOUNT_CEILING_MINOR
from tests.api.conftest import Api, Private, merchant_with_funds
from tests.api.ledger import snapshot

BIGINT_MAX = 2**63 - 1
EDGES = [1, 2, AMOUNT_MAX_DEFAULT_MINOR - 1, AMOUNT_MAX_DEFAULT_MINOR, AMOUNT_MAX_DEFAULT_MINOR + 1,
         REQUEST_AMOUNT_CEILING_MINOR, REQUEST_AMOUNT_CEILING_MINOR + 1, BIGINT_MAX]
AMOUNTS = st.one_of(st.sampled_from(EDGES), st.integers(1, BIGINT_MAX), st.integers(1, 10_000))


def _ref(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


async def test_the_largest_amount_a_request_may_move_is_refused_clearly_above_it(api: Api) -> None:
    client = await api.merchant()
    customer = await api.funded_customer(client, 0)
    for amount, status, code in [(AMOUNT_MAX_DEFAULT_MINOR + 1, 400, "amount_too_large"),
                                 (REQUEST_AMOUNT_CEILING_MINOR + 1, 400, "parameter_invalid"),
                                 (BIGINT_MAX, 400, "parameter_invalid")]:
        topped = await client.topup(customer, amount, _ref("tu"))
        paid = await client.create_payment({"method": "channel", "amount": amount, "currency": "CNY",
                                            "merchant_order_no": _ref("ord")})
        assert (topped.status, topped.error_code) == (status, code), topped.body
        assert (paid.status, paid.error_code) == (status, code), paid.body
    async with api.session.get(api.url + "/openapi.json") as resp:
        doc = await resp.json()
    amount_schema = doc["components"]["schemas"]["CreatePayment"]["properties"]["amount"]
    assert amount_schema["maximum"] == AMOUNT_MAX_DEFAULT_MINOR, amount_schema  # the deployment's limit


async def test_a_huge_channel_payment_no_longer_stops_the_merchants_wallet_payments(api: Api) -> None:
    client = await api.merchant()
    customer = await api.funded_customer(client, 1_000)
    huge = await client.create_payment({"method": "channel", "amount": AMOUNT_MAX_DEFAULT_MINOR, "currency": "CNY",
                                        "merchant_order_no": _ref("ord")})
    assert huge.status == 201, huge.body
    for _ in range(3):
        paid = await client.create_payment({"method": "wallet", "amount": 100, "currency": "CNY",
                                            "customer_id": customer, "merchant_order_no": _ref("ord")})
        assert paid.status == 201, paid.body


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(steps=st.lists(st.tuples(st.sampled_from(["topup", "wallet", "channel", "refund", "transfer"]), AMOUNTS),
                      min_size=1, max_size=8))
async def test_any_amount_through_every_money_moving_endpoint_is_never_a_5xx(
        api: Api, pool: asyncpg.Pool, steps: list[tuple[str, int]]) -> None:
    client: PayEngineClient = await api.merchant()
    payer = await api.funded_customer(client, 0)
    payee = await api.funded_customer(client, 0)
    paid: list[str] = []
    for action, amount in steps:
        if action == "topup":
            answer = await client.topup(payer, amount, _ref("tu"))
        elif action in ("wallet", "channel"):
            body = {"method": action, "amount": amount, "currency": "CNY", "merchant_order_no": _ref("ord")}
            answer = await client.create_payment({**body, "customer_id": payer} if action == "wallet" else body)
            if answer.status == 201 and action == "wallet":
                paid.append(answer.body["id"])
        elif action == "refund":
            if not paid:
                continue
            answer = await client.request("POST", f"/v1/payments/{paid[-1]}/refunds",
                                          {"amount": amount, "merchant_refund_no": _ref("rf")})
        else:
            answer = await client.request("POST", "/v1/transfers", {
                "transfer_no": _ref("tr"), "source": "customer", "from_customer_id": payer, "to_customer_id": payee,
                "amount": amount, "currency": "CNY"})
        assert answer.status < 500, (action, amount, answer.body)
        if amount > AMOUNT_MAX_DEFAULT_MINOR:
            assert answer.status == 400, (action, amount, answer.body)
    await snapshot(pool, [])  # the trial balance holds (asserted inside)


async def test_a_balance_that_would_leave_the_range_is_422_and_nothing_is_written(private: Private) -> None:
    client, customer = await merchant_with_funds(private)
    conn = await asyncpg.connect(private.servers.database_url)
    try:
        # The shared channel receivable (debited by every top-up) a little below the bigint maximum.
        receivable = await conn.fetchval(
            "SELECT id FROM accounts WHERE owner_id = 'platform' AND role = 'channel_receivable' AND currency = 'CNY'")
        await conn.execute("UPDATE accounts SET balance = $2 WHERE id = $1", receivable, BIGINT_MAX - 10)
        entries = await conn.fetchval("SELECT count(*) FROM journal_entries")
        wallet = await conn.fetchval("SELECT balance FROM accounts WHERE owner_id = $1", customer)
        topped = await client.topup(customer, 1_000, _ref("tu"))
        assert (topped.status, topped.error_code) == (422, "amount_out_of_range"), topped.body
        assert await conn.fetchval("SELECT count(*) FROM journal_entries") == entries
        assert await conn.fetchval("SELECT balance FROM accounts WHERE owner_id = $1", customer) == wallet
        assert await conn.fetchval("SELECT balance FROM accounts WHERE id = $1", receivable) == BIGINT_MAX - 10
        tb = await trial_balance(conn)
        assert tb is not None
    finally:
        await conn.close()
