"""Settlement holds back a payment while a reconciliation difference of it is open, shows what it holds and why,
pays it with the next batch once the difference is closed, and lists each batch's lines (remittance advice)
whose sums are the batch's. Entries an operator books on the merchant's pending account settle with it."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from accounts.model import AccountId, AccountKind, OverdraftMode, OverdraftRule
from accounts.rules import POSTING_RULES, build_entry, rule_for
from engine.booking import Booker
from engine.keys import ACCOUNT, new_id
from engine.merchants.store import PLATFORM_OWNER, ensure_account, find_account
from engine.settlement.store import NEVER_ON_PENDING, NOT_ADJUSTMENTS
from tests.dayend.cli import run_cli
from tests.dayend.world import World, new_ref
from tests.factories import new_txn_no
from tests.recon.days import by_reference, channel_payments, close_day, explain, open_date, table_counts

ADJUSTED = 250


def _json_in(out: str) -> Any:
    return json.JSONDecoder().raw_decode(out[out.index("{"):])[0]


async def _settle(w: World, day: date, merchant_id: str) -> dict[str, Any]:
    status, run = await w.admin("POST", "/admin/settlements", {"date": day.isoformat(), "merchant_id": merchant_id})
    assert status == 200, run
    (batch,) = run["batches"]
    return dict(batch)


async def _advice(w: World, batch_id: str, page: int) -> list[dict[str, Any]]:
    """Every line of the batch, read ``page`` lines at a time."""
    lines: list[dict[str, Any]] = []
    after = ""
    while True:
        status, body = await w.admin("GET", f"/admin/settlements/{batch_id}/payments?limit={page}{after}")
        assert status == 200, body
        lines += body["lines"]
        if body["next_after"] is None:
            return lines
        after = f"&after={body['next_after']}"


def _check_sums(batch: dict[str, Any], lines: list[dict[str, Any]]) -> None:
    payments = [x for x in lines if x["kind"] == "payment"]
    assert len(payments) == batch["payments"] and sum(x["gross"] for x in lines) == batch["gross"]
    assert sum(x["fee"] for x in lines) == batch["fees"]
    assert len([x for x in lines if x["kind"] == "refund"]) == batch["refunds"]
    assert sum(x["refunded"] for x in lines) == batch["refunded"]
    assert sum(x["refund_fee"] for x in lines) == batch["refund_fees"]
    assert len([x for x in lines if x["kind"] == "adjustment"]) == batch["adjustments"]
    assert sum(x["adjusted"] for x in lines) == batch["adjusted"]
    assert sum(x["net"] for x in lines) == batch["net"]


async def _held(w: World, merchant_id: str) -> dict[str, dict[str, Any]]:
    status, body = await w.admin("GET", f"/admin/settlements/held?merchant_id={merchant_id}")
    assert status == 200 and body["has_more"] is False, body
    return {h["payment_id"]: h for h in body["data"]}


async def _adjust_pending(w: World, merchant_id: str, amount: int) -> str:
    """An approved adjustment crediting the merchant's pending account from the adjustments expense, booked
    through the ledger's posting path as the exception desk books it."""
    async with w.pool.acquire() as conn:
        pending = await find_account(conn, merchant_id, "merchant_pending", "CNY")
        assert pending is not None
        expense = await ensure_account(conn, PLATFORM_OWNER, "adjustments", "CNY", AccountKind.INTERNAL, False,
                                       OverdraftRule(OverdraftMode.UNLIMITED), new_id(ACCOUNT))
    txn_no = new_txn_no()
    await Booker(w.pool).book(build_entry("ADJUST", txn_no, await open_date(w), "CNY",
                                          {"adjustments": expense, "target": AccountId(pending.id)},
                                          {"amount": amount}, ref="test-adjustment"))
    return txn_no


async def _available(w: World, merchant_id: str) -> int:
    async with w.pool.acquire() as conn:
        return int(await conn.fetchval("SELECT balance FROM accounts WHERE owner_id = $1 AND role = "
                                       "'merchant_available'", merchant_id))


