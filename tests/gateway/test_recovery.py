"""Unknown outcomes and crashed workers: a timeout is queried before retrying, never a second channel order;
a job whose worker died is taken again; `refresh_payment` (GET ?sync=true) applies a missed success."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

from engine.gateway.metrics import CHANNEL_CALLS
from engine.gateway.outcomes import Verdict
from engine.gateway.refresh import refresh_payment
from engine.keys import PAYMENT, VOUCHER, new_id
from engine.payments.store import Job, NewPayment, Transition, insert_payment
from engine.services import SERVICES
from tests.factories import new_txn_no
from tests.gateway.conftest import Gw


def _calls(channel: str, operation: str, outcome: str) -> float:
    value: float = CHANNEL_CALLS.labels(channel, operation, outcome)._value.get()
    return value


async def _order_status(gw: Gw, payment_id: str, channel: str) -> str | None:
    async with gw.pool.acquire() as conn:
        status: str | None = await conn.fetchval(
            "SELECT status FROM channel_orders WHERE payment_id = $1 AND channel = $2", payment_id, channel)
        return status


async def test_timed_out_create_is_queried_then_completed_without_a_second_channel_order(gw: Gw) -> None:
    client = await gw.merchant()
    timeouts_before, queries_before = _calls("wxsim", "create_voucher", "timeout"), _calls("wxsim", "query", "ok")
    # Exactly one lost answer: the order is made, its answer never comes; the queries after it work.
    # (A rate of 1.0 left on until the order shows 'unknown' would also hang the queries in between,
    # and on a slow machine open the breaker, so that the payment fails over to banksim.)
    await gw.set_faults("wxsim", hang_next_creates=1)
    try:
        created = await gw.channel_payment(client, channel="wxsim")
        ready = await gw.wait_payment(client, created["id"], lambda p: p["voucher"]["status"] != "pending")
    finally:
        await gw.set_faults("wxsim")
        gw.forget_channel_health()  # the timeout must not demote wxsim for the tests after this one
    assert ready["voucher"]["status"] == "ready" and ready["voucher"]["channel"] == "wxsim"
    assert _calls("wxsim", "create_voucher", "timeout") == timeouts_before + 1
    assert _calls("wxsim", "query", "ok") > queries_before  # asked before creating again
    sim_orders = [o for o in gw.sims["wxsim"].runtime.store.orders.values() if o.out_trade_no == ready["txn_no"]]
    assert len(sim_orders) == 1 and ready["voucher"]["pay_url"].endswith(sim_orders[0].channel_order_id)
    assert await _order_status(gw, created["id"], "wxsim") == "created"


async def test_job_of_a_dead_worker_is_taken_again_after_its_lease(gw: Gw) -> None:
    client = await gw.merchant()
    now = datetime.now(UTC)
    payment_id, voucher_id = new_id(PAYMENT), new_id(VOUCHER)
    row = NewPayment(payment_id, client.merchant_id, "ord-" + uuid.uuid4().hex, 3100, "CNY", "channel", "banksim",
                     None, "pending_voucher", 19, new_txn_no(), None, {}, now + timedelta(minutes=15), now, voucher_id)
    async with gw.pool.acquire() as conn, conn.transaction():
        await insert_payment(conn, row, Transition("created", "pending_voucher", "channel_order_created"),
                             Job("create_voucher", voucher_id, json.dumps({"payment_id": payment_id}).encode()),
                             None, None)
        # As if a worker took it and died: running, lease already over.
        await conn.execute("UPDATE jobs SET status = 'running', locked_by = 'dead-worker',"
                           " locked_until = now() - interval '1 second' WHERE kind = 'create_voucher' AND ref_id = $1",
                           voucher_id)
    ready = await gw.wait_payment(client, payment_id, lambda p: p["voucher"]["status"] != "pending")
    assert ready["voucher"]["status"] == "ready" and ready["voucher"]["channel"] == "banksim"


async def test_refresh_payment_applies_a_success_the_notify_never_brought(gw: Gw) -> None:
    client = await gw.merchant()
    # Both channels drop notifies: on a loaded machine the router may fail a slow wxsim over to banksim.
    for channel in ("wxsim", "banksim"):
        await gw.set_faults(channel, no_notify_rate=1.0)
    try:
        ready = await gw.ready_payment(client, channel="wxsim")
        await gw.pay(ready["voucher"]["channel"], ready["voucher"]["pay_url"])
    finally:
        for channel in ("wxsim", "banksim"):
            await gw.set_faults(channel)
    assert await refresh_payment(gw.app[SERVICES].gateway, ready["id"]) is Verdict.BOOKED
    got = await client.get_payment(ready["id"])
    assert got.body["status"] == "succeeded"
    assert await refresh_payment(gw.app[SERVICES].gateway, ready["id"]) is None  # final now: nothing to ask
    assert await gw.entries(ready["id"]) == ["PAY_CHANNEL"]
