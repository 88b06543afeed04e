"""The operator's day of the exception desk, end to end (issue 20): one accounting day of wallet and channel
payments, refunds, a transfer and a payout; a channel refund the channel refuses, re-routed to the customer's
wallet; day-end; reconciliation (`payengine reconcile`) against the simulator's statement with four seeded
differences (a long, a short, an amount mismatch, a status mismatch) plus the refund the channel made behind our
back; each difference closed by an action two operators carry out; settlement. Then reversals of a payment
before and after it settled. Real PostgreSQL, Redis, channel simulators and HTTP; nothing mocked.

Every expected figure is computed here from the amounts and the merchant's price (60 bps, half up), never read
back from the engine first.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import uuid
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import pytest

from accounts.store import trial_balance
from channels.protocol import RefundRequest
from channels.sim.statement import extra_out_trade_no
from engine.cli.main import main
from engine.client import PayEngineClient
from engine.gateway.context import build_channels
from tests.conftest import Servers
from tests.dayend.cli import run_cli
from tests.dayend.conftest import Db, db
from tests.dayend.world import ADMIN_TOKEN, Paid, World, new_ref, running_world
from tests.desk.desk import flushed, who
from tests.recon.days import channel_payments, close_day, open_date
from tests.recon.test_runs import _json_in

__all__ = ["db"]

CHANNEL = "wxsim"
FEE_BPS = 60
GOOD_CARD = "4111111111111111"


@pytest.fixture(scope="module")
async def world(servers: Servers, db: Db) -> AsyncIterator[World]:
    async with running_world(db.url, servers.redis_url, db.pool) as w:
        yield w


def fee(amount: int) -> int:
    """The merchant's price: 60 bps of the amount, half up, no fixed part."""
    return (amount * FEE_BPS + 5_000) // 10_000


def fee_share(amount: int, refunded: int) -> int:
    """The fee returned once ``refunded`` of a payment of ``amount`` is refunded (proportional, half up)."""
    return (2 * fee(amount) * refunded + amount) // (2 * amount)


def net(amount: int) -> int:
    return amount - fee(amount)


async def _merchant(w: World) -> PayEngineClient:
    client = await w.merchant(FEE_BPS, 0)
    status, _ = await w.admin("PUT", f"/admin/merchants/{client.merchant_id}/settlement-cycle", {"cycle_days": 0})
    assert status == 200
    return client


async def _customer(client: PayEngineClient, funded: int) -> str:
    created = await client.create_customer(new_ref("cus"))
    assert created.status == 201, created.body
    if funded:
        topped = await client.topup(created.body["id"], funded, new_ref("tu"))
        assert topped.status == 201, topped.body
    customer: str = created.body["id"]
    return customer


async def _wallet_payment(client: PayEngineClient, customer: str, amount: int) -> dict[str, Any]:
    paid = await client.create_payment({"merchant_order_no": new_ref("o"), "amount": amount, "currency": "CNY",
                                        "method": "wallet", "customer_id": customer})
    assert paid.status == 201 and paid.body["status"] == "succeeded", paid.body
    assert paid.body["fee"] == fee(amount), paid.body
    body: dict[str, Any] = paid.body
    return body


def _date_sim_refunds(w: World, out_trade_no: str, day: date) -> None:
    """The simulator's statement of a date lists the refunds made that calendar day; ours is the open date."""
    for refund in w.sims[CHANNEL].runtime.store.orders[out_trade_no].refunds:
        refund.created_at = refund.created_at.replace(year=day.year, month=day.month, day=day.day)


async def _channel_refund(w: World, client: PayEngineClient, p: Paid, amount: int) -> str:
    asked = await client.refund(p.id, amount, new_ref("rf"))
    assert asked.status == 201 and asked.body["status"] == "pending", asked.body
    refund_id: str = asked.body["id"]

    async def succeeded() -> bool:
        return bool((await client.get_refund(refund_id)).body["status"] == "succeeded")
    await w.eventually(succeeded)
    return refund_id


