"""A scripted day through the real engine: wallet payments and refunds, channel payments over two
simulated channels with seeded statement discrepancies, then day-end, reconciliation and settlement,
each run twice, and the next day's statement clearing a cut-off suspect.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pytest

from engine.client import PayEngineClient
from engine.merchants.pricing import fee_refunded_after
from tests.conftest import Servers
from tests.dayend.conftest import Db
from tests.dayend.world import CHANNELS, Paid, World, bounded, new_ref, running_world

WALLET_PAYMENTS_PER_MERCHANT = 350
CHANNEL_PAYMENTS_PER_CHANNEL = 130
CHANNEL_REFUNDS_PER_CHANNEL = 6
CONCURRENCY = 8  # per merchant and per channel: 40 requests in flight in all


@dataclass
class Seeds:
    missing: list[str]
    amount_mismatch: dict[str, int]
    status_mismatch: list[str]
    unnotified: list[Paid]
    late: Paid | None = None  # paid at the channel after we closed it: the gateway books and auto-refunds it
    extra: int = 2
    garbage_lines: int = 4


@dataclass
class Script:
    day: date
    merchants: dict[str, PayEngineClient]
    cycles: dict[str, int]
    payments: list[Paid] = field(default_factory=list)
    seeds: dict[str, Seeds] = field(default_factory=dict)


@pytest.fixture(scope="module")
async def world(servers: Servers, db: Db) -> AsyncIterator[World]:
    async with running_world(db.url, servers.redis_url, db.pool) as w:
        yield w


async def _wallet_payments(w: World, client: PayEngineClient, rng: random.Random) -> list[Paid]:
    customers = []
    for _ in range(12):
        created = await client.create_customer(new_ref("cus"))
        assert created.status == 201, created.body
        funded = await client.topup(created.body["id"], 50_000_000, new_ref("tu"))
        assert funded.status == 201, funded.body
        customers.append(created.body["id"])
    amounts = [rng.randint(100, 90_000) for _ in range(WALLET_PAYMENTS_PER_MERCHANT)]

    async def pay(i: int) -> Paid:
        r = await client.create_payment({"merchant_order_no": new_ref("o"), "amount": amounts[i], "currency": "CNY",
                                         "method": "wallet", "customer_id": customers[i % len(customers)]})
        assert r.status == 201 and r.body["status"] == "succeeded", r.body
        return Paid(r.body["id"], r.body["txn_no"], client.merchant_id, amounts[i], r.body["fee"], "wallet")

    paid = await bounded(CONCURRENCY, [lambda i=i: pay(i) for i in range(len(amounts))])
    refunded = [p for p in paid if rng.random() < 0.15]

    async def refund(p: Paid) -> None:
        full = rng.random() < 0.3
        parts = [p.amount] if full else [p.amount // 3, p.amount // 4]
        done = 0
        for part in parts:
            r = await client.refund(p.id, part, new_ref("rf"))
            assert r.status == 201 and r.body["status"] == "succeeded", r.body
            share = fee_refunded_after(p.fee, p.amount, done + part) - fee_refunded_after(p.fee, p.amount, done)
            p.refunds.append((part, share))
            done += part

    await bounded(CONCURRENCY, [lambda p=p: refund(p) for p in refunded])
    return paid


async def _channel_payment(w: World, client: PayEngineClient, channel: str, amount: int, notified: bool,
                           customer_id: str | None = None) -> Paid:
    extra = {} if customer_id is None else {"customer_id": customer_id}  # a customer: a wallet to re-route to
    r = await client.create_payment({"merchant_order_no": new_ref("c"), "amount": amount, "currency": "CNY",
                                     "method": "channel", "channel": channel, **extra})
    assert r.status == 201, r.body
    payment_id = r.body["id"]
    body: dict[str, Any] = {}

    async def voucher_ready() -> bool:
        nonlocal body
        body = (await client.get_payment(payment_id)).body
        return bool(body["voucher"]["status"] != "pending")

    await w.eventually(voucher_ready)
    assert body["voucher"]["status"] == "ready", body
    await w.sim(channel, "POST", "/sim/pay", {"pay_url": body["voucher"]["pay_url"]})
    if notified:
        async def succeeded() -> bool:
            return bool((await client.get_payment(payment_id)).body["status"] == "succeeded")
        await w.eventually(succeeded)
    return Paid(payment_id, body["txn_no"], client.merchant_id, amount, body["fee"], "channel", channel)


async def _channel_refund(w: World, client: PayEngineClient, p: Paid) -> None:
    """A partial refund carried out at the channel by the gateway (REFUND_CHANNEL on success)."""
    part = p.amount // 2
    r = await client.refund(p.id, part, new_ref("rf"))
    assert r.status == 201 and r.body["status"] == "pending", r.body
    refund_id = r.body["id"]

    async def succeeded() -> bool:
        return bool((await client.get_refund(refund_id)).body["status"] == "succeeded")

    await w.eventually(succeeded)
    p.refunds.append((part, fee_refunded_after(p.fee, p.amount, part)))


async def _close_after_paid(w: World, client: PayEngineClient, p: Paid) -> None:
    """The merchant closes a payment the payer has just paid: a late success, refunded automatically."""
    closed = await client.close_payment(p.id)
    assert closed.status == 200 and closed.body["status"] == "closed", closed.body

    async def refunded() -> bool:
        async with w.pool.acquire() as conn:
            status = await conn.fetchval("SELECT refund_status FROM exceptions WHERE payment_id = $1", p.id)
        return bool(status == "succeeded")

    await w.eventually(refunded)


async def _build_day(w: World) -> Script:
    m1, m2, m3 = await w.merchant(60, 0), await w.merchant(100, 10), await w.merchant(30, 5, hot=True)
    status, _ = await w.admin("PUT", f"/admin/merchants/{m2.merchant_id}/settlement-cycle", {"cycle_days": 0})
    assert status == 200
    async with w.pool.acquire() as conn:
        day = await conn.fetchval("SELECT open_date FROM accounting_calendar")
    script = Script(day, {m.merchant_id: m for m in (m1, m2, m3)}, {m1.merchant_id: 1, m2.merchant_id: 0,
                                                                    m3.merchant_id: 1})
    clients = [m1, m2, m3]

    async def channel_day(channel: str) -> list[Paid]:
        jobs = [lambda i=i: _channel_payment(w, clients[i % 3], channel, rngs[channel].randint(100, 60_000), True)
                for i in range(CHANNEL_PAYMENTS_PER_CHANNEL)]
        paid = await bounded(CONCURRENCY, jobs)
        await bounded(CONCURRENCY, [lambda p=p: _channel_refund(w, script.merchants[p.merchant_id], p)
                                    for p in paid[10:10 + CHANNEL_REFUNDS_PER_CHANNEL]])
        # Paid at the channel while its notify never comes: only the statement can tell us (long → 补单).
        await w.sim(channel, "PUT", "/sim/admin/faults", {"no_notify_rate": 1.0})
        unnotified = [await _channel_payment(w, clients[i], channel, 4_321 + i, False) for i in range(2)]
        late = await _channel_payment(w, clients[2], channel, 5_000, False)
        await w.sim(channel, "PUT", "/sim/admin/faults", {"no_notify_rate": 0.0})
        await _close_after_paid(w, clients[2], late)
        seeds = Seeds(missing=[paid[0].txn_no, paid[1].txn_no], amount_mismatch={paid[2].txn_no: paid[2].amount + 7},
                      status_mismatch=[paid[3].txn_no], unnotified=unnotified, late=late)
        await w.seed(channel, day, missing=seeds.missing, amount_mismatch=seeds.amount_mismatch,
                     status_mismatch=seeds.status_mismatch, extra=seeds.extra, garbage_lines=seeds.garbage_lines)
        script.seeds[channel] = seeds
        return paid + unnotified

    rngs = {c: random.Random(c) for c in CHANNELS}
    started = time.monotonic()
    days = await asyncio.gather(*(_wallet_payments(w, c, random.Random(c.merchant_id)) for c in clients),
                                *(channel_day(c) for c in CHANNELS))
    script.payments = [p for paid in days for p in paid]
    print(f"scripted day: {len(script.payments)} payments, {sum(len(p.refunds) for p in script.payments)} refunds"
          f" in {time.monotonic() - started:.1f}s", file=sys.stderr)
    return script


async def _ledger_fingerprint(w: World) -> tuple[int, int, int, int]:
    async with w.pool.acquire() as conn:
        r = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM journal_entries) AS entries, (SELECT count(*) FROM journal_legs) AS legs,"
            " (SELECT count(*) FROM settlement_batches) AS batches, (SELECT count(*) FROM recon_items) AS items")
    return (r["entries"], r["legs"], r["batches"], r["items"])


def _by_txn(script: Script) -> dict[str, Paid]:
    return {p.txn_no: p for p in script.payments}


async def _check_recon(w: World, script: Script, channel: str) -> dict[str, Any]:
    seeds = script.seeds[channel]
    status, run = await w.admin("POST", "/admin/reconciliations", {"channel": channel, "date": script.day.isoformat()})
    assert status == 201, run
    ours = [p for p in script.payments if p.channel == channel]
    notified = len(ours) - len(seeds.unnotified)
    exceptions = len(seeds.missing) + len(seeds.amount_mismatch) + len(seeds.status_mismatch)
    matched = notified - exceptions + CHANNEL_REFUNDS_PER_CHANNEL + 2  # + the late success and its auto-refund
    assert run["counts"] == {"matched": matched, "short": len(seeds.missing),
                             "amount_mismatch": 1, "status_mismatch": 1, "long": seeds.extra + 2}, run["counts"]
    found = {(e["outcome"], e["reference"]): e for e in run["exceptions"]}
    for txn in seeds.missing:
        assert found[("short", txn)]["action"] == "suspect" and found[("short", txn)]["state"] == "open"
    (mismatched, reported), = seeds.amount_mismatch.items()
    assert found[("amount_mismatch", mismatched)]["their_amount"] == reported
    assert found[("status_mismatch", seeds.status_mismatch[0])]["their_status"] == "closed"
    for p in seeds.unnotified:
        item = found[("long", p.txn_no)]
        assert (item["action"], item["state"], item["payment_id"]) == ("supplement", "resolved", p.id)
    unknown = [e for (outcome, _), e in found.items() if outcome == "long" and e["payment_id"] is None]
    assert len(unknown) == seeds.extra and all(e["action"] == "investigate" for e in unknown)
    assert len(found) == exceptions + seeds.extra + 2
    assert seeds.late is not None and ("long", seeds.late.txn_no) not in found  # handled by the gateway
    assert len(run["malformed"]) == seeds.garbage_lines and all(m["line_no"] > 1 for m in run["malformed"])
    # Summary level: the file's successes vs ours for the day, and the difference explained line by line.
    totals = run["summary"]["totals"]["payment"]
    by_txn = _by_txn(script)
    expected_difference = (sum(100 + i for i in range(seeds.extra)) + sum(p.amount for p in seeds.unnotified) + 7
                           + seeds.late.amount
                           - sum(by_txn[t].amount for t in seeds.missing)
                           - sum(by_txn[t].amount for t in seeds.status_mismatch))
    assert totals["our_count"] == notified and totals["difference"] == expected_difference, totals
    refunds = run["summary"]["totals"]["refund"]
    assert refunds["our_count"] == refunds["file_count"] == CHANNEL_REFUNDS_PER_CHANNEL + 1  # + the auto-refund
    assert refunds["difference"] == 0
    for p in seeds.unnotified:  # the strategy's action: the success is booked now
        got = await script.merchants[p.merchant_id].get_payment(p.id)
        assert got.body["status"] == "succeeded"
    return run


def _net(p: Paid) -> int:
    return p.amount - p.fee


def _due(script: Script, settle_date: date, reconciled: set[str]) -> dict[str, int]:
    """What each merchant should have been paid by ``settle_date``, from the script alone."""
    held = {t for s in script.seeds.values() for t in (*s.amount_mismatch, *s.status_mismatch, *s.missing)}
    supplemented = {p.txn_no for s in script.seeds.values() for p in s.unnotified}
    out: dict[str, int] = {m: 0 for m in script.merchants}
    for p in script.payments:
        booked_on = script.day + timedelta(days=1) if p.txn_no in supplemented else script.day
        if booked_on > settle_date - timedelta(days=script.cycles[p.merchant_id]):
            continue
        if p.txn_no in held and p.txn_no not in reconciled:
            continue
        out[p.merchant_id] += _net(p) - sum(a - f for a, f in p.refunds)
    return out


async def _settled(w: World) -> dict[str, int]:
    async with w.pool.acquire() as conn:
        rows = await conn.fetch("SELECT merchant_id, sum(net) AS net FROM settlement_batches GROUP BY 1")
        available = await conn.fetch("SELECT owner_id, balance FROM accounts WHERE role = 'merchant_available'")
    settled = {r["merchant_id"]: int(r["net"]) for r in rows}
    assert settled == {r["owner_id"]: r["balance"] for r in available if r["owner_id"] in settled}
    return settled


async def test_scripted_day(world: World) -> None:
    w = world
    script = await _build_day(w)
    day, next_day = script.day, script.day + timedelta(days=1)

    # Day-end: switch, drain the buffers (fee income and transit are hot), trial balance, snapshots.
    status, closed = await w.admin("POST", "/admin/day-end", {"date": day.isoformat(), "force": True})
    assert status == 200 and closed["status"] == "done", closed
    report = closed["report"]
    assert report["trial_balance"] == "ok" and report["offending_count"] == 0 and report["buffered_legs"] == 0
    assert all(c["balanced"] for c in report["currencies"])
    before = await _ledger_fingerprint(w)
    status, again = await w.admin("POST", "/admin/day-end", {"date": day.isoformat(), "force": True})
    assert status == 200 and again == closed and await _ledger_fingerprint(w) == before

    # Reconciliation of both channels: exactly the seeded discrepancies, strategy applied; twice = once.
    runs = {channel: await _check_recon(w, script, channel) for channel in CHANNELS}
    fingerprint = await _ledger_fingerprint(w)
    for channel in CHANNELS:
        status, rerun = await w.admin("POST", "/admin/reconciliations", {"channel": channel, "date": day.isoformat()})
        assert status == 201 and rerun["id"] == runs[channel]["id"] and rerun["counts"] == runs[channel]["counts"]
        status, got = await w.admin("GET", f"/admin/reconciliations/{rerun['id']}")
        assert status == 200 and got["counts"] == rerun["counts"]
    assert await _ledger_fingerprint(w) == fingerprint

    # Settlement of the closed day: D+0 merchants now; twice changes nothing.
    status, first = await w.admin("POST", "/admin/settlements", {"date": day.isoformat()})
    assert status == 200, first
    assert await _settled(w) == {m: v for m, v in _due(script, day, set()).items() if v}
    fingerprint = await _ledger_fingerprint(w)
    status, second = await w.admin("POST", "/admin/settlements", {"date": day.isoformat()})
    assert status == 200 and second["created"] == 0 and second["batches"] == first["batches"]
    assert await _ledger_fingerprint(w) == fingerprint

    # Next day: the channel books one "missing" payment on its next statement (a cut-off difference).
    late = script.seeds["wxsim"].missing[0]
    order = w.sims["wxsim"].runtime.store.orders[late]
    assert order.paid_at is not None
    order.paid_at = order.paid_at.replace(year=next_day.year, month=next_day.month, day=next_day.day, hour=0,
                                          minute=0, second=3)
    status, closed_next = await w.admin("POST", "/admin/day-end", {"force": True})
    assert status == 200 and closed_next["accounting_date"] == next_day.isoformat(), closed_next
    for channel in CHANNELS:
        status, run = await w.admin("POST", "/admin/reconciliations", {"channel": channel,
                                                                      "date": next_day.isoformat()})
        assert status == 201, run
        # Supplements booked today were reconciled on yesterday's file: no false suspects today.
        assert run["counts"] == ({"matched": 1} if channel == "wxsim" else {}), run["counts"]
        assert run["summary"]["cleared_earlier_suspects"] == (1 if channel == "wxsim" else 0)
    status, old = await w.admin("GET", f"/admin/reconciliations/{runs['wxsim']['id']}")
    states = {e["reference"]: e["state"] for e in old["exceptions"] if e["outcome"] == "short"}
    assert states == {late: "cleared", script.seeds["wxsim"].missing[1]: "open"}

    status, settled_next = await w.admin("POST", "/admin/settlements", {"date": next_day.isoformat()})
    assert status == 200, settled_next
    assert await _settled(w) == {m: v for m, v in _due(script, next_day, {late}).items() if v}
    held = [t for s in script.seeds.values() for t in (*s.amount_mismatch, *s.status_mismatch)]
    async with w.pool.acquire() as conn:
        leaked = await conn.fetchval(
            "SELECT count(*) FROM settlement_items s JOIN payments p ON p.id = s.object_id"
            " WHERE p.txn_no = ANY($1::text[])", held)
    assert leaked == 0  # exception orders wait

    # An operator handles the amount mismatch; the order settles with the next closed day.
    (mismatched, _), = script.seeds["wxsim"].amount_mismatch.items()
    item = next(e for e in runs["wxsim"]["exceptions"] if e["reference"] == mismatched)
    status, _ = await w.admin("POST", f"/admin/reconciliations/items/{item['id']}/resolve",
                              {"action": "explain", "operator": "ops.li", "note": "channel confirmed our amount"})
    assert status == 200
    status, body = await w.admin("POST", f"/admin/reconciliations/items/{item['id']}/resolve",
                                 {"action": "explain", "operator": "ops.li", "note": "again"})
    assert status == 409, body
    status, closed_third = await w.admin("POST", "/admin/day-end", {"force": True})
    assert status == 200 and closed_third["report"]["trial_balance"] == "ok", closed_third
    third = next_day + timedelta(days=1)
    status, _ = await w.admin("POST", "/admin/settlements", {"date": third.isoformat()})
    assert status == 200
    assert await _settled(w) == {m: v for m, v in _due(script, third, {late, mismatched}).items() if v}
