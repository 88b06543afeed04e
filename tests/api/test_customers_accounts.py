"""Customers, topups, accounts, statements, and the service endpoints (openapi, metrics, noop)."""

from __future__ import annotations

import uuid

from tests.api.conftest import Api, order_no


async def test_customer_topup_and_balance(api: Api) -> None:
    client = await api.merchant()
    created = await client.create_customer("ext-" + uuid.uuid4().hex, "USD")
    assert created.status == 201 and created.body["balance"] == 0 and created.body["currency"] == "USD"
    customer = created.body["id"]
    topped = await client.topup(customer, 2500, "t1")
    assert topped.status == 201 and topped.body["balance"] == 2500
    duplicate = await client.topup(customer, 2500, "t1")
    assert duplicate.status == 409 and duplicate.body["error"]["existing_id"] == topped.body["id"]
    assert (await client.get_customer(customer)).body["balance"] == 2500
    again = await client.create_customer(created.body["external_id"], "USD")
    assert again.status == 409 and again.body["error"]["existing_id"] == customer
    assert (await client.create_customer("x", "XYZ")).status == 400
    assert (await client.topup("cus_nobody", 1, "t")).status == 404
    assert (await client.get_customer("cus_nobody")).status == 404


async def test_accounts_and_statement_with_cursor(api: Api) -> None:
    client = await api.merchant(fee_bps=0)
    customer = await api.funded_customer(client, 10_000)
    for amount in (100, 200, 300):
        paid = await client.create_payment({"merchant_order_no": order_no(), "amount": amount, "currency": "CNY",
                                            "method": "wallet", "customer_id": customer})
        assert paid.status == 201
    accounts = (await client.accounts()).body["data"]
    assert {a["currency"] for a in accounts} == {"CNY", "USD"}
    cny = next(a for a in accounts if a["currency"] == "CNY" and a["role"] == "merchant_pending")
    assert cny["balance"] == 600 and cny["projected"] == 600 and cny["pending"] == 0 and not cny["hot"]
    assert (await client.account(cny["id"])).body == cny
    page = await client.statement(cny["id"], "limit=2")
    assert [line["balance_after"] for line in page.body["data"]] == [100, 300] and page.body["has_more"]
    rest = await client.statement(cny["id"], f"starting_after={page.body['data'][-1]['seq']}")
    assert [line["balance_after"] for line in rest.body["data"]] == [600] and not rest.body["has_more"]
    assert (await client.account("acct_nobody")).status == 404
    assert (await client.statement(cny["id"], "limit=abc")).status == 400


async def test_hot_merchant_account_shows_pending_and_projected(api: Api) -> None:
    client = await api.merchant(fee_bps=0, hot=True)
    customer = await api.funded_customer(client, 1000)
    await client.create_payment({"merchant_order_no": order_no(), "amount": 400, "currency": "CNY",
                                 "method": "wallet", "customer_id": customer})
    cny = next(a for a in (await client.accounts()).body["data"]
               if a["currency"] == "CNY" and a["role"] == "merchant_pending")
    assert cny["hot"] and cny["balance"] + cny["pending"] == cny["projected"] == 400


async def test_openapi_metrics_and_noop(api: Api) -> None:
    async with api.session.get(api.url + "/openapi.json") as resp:
        doc = await resp.json()
    assert doc["openapi"].startswith("3.1") and "/v1/payments" in doc["paths"]
    assert "CreatePayment" in doc["components"]["schemas"]
    async with api.session.get(api.url + "/metrics") as resp:
        text = await resp.text()
    assert 'payengine_http_requests_total{method="POST",route="/v1/payments"' in text
    async with api.session.post(api.url + "/bench/noop", data=b"{}") as resp:
        assert resp.status == 200
    async with api.session.get(api.url + "/healthz") as resp:
        assert resp.status == 200


async def test_only_an_account_the_merchant_can_draw_from_shows_available(api: Api) -> None:
    client = await api.merchant(fee_bps=0)
    customer = await api.funded_customer(client, 1000)
    paid = await client.create_payment({"merchant_order_no": order_no(), "amount": 400, "currency": "CNY",
                                        "method": "wallet", "customer_id": customer})
    assert paid.status == 201, paid.body
    accounts = {a["role"]: a for a in (await client.accounts()).body["data"] if a["currency"] == "CNY"}
    # 400 waits for settlement in pending: the merchant cannot draw it, so no `available` figure says otherwise.
    assert accounts["merchant_pending"]["balance"] == 400 and accounts["merchant_pending"]["available"] is None
    assert accounts["merchant_fee_payable"]["available"] is None
    assert accounts["merchant_available"]["available"] == accounts["merchant_available"]["balance"] == 0
    one = await client.account(accounts["merchant_pending"]["id"])
    assert one.body["available"] is None