async def _refused_refund(w: World, client: PayEngineClient, p: Paid, behind_our_back: int, amount: int) -> str:
    """Someone refunds ``behind_our_back`` of the payment at the channel directly; our refund of ``amount`` then
    exceeds what is left there and the channel refuses it."""
    channels = build_channels(w.settings, w.http)
    await channels[CHANNEL].adapter.refund(RefundRequest(p.txn_no, "OOB" + uuid.uuid4().hex[:20], behind_our_back,
                                                         p.amount, "CNY"))
    asked = await client.refund(p.id, amount, new_ref("rf"))
    assert asked.status == 201, asked.body
    refund_id: str = asked.body["id"]

    async def failed() -> bool:
        return bool((await client.get_refund(refund_id)).body["status"] == "failed")
    await w.eventually(failed)
    return refund_id


async def _payout(w: World, client: PayEngineClient, customer: str, amount: int) -> str:
    made = await client.create_payout({
        "merchant_payout_no": new_ref("po"), "amount": amount, "currency": "CNY", "source": "customer",
        "customer_id": customer, "channel": "banksim",
        "destination": {"kind": "bank_card", "number": GOOD_CARD, "holder_name": "Li Lei"}})
    assert made.status == 201, made.body
    payout_id: str = made.body["id"]

    async def succeeded() -> bool:
        return bool((await client.get_payout(payout_id)).body["status"] == "succeeded")
    await w.eventually(succeeded)
    return payout_id


async def _report(w: World, day: date) -> dict[str, Any]:
    status, report = await w.admin("GET", f"/admin/reports/day?date={day.isoformat()}")
    assert status == 200, report
    return dict(report)


def _sections(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in report["exceptions"]}


async def _resolve(w: World, item_id: int, action: str, operator: str, note: str) -> dict[str, Any]:
    status, body = await w.admin("POST", f"/admin/reconciliations/items/{item_id}/resolve",
                                 {"action": action, "operator": operator, "note": note})
    assert status == 200 and body["state"] == "resolving", body
    proposal: dict[str, Any] = body["proposal"]
    return proposal


async def _approve(w: World, proposal: dict[str, Any], operator: str) -> str:
    kind = "reversals" if proposal["kind"] == "reversal" else "adjustments"
    status, body = await w.admin("POST", f"/admin/{kind}/{proposal['id']}/approve", {"operator": operator})
    assert status == 200 and body["status"] == "approved", body
    txn_no: str = body["txn_no"]
    return txn_no


async def _drained(w: World) -> None:
    async def none_buffered() -> bool:
        return await w.buffered_legs() == 0
    await w.eventually(none_buffered)


async def _trial_balance_holds(w: World) -> None:
    await _drained(w)
    async with w.pool.acquire() as conn:
        assert (await trial_balance(conn)).holds_drained


def _statement_net(text: str) -> int:
    """What a wxsim statement says the channel holds for us: its successes less its refunds, read from the file as
    the channel wrote it (not through our parser)."""
    rows = [[field.lstrip("`") for field in row] for row in csv.reader(io.StringIO(text))]
    header = rows[0]
    lines = [dict(zip(header, row, strict=True)) for row in rows[1:] if len(row) == len(header)]
    refunds = [x for x in lines if x["trade_state"] == "REFUND" and x["refund_status"] == "SUCCESS"]
    return (sum(int(x["total_fen"]) for x in lines if x["trade_state"] == "SUCCESS")
            - sum(int(x["refund_fen"]) for x in refunds))


async def _receivable_moved(w: World, txn_nos: list[str]) -> int:
    """What these entries moved on the platform's channel receivable (debit +: what a channel owes us)."""
    async with w.pool.acquire() as conn:
        moved = await conn.fetchval(
            "SELECT coalesce(sum(l.delta), 0) FROM journal_legs l JOIN accounts a ON a.id = l.account_id"
            " WHERE a.owner_id = 'platform' AND a.role = 'channel_receivable' AND l.txn_no = ANY($1::text[])",
            txn_nos)
    return int(moved)


async def _platform_balance(w: World, role: str) -> int:
    async with w.pool.acquire() as conn:
        value = await conn.fetchval("SELECT coalesce(sum(balance), 0) FROM accounts WHERE owner_id = 'platform'"
                                    " AND role = $1 AND currency = 'CNY'", role)
    return int(value)


