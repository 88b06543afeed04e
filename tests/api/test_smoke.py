from __future__ import annotations

from tests.api.conftest import Api, order_no


async def test_wallet_payment_succeeds_and_debits_the_customer(api: Api) -> None:
    client = await api.merchant()
    customer = await api.funded_customer(client, 10_000)
    paid = await client.create_payment({"merchant_order_no": order_no(), "amount": 1999, "currency": "CNY",
                                        "method": "wallet", "customer_id": customer})
    assert paid.status == 201, paid.body
    assert paid.body["status"] == "succeeded"
    assert paid.body["fee"] == 12  # 1999 * 60 bps = 11.994 -> 12
    got = await client.get_customer(customer)
    assert got.body["balance"] == 10_000 - 1999
