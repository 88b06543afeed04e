"""Channel down -> breaker opens -> next channel serves; missing notify found by the janitor; late success after
close booked and auto-refunded; expiry closes the channel order too."""

from __future__ import annotations

from typing import Any

from channels.sim.store import OrderState
from engine.payments.store import transitions_of
from tests.gateway.conftest import Gw


async def _breaker(gw: Gw, channel: str) -> str:
    status, body = await gw.admin("GET", "/admin/gateway")
    assert status == 200, body
    phase: str = body["channels"][channel]["breaker"]
    return phase


async def _channel_orders(gw: Gw, payment_id: str) -> dict[str, str]:
    async with gw.pool.acquire() as conn:
        rows = await conn.fetch("SELECT channel, status FROM channel_orders WHERE payment_id = $1", payment_id)
    return {r["channel"]: r["status"] for r in rows}


async def test_channel_down_opens_breaker_and_next_channel_serves(gw: Gw) -> None:
    client = await gw.merchant()
    await gw.set_faults("wxsim", error_rate=1.0)
    try:
        first = await gw.ready_payment(client, channel="wxsim")
        assert first["voucher"]["status"] == "ready" and first["voucher"]["channel"] == "banksim"
        # wxsim is left failed, or still 'creating' if its breaker opened before its retries ran out.
        orders = await _channel_orders(gw, first["id"])
        assert orders["banksim"] == "created" and orders["wxsim"] in ("failed", "creating"), orders
        assert await _breaker(gw, "wxsim") == "open"
        # While open, wxsim is not even asked: the next payment goes straight to banksim.
        second = await gw.ready_payment(client, channel="wxsim")
        assert second["voucher"]["channel"] == "banksim"
        assert await _channel_orders(gw, second["id"]) == {"banksim": "created"}
        # The failed-over voucher is payable and books like any other.
        await gw.pay("banksim", second["voucher"]["pay_url"])
        await gw.wait_payment(client, second["id"], lambda p: p["status"] == "succeeded")
        assert await gw.entries(second["id"]) == ["PAY_CHANNEL"]
    finally:
        await gw.set_faults("wxsim")
    # After the cool-down one probe goes through; its success closes the breaker again.
    await gw.eventually(lambda: _probe_served_by(gw, client, "wxsim"), timeout_s=10.0)
    assert await _breaker(gw, "wxsim") == "closed"
    # The failure burst stays in wxsim's measured quality for the quality window (60 s): on a fast machine
    # the next tests would still see wxsim demoted and fail over. They start from a clean record.
    gw.forget_channel_health()


async def _probe_served_by(gw: Gw, client: Any, channel: str) -> bool:
    ready = await gw.ready_payment(client, channel=channel)
    return bool(ready["voucher"]["channel"] == channel)


async def test_notify_never_sent_is_found_by_the_janitor(gw: Gw) -> None:
    client = await gw.merchant()
    await gw.set_faults("banksim", no_notify_rate=1.0)
    try:
        ready = await gw.ready_payment(client, channel="banksim")
        paid = await gw.pay("banksim", ready["voucher"]["pay_url"])
        assert paid["notify_sent"] is False
    finally:
        await gw.set_faults("banksim")
    done = await gw.wait_payment(client, ready["id"], lambda p: p["status"] == "succeeded", timeout_s=10.0)
    assert done["status"] == "succeeded"
    assert await gw.entries(ready["id"]) == ["PAY_CHANNEL"]
    async with gw.pool.acquire() as conn:
        reasons = [t.reason or "" for t in await transitions_of(conn, ready["id"])]
    assert any(r.startswith("query ") for r in reasons), reasons


async def test_success_after_close_is_booked_and_auto_refunded(gw: Gw) -> None:
    client = await gw.merchant()
    await gw.set_faults("wxsim", no_notify_rate=1.0)
    try:
        ready = await gw.ready_payment(client, channel="wxsim", amount=5000)
        await gw.pay("wxsim", ready["voucher"]["pay_url"])
    finally:
        await gw.set_faults("wxsim")
    closed = await client.close_payment(ready["id"])  # the merchant gives up; the payer already paid
    assert closed.status == 200 and closed.body["status"] == "closed", closed.body

    async def refunded() -> bool:
        found = await gw.exceptions(payment_id=ready["id"])
        return bool(found) and found[0]["refund_status"] == "succeeded"

    await gw.eventually(refunded)
    (exc,) = await gw.exceptions(payment_id=ready["id"])
    assert exc["kind"] == "late_success" and exc["status"] == "open" and exc["amount"] == 5000
    assert exc["channel"] == "wxsim" and exc["channel_refund_id"]
    got = await client.get_payment(ready["id"])
    assert got.body["status"] == "closed"
    assert await gw.entries(ready["id"]) == ["PAY_CHANNEL"]
    assert await gw.entries(exc["id"]) == ["REFUND_CHANNEL"]
    order = gw.sims["wxsim"].runtime.store.orders[ready["txn_no"]]
    assert order.state is OrderState.REFUND and order.refunded_minor == 5000
    accounts = await client.accounts()
    pending = [a for a in accounts.body["data"] if a["currency"] == "CNY" and a["role"] == "merchant_pending"]
    assert [a["balance"] for a in pending] == [0]


async def test_expired_payment_is_closed_here_and_at_the_channel(gw: Gw) -> None:
    client = await gw.merchant()
    ready = await gw.ready_payment(client, channel="banksim")
    async with gw.pool.acquire() as conn:  # let its deadline pass without waiting the API's minimum minute
        await conn.execute("UPDATE payments SET expires_at = now() - interval '1 second' WHERE id = $1", ready["id"])
    done = await gw.wait_payment(client, ready["id"], lambda p: p["status"] == "closed")
    assert done["voucher"]["status"] == "expired"

    async def closed_at_channel() -> bool:
        return gw.sims["banksim"].runtime.store.orders[ready["txn_no"]].state is OrderState.CLOSED

    await gw.eventually(closed_at_channel)

    async def closed_here() -> bool:  # the close job records it after the channel answered: a moment later
        return await _channel_orders(gw, ready["id"]) == {"banksim": "closed"}

    await gw.eventually(closed_here)
    assert await _channel_orders(gw, ready["id"]) == {"banksim": "closed"}
    assert await gw.entries(ready["id"]) == []


async def test_paid_before_its_deadline_with_the_notify_lost_succeeds_instead_of_closing(gw: Gw) -> None:
    client = await gw.merchant()
    await gw.set_faults("banksim", no_notify_rate=1.0)
    try:
        ready = await gw.ready_payment(client, channel="banksim")
        await gw.pay("banksim", ready["voucher"]["pay_url"])
        async with gw.pool.acquire() as conn:  # the deadline passes before any notify or janitor query
            await conn.execute("UPDATE payments SET expires_at = now() - interval '1 second' WHERE id = $1",
                               ready["id"])
        done = await gw.wait_payment(client, ready["id"], lambda p: p["status"] in ("succeeded", "closed"))
    finally:
        await gw.set_faults("banksim")
    # Whoever handles the deadline asks the channel first: the payer paid, so it is booked, not refunded.
    assert done["status"] == "succeeded"
    assert await gw.entries(ready["id"]) == ["PAY_CHANNEL"]
