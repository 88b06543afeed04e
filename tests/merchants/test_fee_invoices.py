"""Fee invoices through the admin API: invoiced fees are billed (what is owed and not billed yet), and an
invoice is paid once, from the merchant's available balance or by its transfer to our bank, in one
transaction with its booking. Refused requests change nothing."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from accounts.model import AccountId
from accounts.rules import build_entry
from accounts.store import trial_balance
from engine.services import SERVICES
from tests.api.conftest import Api
from tests.merchants.conftest import Admin
from tests.merchants.test_fee_plans import balances, make_plan, pay_and_refund

AMOUNT = 10_000
FEE = 105  # 100 bps + 5 fixed


async def _invoiced_merchant(api: Api, admin: Admin, payments: int) -> dict[str, Any]:
    plan = await make_plan(admin, fee_bps=100, fee_fixed=5, collection="invoiced")
    created = await admin.create(fee_bps=0, fee_plan=plan["name"])
    for _ in range(payments):
        await pay_and_refund(api, admin, created, AMOUNT, 1)  # refunding 1 gives back no fee (rounds to 0)
    return created


async def _settle_to_available(api: Api, pool: asyncpg.Pool, merchant_id: str, amount: int) -> None:
    """Move pending to available as the settlement run does (without closing the shared accounting day)."""
    ids = {r["role"]: AccountId(r["id"]) for r in await pool.fetch(
        "SELECT role, id FROM accounts WHERE owner_id = $1 AND currency = 'CNY' AND parent_id IS NULL", merchant_id)}
    now = datetime.now(UTC)
    await api.app[SERVICES].booker.book(build_entry("SETTLE", api.app[SERVICES].txn_nos.next(now), now.date(), "CNY",
                                           {"merchant_pending": ids["merchant_pending"],
                                            "merchant_available": ids["merchant_available"]}, {"amount": amount}))


async def _entries(pool: asyncpg.Pool, invoice_id: str) -> list[str]:
    return [r["txn_code"] for r in await pool.fetch("SELECT txn_code FROM journal_entries WHERE ref = $1", invoice_id)]


async def test_invoice_bills_what_is_owed_and_is_paid_once_from_available(api: Api, admin: Admin,
                                                                          pool: asyncpg.Pool) -> None:
    created = await _invoiced_merchant(api, admin, payments=2)
    merchant = created["id"]
    listed = await admin.call("GET", f"/admin/merchants/{merchant}/fee-invoices")
    assert listed.status == 200 and listed.body == {"data": [], "fees_owed": {"CNY": 2 * FEE},
                                                    "fees_unbilled": {"CNY": 2 * FEE}}
    issued = await admin.call("POST", f"/admin/merchants/{merchant}/fee-invoices", {"currency": "CNY"})
    assert issued.status == 201, issued.body
    invoice = issued.body
    assert (invoice["amount"], invoice["status"], invoice["paid_from"]) == (2 * FEE, "open", None)
    again = await admin.call("POST", f"/admin/merchants/{merchant}/fee-invoices", {"currency": "CNY"})
    assert again.status == 409 and again.code == "nothing_to_invoice", again.body

    # Nothing available yet: refused, the invoice stays open and nothing is booked.
    before = await balances(pool, merchant)
    short = await admin.call("POST", f"/admin/fee-invoices/{invoice['id']}/pay", {"source": "available"})
    assert short.status == 402 and short.code == "insufficient_funds", short.body
    assert (await admin.call("GET", f"/admin/fee-invoices/{invoice['id']}")).body == invoice
    assert await balances(pool, merchant) == before and await _entries(pool, invoice["id"]) == []

    await _settle_to_available(api, pool, merchant, 5_000)
    paid = await admin.call("POST", f"/admin/fee-invoices/{invoice['id']}/pay", {"source": "available"})
    assert paid.status == 200, paid.body
    assert (paid.body["status"], paid.body["paid_from"]) == ("paid", "available") and paid.body["paid_txn_no"]
    after = await balances(pool, merchant)
    assert after["merchant_fee_payable"] == 0 and after["merchant_available"] == 5_000 - 2 * FEE
    assert await _entries(pool, invoice["id"]) == ["FEE_INVOICE_PAID"]
    twice = await admin.call("POST", f"/admin/fee-invoices/{invoice['id']}/pay", {"source": "available"})
    assert twice.status == 409 and twice.code == "illegal_transition"
    assert await balances(pool, merchant) == after and await _entries(pool, invoice["id"]) == ["FEE_INVOICE_PAID"]

    # The next invoice bills only fees made since.
    await pay_and_refund(api, admin, created, AMOUNT, 1)
    second = await admin.call("POST", f"/admin/merchants/{merchant}/fee-invoices", {"currency": "CNY"})
    assert second.status == 201 and second.body["amount"] == FEE
    listed = await admin.call("GET", f"/admin/merchants/{merchant}/fee-invoices")
    assert [i["id"] for i in listed.body["data"]] == [second.body["id"], invoice["id"]]
    assert listed.body["fees_owed"] == {"CNY": FEE} and listed.body["fees_unbilled"] == {"CNY": 0}
    async with pool.acquire() as conn:
        assert (await trial_balance(conn)).holds


async def test_external_payment_books_our_bank_and_a_later_refund_leaves_the_merchant_in_credit(
        api: Api, admin: Admin, pool: asyncpg.Pool) -> None:
    created = await _invoiced_merchant(api, admin, payments=0)
    merchant = created["id"]
    paid = await pay_and_refund(api, admin, created, AMOUNT, 1)
    invoice = (await admin.call("POST", f"/admin/merchants/{merchant}/fee-invoices", {"currency": "CNY"})).body
    reference = "wire-" + uuid.uuid4().hex[:8]
    settled = await admin.call("POST", f"/admin/fee-invoices/{invoice['id']}/pay",
                               {"source": "external", "reference": reference})
    assert settled.status == 200, settled.body
    assert (settled.body["paid_from"], settled.body["reference"]) == ("external", reference)
    assert await _entries(pool, invoice["id"]) == ["FEE_INVOICE_RECEIVED"]
    bank = await pool.fetchval(
        "SELECT l.delta FROM journal_legs l JOIN accounts a ON a.id = l.account_id"
        " WHERE l.txn_no = $1 AND a.role = 'bank_deposits' AND a.owner_id = 'platform'", settled.body["paid_txn_no"])
    assert bank == FEE
    # Refunding the rest gives back its fee share: the merchant has paid it, so fee payable goes into credit.
    client = admin.client(created)
    refunded = await client.refund(paid["id"], AMOUNT - 1, "r-" + uuid.uuid4().hex)
    assert refunded.status == 201, refunded.body
    assert (await balances(pool, merchant))["merchant_fee_payable"] == -FEE
    nothing = await admin.call("POST", f"/admin/merchants/{merchant}/fee-invoices", {"currency": "CNY"})
    assert nothing.status == 409 and nothing.code == "nothing_to_invoice"
    async with pool.acquire() as conn:
        assert (await trial_balance(conn)).holds


async def test_concurrent_issues_bill_the_fees_once(api: Api, admin: Admin, pool: asyncpg.Pool) -> None:
    created = await _invoiced_merchant(api, admin, payments=3)
    path = f"/admin/merchants/{created['id']}/fee-invoices"
    replies = await asyncio.gather(*(admin.call("POST", path, {"currency": "CNY"}) for _ in range(10)))
    assert sorted(r.status for r in replies) == [201] + [409] * 9
    listed = (await admin.call("GET", path)).body
    assert [i["amount"] for i in listed["data"]] == [3 * FEE] and listed["fees_unbilled"] == {"CNY": 0}


@pytest.mark.parametrize(("method", "path", "body", "status", "param"), [
    ("POST", "/admin/merchants/{merchant}/fee-invoices", {"currency": "USD"}, 400, "currency"),
    ("POST", "/admin/merchants/{merchant}/fee-invoices", {}, 400, "currency"),
    ("POST", "/admin/merchants/{merchant}/fee-invoices", {"currency": "CNY", "amount": 5}, 400, "amount"),
    ("POST", "/admin/merchants/mch_nobody/fee-invoices", {"currency": "CNY"}, 404, "id"),
    ("POST", "/admin/fee-invoices/{invoice}/pay", {"source": "cash"}, 400, "source"),
    ("POST", "/admin/fee-invoices/{invoice}/pay", {"source": "external", "reference": ""}, 400, "reference"),
    ("POST", "/admin/fee-invoices/finv_nothing/pay", {"source": "external"}, 404, "id"),
    ("GET", "/admin/fee-invoices/finv_nothing", None, 404, "id"),
])
async def test_bad_fee_invoice_requests_are_refused_and_change_nothing(
        api: Api, admin: Admin, pool: asyncpg.Pool, method: str, path: str, body: Any, status: int,
        param: str) -> None:
    created = await _invoiced_merchant(api, admin, payments=1)
    invoice = (await admin.call("POST", f"/admin/merchants/{created['id']}/fee-invoices", {"currency": "CNY"})).body
    before = (await balances(pool, created["id"]), await admin.call("GET", f"/admin/fee-invoices/{invoice['id']}"))
    reply = await admin.call(method, path.format(merchant=created["id"], invoice=invoice["id"]), body)
    assert reply.status == status and reply.body["error"]["param"] == param, reply.body
    after = (await balances(pool, created["id"]), await admin.call("GET", f"/admin/fee-invoices/{invoice['id']}"))
    assert after == before
    unauthorized = await admin.call("GET", f"/admin/fee-invoices/{invoice['id']}", token="wrong")
    assert unauthorized.status == 401
