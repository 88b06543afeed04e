"""Reconciliation differences closed by what happens to their money: a short written off to the loss account, a
long booked to suspense, the channel's amount taken, a payment reversed, a difference explained; each closed
once, the adjustments only when a second operator approves, and the run's counts say so."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from accounts.store import trial_balance
from channels.sim.statement import extra_out_trade_no
from engine.cli.main import main
from engine.recon.resolution import close_superseded
from tests.conftest import Servers
from tests.dayend.conftest import Db, db
from tests.dayend.test_scripted_day import _channel_payment
from tests.dayend.world import ADMIN_TOKEN, World, running_world
from tests.desk.desk import who

__all__ = ["db"]

CHANNEL = "wxsim"


@pytest.fixture(scope="module")
async def world(servers: Servers, db: Db) -> AsyncIterator[World]:
    async with running_world(db.url, servers.redis_url, db.pool) as w:
        yield w


async def _platform_balance(w: World, role: str) -> int:
    async with w.pool.acquire() as conn:
        value = await conn.fetchval("SELECT coalesce(sum(balance), 0) FROM accounts WHERE owner_id = 'platform'"
                                    " AND role = $1 AND currency = 'CNY'", role)
    return int(value)


async def _resolve(w: World, item_id: int, action: str, operator: str,
                   note: str = "per the channel") -> tuple[int, Any]:
    return await w.admin("POST", f"/admin/reconciliations/items/{item_id}/resolve",
                         {"action": action, "operator": operator, "note": note})


async def _decide(w: World, proposal: dict[str, Any], verb: str, operator: str) -> tuple[int, Any]:
    kind = "reversals" if proposal["kind"] == "reversal" else "adjustments"
    return await w.admin("POST", f"/admin/{kind}/{proposal['id']}/{verb}", {"operator": operator})


async def _state(w: World, item_id: int) -> tuple[str, str | None]:
    async with w.pool.acquire() as conn:
        row = await conn.fetchrow("SELECT state, resolution FROM recon_items WHERE id = $1", item_id)
    return row["state"], row["resolution"]


async def test_differences_are_closed_by_money_once(world: World, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    w = world
    client = await w.merchant(60, 0)
    paid = [await _channel_payment(w, client, CHANNEL, amount, True) for amount in (2_000, 3_973, 1_500, 2_500)]
    short, mismatched, reversed_, kept = paid
    async with w.pool.acquire() as conn:
        day = await conn.fetchval("SELECT open_date FROM accounting_calendar")
    await w.seed(CHANNEL, day, missing=[short.txn_no, reversed_.txn_no], amount_mismatch={mismatched.txn_no: 3_000},
                 extra=4)
    status, closed = await w.admin("POST", "/admin/day-end", {"date": day.isoformat(), "force": True})
    assert status == 200, closed
    status, run = await w.admin("POST", "/admin/reconciliations", {"channel": CHANNEL, "date": day.isoformat()})
    assert status == 201, run
    items = {e["reference"]: e for e in run["exceptions"]}
    longs = [items[extra_out_trade_no(day, i)] for i in range(4)]
    assert {items[p.txn_no]["outcome"] for p in (short, reversed_)} == {"short"}
    assert items[mismatched.txn_no]["outcome"] == "amount_mismatch" and kept.txn_no not in items
    receivable, loss, suspense = [await _platform_balance(w, r) for r in ("channel_receivable", "adjustments",
                                                                          "suspense")]
    alice, bob = who(), who()

    # A short: the channel will never pay it. Written off to the loss account once a second operator approves.
    status, resolving = await _resolve(w, items[short.txn_no]["id"], "adjust", alice)
    assert status == 200 and resolving["state"] == "resolving", resolving
    proposal = resolving["proposal"]
    assert (proposal["code"], proposal["amount"], proposal["recon_item_id"]) == (
        "ADJ_RECON_SHORT_WRITE_OFF", 2_000, items[short.txn_no]["id"])
    status, again = await _resolve(w, items[short.txn_no]["id"], "explain", bob)
    assert (status, again["error"]["code"]) == (409, "not_open"), again
    assert await _platform_balance(w, "channel_receivable") == receivable
    status, own = await _decide(w, proposal, "approve", alice)
    assert (status, own["error"]["code"]) == (403, "four_eyes_required"), own
    status, approved = await _decide(w, proposal, "approve", bob)
    assert status == 200, approved
    assert await _state(w, items[short.txn_no]["id"]) == ("resolved", "adjust")
    async with w.pool.acquire() as conn:
        booked_on = await conn.fetchval("SELECT accounting_date FROM journal_entries WHERE txn_no = $1",
                                        approved["txn_no"])
        open_date = await conn.fetchval("SELECT open_date FROM accounting_calendar")
    assert booked_on == open_date > day  # the day-end fence dates it: the closed day's books stay closed

    # The channel reported 3,000 for our 3,973: take the channel's amount.
    status, resolving = await _resolve(w, items[mismatched.txn_no]["id"], "adjust", alice)
    assert (resolving["proposal"]["code"], resolving["proposal"]["amount"]) == ("ADJ_RECON_SHORT_WRITE_OFF", 973)
    assert (await _decide(w, resolving["proposal"], "approve", bob))[0] == 200

    # A long: money at the channel no order explains, to suspense. Rejected first: the difference reopens.
    status, resolving = await _resolve(w, longs[0]["id"], "adjust", alice)
    assert resolving["proposal"]["code"] == "ADJ_RECON_LONG_SUSPENSE", resolving
    long_amount = resolving["proposal"]["amount"]
    assert long_amount == longs[0]["their_amount"] > 0
    assert (await _decide(w, resolving["proposal"], "reject", bob))[0] == 200
    assert await _state(w, longs[0]["id"]) == ("open", None)
    status, resolving = await _resolve(w, longs[0]["id"], "adjust", alice)
    assert (await _decide(w, resolving["proposal"], "approve", bob))[0] == 200
    assert await _state(w, longs[0]["id"]) == ("resolved", "adjust")

    # Another short closed by reversing the payment's entry; a long explained; one superseded by a later file.
    status, resolving = await _resolve(w, items[reversed_.txn_no]["id"], "reverse", alice)
    assert status == 200 and resolving["proposal"]["original_txn_no"] == reversed_.txn_no, resolving
    status, approved = await _decide(w, resolving["proposal"], "approve", bob)
    assert status == 200, approved
    assert await _state(w, items[reversed_.txn_no]["id"]) == ("resolved", "reverse")
    # Explained from the command line (`payengine recon resolve`): no money moves, it closes at once.
    monkeypatch.setenv("PAYENGINE_ADMIN_TOKEN", ADMIN_TOKEN)
    code = await asyncio.to_thread(main, ["recon", "resolve", str(longs[1]["id"]), "--action", "explain", "--note",
                                          "the channel's test transaction", "--operator", alice, "--url", w.url])
    explained = json.loads(capsys.readouterr().out)
    assert (code, explained["state"], explained["proposal"]) == (0, "resolved", None)
    # Two operators resolving one difference at once: one proposal, the other refused, nothing else written.
    raced = await asyncio.gather(*(_resolve(w, longs[3]["id"], "adjust", op) for op in (alice, bob)))
    assert sorted(status for status, _ in raced) == [200, 409], raced
    async with w.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM desk_proposals WHERE recon_item_id = $1", longs[3]["id"]) == 1
    async with w.pool.acquire() as conn, conn.transaction():
        assert await close_superseded(conn, longs[2]["id"], "rcn_corrected", alice, datetime.now(UTC))
    async with w.pool.acquire() as conn, conn.transaction():
        assert not await close_superseded(conn, longs[2]["id"], "rcn_corrected", alice, datetime.now(UTC))
    assert await _state(w, longs[2]["id"]) == ("resolved", "superseded")

    # The money: what the channel will never pay left the receivable for the loss account; the long sits in
    # suspense. (The reversal's mirror credits the receivable too: the payment's entry debited it.)
    assert await _platform_balance(w, "adjustments") - loss == 2_000 + 973
    assert await _platform_balance(w, "suspense") - suspense == long_amount
    assert await _platform_balance(w, "channel_receivable") - receivable == \
        -2_000 - 973 + long_amount - reversed_.amount
    status, view = await w.admin("GET", f"/admin/reconciliations/{run['id']}")
    assert view["counts_by_state"]["short"] == {"resolved": 2}, view["counts_by_state"]
    assert view["counts_by_state"]["amount_mismatch"] == {"resolved": 1}
    assert view["counts_by_state"]["long"] == {"resolved": 3, "resolving": 1}
    for item in (items[short.txn_no], longs[1]):
        status, closed_twice = await _resolve(w, item["id"], "explain", bob)
        assert (status, closed_twice["error"]["code"]) == (409, "not_open"), closed_twice
    await w.eventually(lambda: _drained(w))
    async with w.pool.acquire() as conn:
        assert (await trial_balance(conn)).holds_drained

    # Settlement pays what the channel confirmed plus what the approved adjustments moved: the written-off short
    # and the payment taken at the channel's amount settle in full (the loss account paid the difference); the
    # reversed payment's money went back, so it is not settled.
    status, _ = await w.admin("PUT", f"/admin/merchants/{client.merchant_id}/settlement-cycle", {"cycle_days": 0})
    assert status == 200
    status, settled = await w.admin("POST", "/admin/settlements", {"date": day.isoformat()})
    assert status == 200, settled
    async with w.pool.acquire() as conn:
        paid_out = {r["object_id"] for r in await conn.fetch(
            "SELECT object_id FROM settlement_items WHERE object_id = ANY($1::text[])", [p.id for p in paid])}
    assert paid_out == {short.id, mismatched.id, kept.id}
    status, trail = await w.admin("GET", f"/admin/audit?subject_kind=recon_item&subject_id={longs[0]['id']}")
    assert [(r["action"], r["detail"]["action"]) for r in reversed(trail["data"])] == [
        ("resolve", "adjust"), ("resolve", "adjust")]


async def _drained(w: World) -> bool:
    return await w.buffered_legs() == 0


async def test_bad_resolutions_are_refused_and_write_nothing(world: World) -> None:
    w = world
    async with w.pool.acquire() as conn:
        before = await conn.fetchval("SELECT (SELECT count(*) FROM audit_log) + (SELECT count(*) FROM desk_proposals)")
    cases = [
        ("/admin/reconciliations/items/999999999/resolve", {"action": "explain", "operator": who(), "note": "x"},
         404, "resource_missing"),
        ("/admin/reconciliations/items/1/resolve", {"action": "explain", "note": "x"}, 400, "parameter_missing"),
        ("/admin/reconciliations/items/1/resolve", {"action": "flag", "operator": who(), "note": "x"},
         400, "parameter_invalid"),
        ("/admin/reconciliations/items/1/resolve", {"action": "explain", "operator": who(), "note": ""},
         400, "parameter_invalid"),
    ]
    for path, body, status, code in cases:
        got, reply = await w.admin("POST", path, body)
        assert (got, reply["error"]["code"]) == (status, code), (body, reply)
    async with w.pool.acquire() as conn:
        assert await conn.fetchval("SELECT (SELECT count(*) FROM audit_log) + (SELECT count(*) FROM desk_proposals)") \
            == before
