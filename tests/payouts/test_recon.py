"""Payouts in reconciliation: the bank's statement lines of kind payout are matched against our payouts,
and a payout we never made is reported like a payment we never took (long, investigate)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from channels.protocol import PayoutDestination, PayoutRequest
from engine.recon.strategy import Action, Outcome, decide
from engine.services import SERVICES
from tests.factories import new_txn_no
from tests.payouts.conftest import CHANNEL, World, payout_body


def test_strategy_holds_payouts_booked_one_way_and_reported_the_other() -> None:
    assert decide(CHANNEL, "payout", "succeeded", "succeeded", True) == (Outcome.MATCHED, Action.ACCEPT)
    assert decide(CHANNEL, "payout", "succeeded", "succeeded", False) == (Outcome.AMOUNT_MISMATCH, Action.HOLD)
    assert decide(CHANNEL, "payout", "failed", "succeeded", True) == (Outcome.STATUS_MISMATCH, Action.HOLD)
    assert decide(CHANNEL, "payout", "succeeded", "failed", True) == (Outcome.STATUS_MISMATCH, Action.HOLD)
    assert decide(CHANNEL, "payout", "succeeded", "missing", None) == (Outcome.SHORT, Action.SUSPECT)
    assert decide(CHANNEL, "payout", "missing", "succeeded", None) == (Outcome.LONG, Action.INVESTIGATE)
    assert decide(CHANNEL, "payout", "failed", "failed", True) == (Outcome.MATCHED, Action.IGNORE)


async def test_payouts_reconcile_against_the_bank_statement(world: World) -> None:
    client = await world.merchant()
    customer = await world.funded_customer(client, 10_000)
    good = (await client.create_payout(payout_body(1_000, customer_id=customer))).body
    bad = (await client.create_payout(payout_body(
        500, customer_id=customer,
        destination={"kind": "bank_account", "number": "6222021000000", "holder_name": "Li Lei"}))).body
    good = await world.wait_payout(client, good["id"])
    bad = await world.wait_payout(client, bad["id"])
    assert (good["status"], bad["status"]) == ("succeeded", "failed")
    # A payout the bank made under a number of ours that we have no record of.
    stranger = new_txn_no()
    adapter = world.app[SERVICES].gateway.channels[CHANNEL].adapter
    await adapter.create_payout(PayoutRequest(stranger, 777, "CNY",
                                              PayoutDestination("bank_account", "62220299999", "Nobody")))
    assert (await world.sim_payout(stranger))[0] == 200  # settles it at the simulator

    async with world.pool.acquire() as conn:
        day = await conn.fetchval("SELECT accounting_date FROM journal_entries WHERE txn_no = $1",
                                  good["txn_no"])
    assert day == datetime.now(UTC).date() or day == datetime.now(UTC).date() - timedelta(days=1)
    status, closed = await world.admin("POST", "/admin/day-end", {"date": day.isoformat(), "force": True})
    assert status in (200, 409), closed
    status, run = await world.admin("POST", "/admin/reconciliations", {"channel": CHANNEL, "date": day.isoformat()})
    assert status == 201, run
    assert run["status"] == "done" and run["summary"]["totals"]["payout"]["file_count"] >= 2, run["summary"]
    async with world.pool.acquire() as conn:
        rows = await conn.fetch("SELECT reference, payout_id, our_status, their_status, outcome, action, state"
                                " FROM recon_items WHERE run_id = $1 AND kind = 'payout'", run["id"])
    items = {r["reference"]: r for r in rows}
    assert items[good["txn_no"]]["payout_id"] == good["id"]
    assert (items[good["txn_no"]]["outcome"], items[good["txn_no"]]["action"]) == ("matched", "accept")
    assert (items[bad["txn_no"]]["outcome"], items[bad["txn_no"]]["action"]) == ("matched", "ignore")
    assert (items[stranger]["outcome"], items[stranger]["action"], items[stranger]["state"]) == \
        ("long", "investigate", "open")
    assert any(e["reference"] == stranger and e["kind"] == "payout" for e in run["exceptions"])
