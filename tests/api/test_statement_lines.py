"""Statement lines say what each entry was for: the payment or refund, the merchant's order (refund) number and,
on the payment's or refund's own entry, the gross/fee split; and statements filter by accounting date, on the
merchant's route and the operators' alike."""

from __future__ import annotations

from datetime import date, timedelta

from tests.api.conftest import AdminHttp, Api, order_no


async def test_statement_lines_carry_payment_refund_and_gross_fee(api: Api) -> None:
    client = await api.merchant(fee_bps=100)  # 1%: a payment of 5000 pays a fee of 50
    customer = await api.funded_customer(client, 10_000)
    order = order_no()
    paid = await client.create_payment({"merchant_order_no": order, "amount": 5000, "currency": "CNY",
                                        "method": "wallet", "customer_id": customer})
    assert paid.status == 201, paid.body
    refund = await client.refund(paid.body["id"], 2000, "rf-" + order)
    assert refund.status == 201, refund.body
    pending = next(a for a in (await client.accounts()).body["data"]
                   if a["currency"] == "CNY" and a["role"] == "merchant_pending")
    lines = (await client.statement(pending["id"])).body["data"]
    assert [(ln["txn_code"], ln["delta"]) for ln in lines] == [("PAY_WALLET", 4950), ("REFUND_WALLET", -1980)]
    pay, back = lines
    assert (pay["payment_id"], pay["refund_id"], pay["merchant_order_no"], pay["merchant_refund_no"]) == (
        paid.body["id"], None, order, None)
    assert (pay["gross"], pay["fee"], pay["net"], pay["ref"]) == (5000, 50, 4950, paid.body["id"])
    assert (back["payment_id"], back["refund_id"], back["merchant_order_no"], back["merchant_refund_no"]) == (
        paid.body["id"], refund.body["id"], order, "rf-" + order)
    assert (back["gross"], back["fee"], back["net"]) == (2000, 20, 1980)

    day = date.fromisoformat(pay["accounting_date"])
    admin = AdminHttp(api)
    for query, expected in ((f"from={day}", 2), (f"from={day}&to={day}", 2), (f"to={day - timedelta(days=1)}", 0),
                            (f"from={day + timedelta(days=1)}", 0)):
        mine = await client.statement(pending["id"], query)
        assert mine.status == 200 and len(mine.body["data"]) == expected, (query, mine.body)
        theirs = await admin.call("GET", f"/admin/accounts/{pending['id']}/statement?{query}")
        assert theirs.status == 200 and theirs.body["data"] == mine.body["data"], (query, theirs.body)
    refused = await client.statement(pending["id"], f"from={day}&to={day - timedelta(days=1)}")
    assert refused.status == 400 and refused.body["error"]["param"] == "from", refused.body
    assert (await client.statement(pending["id"], "from=yesterday")).status == 400
    assert (await admin.call("GET", "/admin/accounts/acct_nobody/statement")).status == 404
    # Lines of entries that are neither a payment nor a refund carry no such fields.
    wallet_id = (await client.get_customer(customer)).body["wallet_account_id"]
    wallet = await admin.call("GET", f"/admin/accounts/{wallet_id}/statement")
    assert wallet.status == 200
    topup = wallet.body["data"][0]
    assert topup["txn_code"] == "TOPUP" and topup["payment_id"] is None and topup["gross"] is None, topup