async def test_open_differences_hold_payments_back_until_they_are_closed(world: World) -> None:
    w = world
    client = await w.merchant(100, 10)
    merchant = client.merchant_id
    status, _ = await w.admin("PUT", f"/admin/merchants/{merchant}/settlement-cycle", {"cycle_days": 0})
    assert status == 200
    day = await open_date(w)
    customer = (await client.create_customer(new_ref("cus"))).body["id"]
    assert (await client.topup(customer, 100_000, new_ref("tu"))).status == 201
    wallet = await client.create_payment({"merchant_order_no": new_ref("o"), "amount": 8_000, "currency": "CNY",
                                          "method": "wallet", "customer_id": customer})
    assert wallet.status == 201, wallet.body
    refund = await client.refund(wallet.body["id"], 2_000, new_ref("rf"))
    assert refund.status == 201 and refund.body["status"] == "succeeded", refund.body
    paid = await channel_payments(w, client, "wxsim", [1_000, 3_973, 27_921, 4_400])
    mismatched, short = paid[1], paid[2]
    await w.seed("wxsim", day, missing=[short.txn_no], amount_mismatch={mismatched.txn_no: 3_000})
    await close_day(w, day)
    status, run = await w.admin("POST", "/admin/reconciliations", {"channel": "wxsim", "date": day.isoformat()})
    assert status == 201 and run["counts"] == {"matched": 2, "short": 1, "amount_mismatch": 1}, run

    first = await _settle(w, day, merchant)
    lines = await _advice(w, first["id"], 2)
    settled = {x["payment_id"] for x in lines if x["kind"] == "payment"}
    assert settled == {wallet.body["id"], paid[0].id, paid[3].id}
    assert {x["id"] for x in lines if x["kind"] == "refund"} == {refund.body["id"]}
    assert next(x for x in lines if x["kind"] == "refund")["payment_id"] == wallet.body["id"]
    assert all(x["merchant_order_no"] for x in lines)
    _check_sums(first, lines)

    held = await _held(w, merchant)
    items = by_reference(run)
    assert set(held) == {mismatched.id, short.id}
    assert (held[mismatched.id]["reason"], held[mismatched.id]["outcome"], held[mismatched.id]["their_amount"],
            held[mismatched.id]["recon_item_id"], held[mismatched.id]["recon_run_id"]) == (
        "recon_item_open", "amount_mismatch", 3_000, items[mismatched.txn_no]["id"], run["id"])
    assert (held[short.id]["outcome"], held[short.id]["state"], held[short.id]["net"]) == (
        "short", "open", short.amount - short.fee)
    status, page = await w.admin("GET", f"/admin/settlements/held?merchant_id={merchant}&limit=1")
    assert status == 200 and page["has_more"] is True and [h["payment_id"] for h in page["data"]] == [min(held)]
    code, out = await run_cli(w, "settlement", "held", "--merchant", merchant)
    assert code == 0 and {h["payment_id"]: h for h in _json_in(out)["data"]} == held, out

    # The channel sends a corrected file with the short payment; an operator closes the amount difference; the
    # desk books an approved adjustment on the merchant's pending account.
    next_day = await open_date(w)
    await w.seed("wxsim", day, amount_mismatch={mismatched.txn_no: 3_000})
    status, rerun = await w.admin("POST", "/admin/reconciliations/reruns",
                                  {"channel": "wxsim", "date": day.isoformat(), "operator": "carol"})
    assert status == 201 and rerun["counts"] == {"matched": 3, "amount_mismatch": 1}, rerun
    assert set(await _held(w, merchant)) == {mismatched.id}  # the short is matched now; the amount is still open
    carried = by_reference(rerun)[mismatched.txn_no]
    status, _ = await explain(w, carried["id"], "the channel confirmed our amount")
    assert status == 200
    assert await _held(w, merchant) == {}
    adjustment = await _adjust_pending(w, merchant, ADJUSTED)
    await close_day(w, next_day)

    second = await _settle(w, next_day, merchant)
    lines = await _advice(w, second["id"], 500)
    assert {x["payment_id"] for x in lines if x["kind"] == "payment"} == {mismatched.id, short.id}
    assert [(x["id"], x["adjusted"]) for x in lines if x["kind"] == "adjustment"] == [(adjustment, ADJUSTED)]
    _check_sums(second, lines)
    assert second["net"] == mismatched.amount - mismatched.fee + short.amount - short.fee + ADJUSTED
    assert await _available(w, merchant) == first["net"] + second["net"]
    code, out = await run_cli(w, "settlement", "advice", second["id"], "--limit", "2")
    assert code == 0, out
    page = _json_in(out)
    assert page["batch"]["net"] == second["net"] and page["lines"] == lines[:2] and page["next_after"] == lines[1]["id"]
    code, out = await run_cli(w, "settlement", "advice", "stl_nosuchbatch")
    assert code == 1 and "resource_missing" in out, out
    code, out = await run_cli(w, "settlement", "held", "--limit", "0")
    assert code == 2 and "parameter_invalid" in out, out
    async with w.pool.acquire() as conn:  # what settled left nothing of these payments in the pending account
        pending = await conn.fetchval("SELECT balance FROM accounts WHERE owner_id = $1 AND role = 'merchant_pending'",
                                      merchant)
    assert pending == 0


async def test_bad_settlement_reads_are_refused_and_write_nothing(world: World) -> None:
    w = world
    before = await table_counts(w)
    for path in ("/admin/settlements/stl_nosuchbatch/payments", "/admin/settlements/held?merchant_id=m_nosuch"):
        status, body = await w.admin("GET", path)
        assert status == (404 if "payments" in path else 200), body
    for query in ("limit=0", "limit=1001", "merchant_id=bad!", "colour=red", "limit=x"):
        status, body = await w.admin("GET", f"/admin/settlements/held?{query}")
        assert status == 400 and body["error"]["type"] == "invalid_request_error", (query, body)
        advice_query = query.replace("merchant_id", "after")
        status, body = await w.admin("GET", f"/admin/settlements/stl_x/payments?{advice_query}")
        assert status == 400, (query, body)
    assert await table_counts(w) == before


def test_the_index_of_other_entries_lists_the_codes_settlement_reads_apart() -> None:
    sql = (Path(__file__).parents[2] / "engine/migrations/084_settlement_adjustments.sql").read_text()
    listed = sql.split("NOT IN (", 1)[1].split(")", 1)[0]
    assert [c.strip().strip("'") for c in listed.replace("\n", " ").split(",")] == list(NOT_ADJUSTMENTS)


def test_codes_left_out_as_never_on_pending_name_no_merchant_pending_role() -> None:
    for code in NEVER_ON_PENDING:
        assert "merchant_pending" not in rule_for(code).roles, code
    for code in NOT_ADJUSTMENTS:  # every code left out exists: a renamed code would silently become an adjustment
        assert code in POSTING_RULES, code