async def _merchant_balance(w: World, merchant_id: str, role: str) -> int:
    async with w.pool.acquire() as conn:
        return int(await conn.fetchval("SELECT balance FROM accounts WHERE owner_id = $1 AND role = $2"
                                       " AND currency = 'CNY'", merchant_id, role))


async def _settle(w: World, day: date, merchant_id: str) -> dict[str, Any]:
    status, run = await w.admin("POST", "/admin/settlements", {"date": day.isoformat(), "merchant_id": merchant_id})
    assert status == 200, run
    (batch,) = run["batches"]
    return dict(batch)


async def _advice(w: World, batch_id: str) -> list[dict[str, Any]]:
    status, body = await w.admin("GET", f"/admin/settlements/{batch_id}/payments?limit=1000")
    assert status == 200 and body["next_after"] is None, body
    lines: list[dict[str, Any]] = body["lines"]
    return lines


async def test_the_operators_exception_day(world: World, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    w = world
    client = await _merchant(w)
    merchant = client.merchant_id
    day = await open_date(w)
    alice, bob, carol = who(), who(), who()  # alice proposes, bob approves, carol re-routes the refund

    # The day. Wallet: a payment of 8,000 refunded 2,000; a transfer of 1,500 between two customers; a payout of
    # 700 to a bank card. Channel (wxsim): 1,000, 4,400 (1,200 refunded at the channel), 1,999 (a refund of 500
    # the channel refuses), 3,973, 27,921, 2,500.
    payer, payee = await _customer(client, 100_000), await _customer(client, 0)
    bought = await _wallet_payment(client, payer, 8_000)
    refunded = await client.refund(bought["id"], 2_000, new_ref("rf"))
    assert refunded.status == 201 and refunded.body["status"] == "succeeded", refunded.body
    moved = await client.create_transfer({"transfer_no": new_ref("tr"), "source": "customer", "from_customer_id": payer,
                                          "to_customer_id": payee, "amount": 1_500, "currency": "CNY"})
    assert moved.status == 201, moved.body
    payout_id = await _payout(w, client, payer, 700)

    kept, refunded_at_channel, mismatched, short, closed = await channel_payments(
        w, client, CHANNEL, [1_000, 4_400, 3_973, 27_921, 2_500])
    (rerouted,) = await channel_payments(w, client, CHANNEL, [1_999], customer_id=payee)
    for p in (kept, refunded_at_channel, mismatched, short, closed, rerouted):
        assert p.fee == fee(p.amount), p
    channel_refund = await _channel_refund(w, client, refunded_at_channel, 1_200)
    behind_our_back = 1_600
    refused = await _refused_refund(w, client, rerouted, behind_our_back, 500)
    for p in (refunded_at_channel, rerouted):
        _date_sim_refunds(w, p.txn_no, day)

    # Mid-day, the day report shows the refused refund waiting for an operator; carol sends it to the wallet.
    waiting = _sections(await _report(w, day))["failed_refunds"]
    assert (waiting["count"], [i["id"] for i in waiting["items"]]) == (1, [refused]), waiting
    status, body = await w.admin("POST", f"/admin/refunds/{refused}/reroute",
                                 {"to": "wallet", "operator": carol, "reason": "the channel refused it"})
    assert status == 200 and body["refund"]["status"] == "rerouted", body
    final = (await client.get_refund(refused)).body
    assert (final["status"], final["rerouted_to"]) == ("rerouted", "wallet"), final
    assert (await client.get_payment(rerouted.id)).body["amount_refunded"] == 500
    async with w.pool.acquire() as conn:
        events = [r["type"] for r in await conn.fetch(
            "SELECT type FROM outbox_events WHERE object_id = $1 ORDER BY created_at, id", refused)]
        wallet = await conn.fetchval("SELECT a.balance FROM customers c JOIN accounts a ON a.id = c.wallet_account_id"
                                     " WHERE c.id = $1", payee)
    assert events == ["refund.failed", "refund.rerouted"]  # the merchant hears the final outcome
    assert wallet == 1_500 + 500

    # The channel's statement of the day, falsified four ways: a success we lack (a long of 100), one we have
    # that it lacks (the short 27,921), 3,000 for our 3,973, and 2,500 reported closed though paid.
    await w.seed(CHANNEL, day, missing=[short.txn_no], amount_mismatch={mismatched.txn_no: 3_000},
                 status_mismatch=[closed.txn_no], extra=1)
    await close_day(w, day)
    channels = {"PAYENGINE_CHANNELS": f"wxsim=wxsim,{w.sims[CHANNEL].url},sim-merchant,de-wallet-key"}
    code, out = await run_cli(w, "reconcile", "--channel", CHANNEL, "--date", day.isoformat(), extra_env=channels)
    assert code == 0, out
    run = _json_in(out, '{"id"')
    by_ref = {e["reference"]: e for e in run["exceptions"]}
    long_ref = extra_out_trade_no(day, 0)
    (oob,) = [e for e in run["exceptions"] if e["kind"] == "refund"]
    assert {r: by_ref[r]["outcome"] for r in (long_ref, short.txn_no, mismatched.txn_no, closed.txn_no)} == {
        long_ref: "long", short.txn_no: "short", mismatched.txn_no: "amount_mismatch",
        closed.txn_no: "status_mismatch"}
    assert (oob["outcome"], oob["their_amount"]) == ("long", behind_our_back), oob  # the refund behind our back
    assert len(run["exceptions"]) == 5 and all(e["state"] == "open" for e in run["exceptions"])
    assert run["counts"] == {"matched": 4, "long": 2, "short": 1, "amount_mismatch": 1, "status_mismatch": 1}, run
    for item in run["exceptions"]:  # the command prints each exception with its id
        assert any(line.split()[:2] == [str(item["id"]), item["outcome"]] for line in out.splitlines()), out
    report = await _report(w, day)
    (recon,) = report["reconciliation"]
    assert (recon["id"], recon["open"]) == (run["id"], 5), recon
    before = _sections(report)
    assert before["open_recon_differences"]["count"] == 5, before
    assert {i["id"] for i in before["open_recon_differences"]["items"]} == {e["id"] for e in run["exceptions"]}
    assert before["failed_refunds"]["count"] == 0

    # Each difference closed by what happens to its money; alice proposes (one from the command line), bob
    # approves (one from the command line). Nothing is booked before the approval.
    loss, suspense = await _platform_balance(w, "adjustments"), await _platform_balance(w, "suspense")
    monkeypatch.setenv("PAYENGINE_ADMIN_TOKEN", ADMIN_TOKEN)
    capsys.readouterr()
    code = await asyncio.to_thread(main, ["recon", "resolve", str(by_ref[long_ref]["id"]), "--action", "adjust",
                                          "--note", "no order of ours explains it", "--operator", alice,
                                          "--url", w.url])
    resolving = json.loads(capsys.readouterr().out)
    assert (code, resolving["state"]) == (0, "resolving"), resolving
    proposals = {
        "short": await _resolve(w, by_ref[short.txn_no]["id"], "adjust", alice, "the channel never had it"),
        "amount": await _resolve(w, by_ref[mismatched.txn_no]["id"], "adjust", alice, "take the channel's amount"),
        "long": resolving["proposal"],
        "status": await _resolve(w, by_ref[closed.txn_no]["id"], "reverse", alice, "the payer never paid"),
        "oob": await _resolve(w, oob["id"], "adjust", alice, "refunded at the channel behind our back"),
    }
    assert {k: (p["code"], p["amount"]) for k, p in proposals.items()} == {
        "short": ("ADJ_RECON_SHORT_WRITE_OFF", 27_921), "amount": ("ADJ_RECON_SHORT_WRITE_OFF", 973),
        "long": ("ADJ_RECON_LONG_SUSPENSE", 100), "status": ("PAY_CHANNEL", 2 * 2_500),
        "oob": ("ADJ_RECON_SHORT_WRITE_OFF", behind_our_back)}
    assert (await _platform_balance(w, "adjustments"), await _platform_balance(w, "suspense")) == (loss, suspense)
    status, own = await w.admin("POST", f"/admin/adjustments/{proposals['short']['id']}/approve", {"operator": alice})
    assert (status, own["error"]["code"]) == (403, "four_eyes_required"), own
    pending_report = _sections(await _report(w, day))
    assert pending_report["open_proposals"]["count"] == 5
    waiting_items = pending_report["open_recon_differences"]["items"]  # still open: each waits for its proposal
    assert sorted(i["state"] for i in waiting_items) == ["resolving"] * 5, waiting_items

    booked = {k: await _approve(w, p, bob) for k, p in proposals.items() if k != "oob"}
    code = await asyncio.to_thread(main, ["adjustments", "approve", proposals["oob"]["id"], "--operator", bob,
                                          "--note", "ticket 4711", "--url", w.url])
    approved = json.loads(capsys.readouterr().out)
    assert (code, approved["status"], approved["decided_by"]) == (0, "approved", bob), approved
    booked["oob"] = approved["txn_no"]
    for txn_no in booked.values():
        await flushed(w.pool, txn_no)
    assert await _platform_balance(w, "adjustments") - loss == 27_921 + 973 + behind_our_back
    assert await _platform_balance(w, "suspense") - suspense == 100

    # Every difference closed exactly once; the run's live counts agree with its items.
    status, view = await w.admin("GET", f"/admin/reconciliations/{run['id']}")
    assert status == 200, view
    assert {e["id"]: (e["state"], e["resolution"]) for e in view["exceptions"]} == {
        by_ref[short.txn_no]["id"]: ("resolved", "adjust"), by_ref[mismatched.txn_no]["id"]: ("resolved", "adjust"),
        by_ref[long_ref]["id"]: ("resolved", "adjust"), by_ref[closed.txn_no]["id"]: ("resolved", "reverse"),
        oob["id"]: ("resolved", "adjust")}
    by_outcome: dict[str, dict[str, int]] = {}
    for e in view["exceptions"]:
        states = by_outcome.setdefault(e["outcome"], {})
        states[e["state"]] = states.get(e["state"], 0) + 1
    assert {k: v for k, v in view["counts_by_state"].items() if k != "matched"} == by_outcome
    assert view["counts"] == run["counts"] and view["counts_by_state"]["matched"] == {"ok": 4}
    for item in view["exceptions"]:
        status, twice = await w.admin("POST", f"/admin/reconciliations/items/{item['id']}/resolve",
                                      {"action": "explain", "operator": carol, "note": "again"})
        assert (status, twice["error"]["code"]) == (409, "not_open"), twice
    async with w.pool.acquire() as conn:
        closes = await conn.fetch("SELECT p.recon_item_id, count(*) AS n FROM desk_proposals p JOIN journal_entries e"
                                  " ON e.ref = p.id WHERE p.recon_item_id = ANY($1::bigint[]) GROUP BY 1",
                                  [e["id"] for e in view["exceptions"]])
    assert sorted(r["n"] for r in closes) == [1] * 5  # one booking per difference

    # Nothing is owed by the channel that it will never pay: what the day's wxsim entries and the desk's
    # corrections left on the channel receivable is what the channel's statement says it holds for us.
    reported = (kept.amount + refunded_at_channel.amount + 3_000 + rerouted.amount + 100  # successes it reports
                - 1_200 - behind_our_back)  # less the refunds it made
    assert _statement_net(await w.sim(CHANNEL, "GET", f"/sim/statements/{day.isoformat()}")) == reported
    async with w.pool.acquire() as conn:
        refund_txns = [r["txn_no"] for r in await conn.fetch(
            "SELECT txn_no FROM refunds WHERE payment_id = ANY($1::text[]) AND status = 'succeeded'",
            [p.id for p in (kept, refunded_at_channel, mismatched, short, closed, rerouted)])]
    day_txns = [p.txn_no for p in (kept, refunded_at_channel, mismatched, short, closed, rerouted)] + refund_txns
    assert await _receivable_moved(w, day_txns + list(booked.values())) == reported == 7_699

    # Settlement of the day: the channel payments pay what the channel confirmed (1,000 + 4,400 + 3,000 + 1,999)
    # plus what the approved adjustments moved for them (973 + 27,921); the reversed payment neither; less fees
    # and the refunds' net; plus the wallet payment less its refund.
    before_settle = await _merchant_balance(w, merchant, "merchant_available")
    batch = await _settle(w, day, merchant)
    confirmed = kept.amount + refunded_at_channel.amount + 3_000 + rerouted.amount
    adjusted = 973 + 27_921
    settled = [kept, refunded_at_channel, mismatched, short, rerouted]
    channel_gross = confirmed + adjusted
    assert channel_gross == sum(p.amount for p in settled)
    refunds_net = (1_200 - fee_share(4_400, 1_200)) + (500 - fee_share(1_999, 500)) + (2_000 - fee_share(8_000, 2_000))
    expected = channel_gross - sum(fee(p.amount) for p in settled) + net(8_000) - refunds_net
    assert expected == 43_331
    assert batch["net"] == expected, (batch, expected)
    assert (batch["gross"], batch["fees"]) == (channel_gross + 8_000, sum(fee(p.amount) for p in settled) + fee(8_000))
    lines = await _advice(w, batch["id"])
    assert {x["payment_id"] for x in lines if x["kind"] == "payment"} == {p.id for p in settled} | {bought["id"]}
    assert {x["id"] for x in lines if x["kind"] == "refund"} == {channel_refund, refused, refunded.body["id"]}
    assert sum(x["net"] for x in lines) == expected
    assert await _merchant_balance(w, merchant, "merchant_available") - before_settle == expected
    await _drained(w)
    assert await _merchant_balance(w, merchant, "merchant_pending") == 0  # nothing left behind, nothing overdrawn
    status, held = await w.admin("GET", f"/admin/settlements/held?merchant_id={merchant}")
    assert status == 200 and held["data"] == [], held
    await _trial_balance_holds(w)
    assert await _platform_balance(w, "gateway_transit") == 0  # every payment passed through it, none stuck

    # The audit trail: one row per operator action, by the operator who acted.
    async with w.pool.acquire() as conn:
        trail = [(r["operator"], r["action"], r["subject_kind"]) for r in await conn.fetch(
            "SELECT operator, action, subject_kind FROM audit_log WHERE operator = ANY($1::text[]) ORDER BY id",
            [alice, bob, carol])]
    assert trail == [(carol, "refund.reroute.wallet", "refund")] + [  # a proposal and its difference: one act
        (alice, "propose", "adjustment"), (alice, "resolve", "recon_item")] * 3 + [
        (alice, "propose", "reversal"), (alice, "resolve", "recon_item"),
        (alice, "propose", "adjustment"), (alice, "resolve", "recon_item")] + [
        (bob, "approve", "adjustment")] * 3 + [(bob, "approve", "reversal"), (bob, "approve", "adjustment")], trail
    async with w.pool.acquire() as conn:
        subjects = {(r["action"], r["subject_kind"], r["subject_id"]) for r in await conn.fetch(
            "SELECT action, subject_kind, subject_id FROM audit_log WHERE operator = ANY($1::text[])", [alice, bob])}
    assert subjects == {("resolve", "recon_item", str(e["id"])) for e in view["exceptions"]} | {
        (verb, p["kind"], p["id"]) for p in proposals.values() for verb in ("propose", "approve")}

    # The day report at the end: the day, its run with nothing open, the settlement, and no open exceptions.
    report = await _report(w, day)
    (recon,) = report["reconciliation"]
    assert recon["open"] == 0 and recon["items"] == sum(n for s in recon["counts"].values() for n in s.values())
    assert recon["counts"] == view["counts_by_state"]
    assert report["day_end"]["report"]["trial_balance"] == "ok"
    assert [b["net"] for b in report["settlement"]["batches"] if b["merchant_id"] == merchant] == [expected]
    for t in report["settlement"]["totals"]:  # the report's figures add up, adjustments included
        assert t["net"] == t["gross"] - t["fees"] - t["refunded"] + t["refund_fees"] + t["adjusted"], t
    assert {s["name"]: s["count"] for s in report["exceptions"]} == {
        "open_recon_differences": 0, "held_payouts": 0, "failed_refunds": 0, "open_proposals": 0}
    async with w.pool.acquire() as conn:  # the wallet side of the day: paid, refunded, transferred, paid out
        payer_wallet = await conn.fetchval("SELECT a.balance FROM customers c JOIN accounts a"
                                           " ON a.id = c.wallet_account_id WHERE c.id = $1", payer)
        paid_out = await conn.fetchval("SELECT amount FROM payouts WHERE id = $1 AND status = 'succeeded'", payout_id)
    assert (payer_wallet, paid_out) == (100_000 - 8_000 + 2_000 - 1_500 - 700, 700)


async def _reverse(w: World, txn_no: str, proposer: str, approver: str) -> str:
    await flushed(w.pool, txn_no)
    status, proposal = await w.admin("POST", "/admin/reversals", {"txn_no": txn_no, "reason": "booked in error",
                                                                  "operator": proposer})
    assert status == 201, proposal
    return await _approve(w, proposal, approver)


async def _wallet_refund(client: PayEngineClient, payment: dict[str, Any], amount: int) -> dict[str, Any]:
    refunded = await client.refund(payment["id"], amount, new_ref("rf"))
    assert refunded.status == 201 and refunded.body["status"] == "succeeded", refunded.body
    body: dict[str, Any] = refunded.body
    return body


async def test_a_reversal_after_settlement_is_an_arrear_and_before_it_settles_nothing(world: World) -> None:
    """Both orders, for a payment and for a refund: reversed once settled, the mirror is an adjustment of the next
    batch (a payment's an arrear, a refund's a credit back); reversed before settling, neither the original nor
    its mirror is ever in a batch."""
    w = world
    client = await _merchant(w)
    merchant = client.merchant_id
    customer = await _customer(client, 100_000)
    alice, bob = who(), who()

    first_day = await open_date(w)
    settled_then_reversed = await _wallet_payment(client, customer, 5_000)
    kept = await _wallet_payment(client, customer, 3_000)
    refund_settled_then_reversed = await _wallet_refund(client, kept, 1_000)
    refund_net = 1_000 - fee_share(3_000, 1_000)
    await close_day(w, first_day)
    first = await _settle(w, first_day, merchant)
    assert (first["payments"], first["refunds"], first["net"]) == (2, 1, net(5_000) + net(3_000) - refund_net)
    assert {x["payment_id"] for x in await _advice(w, first["id"]) if x["kind"] == "payment"} == {
        settled_then_reversed["id"], kept["id"]}

    second_day = await open_date(w)
    later = await _wallet_payment(client, customer, 6_000)
    reversed_before = await _wallet_payment(client, customer, 2_000)
    refund_reversed_before = await _wallet_refund(client, later, 1_500)
    arrear = await _reverse(w, settled_then_reversed["txn_no"], alice, bob)  # after its settlement
    credit = await _reverse(w, refund_settled_then_reversed["txn_no"], bob, alice)  # after its settlement
    mirrors = [await _reverse(w, reversed_before["txn_no"], bob, alice),  # before any settlement
               await _reverse(w, refund_reversed_before["txn_no"], alice, bob)]
    await close_day(w, second_day)
    second = await _settle(w, second_day, merchant)
    lines = await _advice(w, second["id"])
    assert {x["payment_id"] for x in lines if x["kind"] == "payment"} == {later["id"]}
    assert [x for x in lines if x["kind"] == "refund"] == []
    assert sorted((x["id"], x["adjusted"]) for x in lines if x["kind"] == "adjustment") == sorted(
        [(arrear, -net(5_000)), (credit, refund_net)])
    assert (second["payments"], second["refunds"], second["adjustments"], second["adjusted"]) == (
        1, 0, 2, refund_net - net(5_000))
    assert second["net"] == net(6_000) - net(5_000) + refund_net == 1_988
    await _drained(w)
    assert await _merchant_balance(w, merchant, "merchant_pending") == 0
    assert await _merchant_balance(w, merchant, "merchant_available") == first["net"] + second["net"] == \
        net(3_000) + net(6_000)  # what stands: the kept payment (its refund undone) and the later one
    async with w.pool.acquire() as conn:
        never = await conn.fetchval("SELECT count(*) FROM settlement_items WHERE object_id = ANY($1::text[])",
                                    [reversed_before["id"], refund_reversed_before["id"], *mirrors])
    assert never == 0
    third_day = await open_date(w)
    await close_day(w, third_day)
    status, nothing = await w.admin("POST", "/admin/settlements", {"date": third_day.isoformat(),
                                                                   "merchant_id": merchant})
    assert status == 200 and nothing["batches"] == [], nothing
    await _trial_balance_holds(w)
