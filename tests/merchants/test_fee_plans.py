"""Named fee plans through the admin API, and what each collection books: deducted (the fee netted out of
the merchant's pending account, as without a plan) or invoiced (pending gets the whole amount, the fee is
owed on the merchant's fee-payable account)."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import asyncpg
import pytest

from accounts.store import trial_balance
from engine.settlement.store import claim_due
from tests.api.conftest import Api
from tests.api.ledger import snapshot
from tests.merchants.conftest import Admin


def plan_name() -> str:
    return "plan_" + uuid.uuid4().hex[:12]


async def make_plan(admin: Admin, **terms: Any) -> dict[str, Any]:
    reply = await admin.call("POST", "/admin/fee-plans", {"name": plan_name(), **terms})
    assert reply.status == 201, reply.body
    plan: dict[str, Any] = reply.body
    return plan


async def balances(pool: asyncpg.Pool, merchant_id: str) -> dict[str, int]:
    rows = await pool.fetch("SELECT role, balance FROM accounts WHERE owner_id = $1 AND currency = 'CNY'"
                            " AND parent_id IS NULL", merchant_id)
    return {r["role"]: r["balance"] for r in rows}


async def pay_and_refund(api: Api, admin: Admin, created: dict[str, Any], amount: int,
                         refund: int) -> dict[str, Any]:
    client = admin.client(created)
    customer = await api.funded_customer(client, amount)
    paid = await client.create_payment({"merchant_order_no": "o-" + uuid.uuid4().hex, "amount": amount,
                                        "currency": "CNY", "method": "wallet", "customer_id": customer})
    assert paid.status == 201, paid.body
    refunded = await client.refund(paid.body["id"], refund, "r-" + uuid.uuid4().hex)
    assert refunded.status == 201, refunded.body
    body: dict[str, Any] = paid.body
    return body


async def test_plans_are_created_listed_shown_and_replaced(admin: Admin) -> None:
    plan = await make_plan(admin, fee_bps=120, fee_fixed=30, collection="invoiced")
    assert (plan["fee_bps"], plan["fee_fixed"], plan["collection"], plan["merchants"]) == (120, 30, "invoiced", 0)
    shown = await admin.call("GET", f"/admin/fee-plans/{plan['name']}")
    assert shown.status == 200 and shown.body == plan
    assert plan["name"] in [p["name"] for p in (await admin.call("GET", "/admin/fee-plans")).body["data"]]
    replaced = await admin.call("PUT", f"/admin/fee-plans/{plan['name']}", {"fee_bps": 80})
    assert replaced.status == 200, replaced.body
    assert (replaced.body["fee_bps"], replaced.body["fee_fixed"], replaced.body["collection"]) == (80, 0, "deducted")
    again = await admin.call("POST", "/admin/fee-plans", {"name": plan["name"], "fee_bps": 1})
    assert again.status == 409 and again.code == "fee_plan_exists"
    assert (await admin.call("GET", f"/admin/fee-plans/{plan['name']}")).body["fee_bps"] == 80
    missing = await admin.call("PUT", f"/admin/fee-plans/{plan_name()}", {"fee_bps": 1})
    assert missing.status == 404 and missing.body["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(("body", "param"), [
    ({"fee_bps": 10_001}, "fee_bps"),
    ({"fee_fixed": -1}, "fee_fixed"),
    ({"collection": "monthly"}, "collection"),
    ({"name": "Has Spaces"}, "name"),
    ({"discount": 5}, "discount"),
])
async def test_bad_plan_is_400_naming_the_field_and_nothing_is_created(admin: Admin, body: dict[str, Any],
                                                                        param: str) -> None:
    name = plan_name()
    reply = await admin.call("POST", "/admin/fee-plans", {"name": name, **body})
    assert reply.status == 400 and reply.body["error"]["param"] == param, reply.body
    assert (await admin.call("GET", f"/admin/fee-plans/{name}")).status == 404


async def test_unknown_plan_is_422_and_nothing_is_created_or_changed(admin: Admin) -> None:
    merchant_id = "mch_" + uuid.uuid4().hex[:16]
    refused = await admin.call("POST", "/admin/merchants", {"name": "m", "currencies": ["CNY"], "id": merchant_id,
                                                            "fee_plan": plan_name()})
    assert refused.status == 422 and refused.code == "fee_plan_unknown", refused.body
    assert refused.body["error"]["param"] == "fee_plan" and refused.body["error"]["type"] == "invalid_request_error"
    assert (await admin.call("GET", f"/admin/merchants/{merchant_id}")).status == 404
    created = await admin.create()
    before = (await admin.call("GET", f"/admin/merchants/{created['id']}")).body
    patched = await admin.call("PATCH", f"/admin/merchants/{created['id']}", {"fee_plan": plan_name(), "name": "x"})
    assert patched.status == 422 and patched.code == "fee_plan_unknown"
    assert (await admin.call("GET", f"/admin/merchants/{created['id']}")).body == before


async def test_a_plan_and_a_fee_of_its_own_together_are_400(admin: Admin) -> None:
    plan = await make_plan(admin, fee_bps=50)
    both = await admin.call("POST", "/admin/merchants", {"name": "m", "currencies": ["CNY"], "fee_bps": 60,
                                                         "fee_plan": plan["name"]})
    assert both.status == 400 and both.body["error"]["param"] == "fee_bps"
    on_plan = await admin.create(fee_bps=0, fee_plan=plan["name"])
    own = await admin.call("PATCH", f"/admin/merchants/{on_plan['id']}", {"fee_fixed": 9})
    assert own.status == 400 and own.body["error"]["param"] == "fee_fixed"
    off = await admin.call("PATCH", f"/admin/merchants/{on_plan['id']}", {"fee_plan": None, "fee_fixed": 9})
    assert off.status == 200 and (off.body["fee_plan"], off.body["fee_fixed"]) == (None, 9), off.body


async def test_invoiced_fee_is_owed_on_fee_payable_and_pending_gets_the_whole_amount(
        api: Api, admin: Admin, pool: asyncpg.Pool) -> None:
    plan = await make_plan(admin, fee_bps=100, fee_fixed=5, collection="invoiced")
    created = await admin.create(fee_bps=0, fee_plan=plan["name"])
    assert (created["fee_plan"], created["fee_collection"], created["fee_bps"]) == (plan["name"], "invoiced", 100)
    paid = await pay_and_refund(api, admin, created, 10_000, 5_000)
    assert paid["fee"] == 105
    # Paid 10 000 (fee 105 owed), refunded 5 000 (its fee share, 53, owed no more).
    assert await balances(pool, created["id"]) == {"merchant_pending": 5_000, "merchant_available": 0,
                                                   "merchant_fee_payable": 52}
    async with pool.acquire() as conn:
        codes = [r["txn_code"] for r in await conn.fetch(
            "SELECT e.txn_code FROM journal_entries e JOIN journal_legs l ON l.txn_no = e.txn_no"
            " JOIN accounts a ON a.id = l.account_id WHERE a.owner_id = $1 AND a.role = 'merchant_fee_payable'"
            " ORDER BY e.txn_code", created["id"])]
        assert codes == ["PAY_WALLET_INVOICED", "REFUND_WALLET_INVOICED"]
        assert (await trial_balance(conn)).holds
    await snapshot(pool, [created["id"]])  # the trial balance holds


async def test_deducted_plan_and_no_plan_net_the_fee_out_as_before(api: Api, admin: Admin,
                                                                   pool: asyncpg.Pool) -> None:
    plan = await make_plan(admin, fee_bps=100, fee_fixed=5)
    for created in (await admin.create(fee_bps=0, fee_plan=plan["name"]), await admin.create(fee_bps=100,
                                                                                             fee_fixed=5)):
        assert created["fee_collection"] == "deducted"
        paid = await pay_and_refund(api, admin, created, 10_000, 5_000)
        assert paid["fee"] == 105
        assert await balances(pool, created["id"]) == {"merchant_pending": 10_000 - 105 - (5_000 - 53),
                                                       "merchant_available": 0, "merchant_fee_payable": 0}


async def test_a_replaced_plan_prices_its_merchants_next_payments(api: Api, admin: Admin) -> None:
    plan = await make_plan(admin, fee_bps=100)
    created = await admin.create(fee_bps=0, fee_plan=plan["name"])
    first = await pay_and_refund(api, admin, created, 10_000, 1)
    assert first["fee"] == 100
    assert (await admin.call("PUT", f"/admin/fee-plans/{plan['name']}", {"fee_bps": 200})).status == 200
    assert (await admin.call("GET", f"/admin/fee-plans/{plan['name']}")).body["merchants"] == 1
    second = await pay_and_refund(api, admin, created, 10_000, 1)
    assert second["fee"] == 200


class _RolledBack(Exception):
    pass


async def _settlement_net(pool: asyncpg.Pool, merchant_id: str) -> tuple[int, int, int]:
    """What settlement would claim for the merchant (gross, fees, net); rolled back, nothing kept."""
    batch = None
    with pytest.raises(_RolledBack):
        async with pool.acquire() as conn, conn.transaction():
            settle_date = date.today() + timedelta(days=5)
            batch = await claim_due(conn, "stl_" + uuid.uuid4().hex[:12], merchant_id, "CNY", settle_date, settle_date)
            raise _RolledBack
    assert batch is not None
    return batch.gross, batch.fees, batch.net


async def test_settlement_moves_what_pending_holds_for_either_collection(api: Api, admin: Admin,
                                                                          pool: asyncpg.Pool) -> None:
    invoiced = await make_plan(admin, fee_bps=100, fee_fixed=5, collection="invoiced")
    on_invoice = await admin.create(fee_bps=0, fee_plan=invoiced["name"], settlement_cycle="D+0")
    deducted = await admin.create(fee_bps=100, fee_fixed=5, settlement_cycle="D+0")
    for created in (on_invoice, deducted):
        await pay_and_refund(api, admin, created, 10_000, 5_000)
    assert await _settlement_net(pool, on_invoice["id"]) == (10_000, 0, 5_000)
    assert (await balances(pool, on_invoice["id"]))["merchant_pending"] == 5_000
    assert await _settlement_net(pool, deducted["id"]) == (10_000, 105, 10_000 - 105 - (5_000 - 53))
    assert (await balances(pool, deducted["id"]))["merchant_pending"] == 10_000 - 105 - (5_000 - 53)
