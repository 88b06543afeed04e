"""The adapter ↔ simulator round trip, the same story told to both channels."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from channels.errors import (
    BadSignature,
    ChannelRejected,
    MalformedResponse,
    OrderNotFound,
    StaleNotify,
)
from channels.protocol import ChannelStatus, RefundRequest, RefundStatus, VoucherRequest

from .conftest import Rig


def voucher(amount_minor: int = 1999, currency: str = "CNY") -> VoucherRequest:
    return VoucherRequest(
        out_trade_no=f"T{uuid4().hex[:20]}",
        amount_minor=amount_minor,
        currency=currency,
        description="test order",
        expires_at=datetime.now(UTC) + timedelta(minutes=30),
    )


async def test_create_voucher_is_idempotent_on_out_trade_no(rig: Rig) -> None:
    order = voucher()
    first = await rig.channel.create_voucher(order)
    again = await rig.channel.create_voucher(order)
    assert first.channel_order_id == again.channel_order_id
    assert first.pay_url == again.pay_url and first.channel_order_id in first.pay_url


async def test_create_with_same_out_trade_no_and_other_amount_is_rejected(rig: Rig) -> None:
    order = voucher(1999)
    await rig.channel.create_voucher(order)
    with pytest.raises(ChannelRejected):
        await rig.channel.create_voucher(
            VoucherRequest(order.out_trade_no, 2000, order.currency, order.description, order.expires_at)
        )


async def test_query_reports_pending_then_succeeded_with_exact_amount(rig: Rig) -> None:
    order = voucher(1)
    await rig.channel.create_voucher(order)
    pending = await rig.channel.query(order.out_trade_no)
    assert (pending.status, pending.amount_minor, pending.currency) == (ChannelStatus.PENDING, 1, "CNY")
    paid = await rig.pay(order.out_trade_no)
    succeeded = await rig.channel.query(order.out_trade_no)
    assert succeeded.status is ChannelStatus.SUCCEEDED
    assert succeeded.channel_txn_id == paid["channel_txn_id"] and succeeded.amount_minor == 1


async def test_query_of_unknown_order_raises_order_not_found(rig: Rig) -> None:
    with pytest.raises(OrderNotFound):
        await rig.channel.query("never-created")


async def test_pay_sends_a_notify_the_adapter_verifies(rig: Rig) -> None:
    order = voucher(1999)
    await rig.channel.create_voucher(order)
    paid = await rig.pay(order.out_trade_no)
    headers, body = await rig.receiver.next()
    event = rig.channel.verify_notify(headers, body, int(time.time()))
    assert event.out_trade_no == order.out_trade_no
    assert (event.status, event.amount_minor, event.currency) == (ChannelStatus.SUCCEEDED, 1999, "CNY")
    assert event.channel_txn_id == paid["channel_txn_id"]


async def test_notify_reports_the_amount_actually_paid(rig: Rig) -> None:
    order = voucher(1999)
    await rig.channel.create_voucher(order)
    await rig.pay(order.out_trade_no, amount_minor=1)
    headers, body = await rig.receiver.next()
    assert rig.channel.verify_notify(headers, body, int(time.time())).amount_minor == 1


async def test_notify_is_retried_until_answered_the_way_the_channel_expects(rig: Rig) -> None:
    nack = rig.channel.notify_nack()
    wrong_body = type(nack)(200, "text/plain", b"OK")
    rig.receiver.script = [nack, wrong_body]
    order = voucher()
    await rig.channel.create_voucher(order)
    await rig.pay(order.out_trade_no)
    deliveries = [await rig.receiver.next() for _ in range(3)]
    events = {rig.channel.verify_notify(h, b, int(time.time())).notify_id for h, b in deliveries}
    assert len(events) == 1, "every retry is the same event"
    async with rig.http.get(f"{rig.sim.url}/sim/admin/notifies") as answer:
        attempts = await answer.json()
    assert [a["acked"] for a in attempts] == [False, False, True]
    with pytest.raises(TimeoutError):
        await rig.receiver.next(timeout_s=0.5)  # acked: no more deliveries


async def test_tampered_notify_is_refused_as_bad_signature(rig: Rig) -> None:
    order = voucher(1999)
    await rig.channel.create_voucher(order)
    await rig.pay(order.out_trade_no)
    headers, body = await rig.receiver.next()
    forged = body.replace(b"1999", b"9999").replace(b"19.99", b"99.99")
    assert forged != body
    with pytest.raises(BadSignature):
        rig.channel.verify_notify(headers, forged, int(time.time()))


async def test_notify_older_than_the_window_is_refused_as_stale(rig: Rig) -> None:
    order = voucher()
    await rig.channel.create_voucher(order)
    await rig.pay(order.out_trade_no)
    headers, body = await rig.receiver.next()
    with pytest.raises(StaleNotify):
        rig.channel.verify_notify(headers, body, int(time.time()) + 301 + 2)
    rig.channel.verify_notify(headers, body, int(time.time()) + 290)


async def test_garbage_notify_is_refused(rig: Rig) -> None:
    with pytest.raises((BadSignature, MalformedResponse)):
        rig.channel.verify_notify({}, b"\xff\x00garbage", int(time.time()))


async def test_close_makes_an_unpaid_order_closed_and_unpayable(rig: Rig) -> None:
    order = voucher()
    await rig.channel.create_voucher(order)
    await rig.channel.close(order.out_trade_no)
    assert (await rig.channel.query(order.out_trade_no)).status is ChannelStatus.CLOSED
    async with rig.http.post(f"{rig.sim.url}/sim/pay", json={"out_trade_no": order.out_trade_no}) as r:
        assert r.status == 409


async def test_close_of_a_paid_order_is_rejected(rig: Rig) -> None:
    order = voucher()
    await rig.channel.create_voucher(order)
    await rig.pay(order.out_trade_no)
    with pytest.raises(ChannelRejected):
        await rig.channel.close(order.out_trade_no)


async def test_partial_then_full_refund_and_refund_query(rig: Rig) -> None:
    order = voucher(1999)
    await rig.channel.create_voucher(order)
    await rig.pay(order.out_trade_no)

    def refund(no: str, amount_minor: int) -> RefundRequest:
        return RefundRequest(order.out_trade_no, no, amount_minor, 1999, "CNY", "customer asked")

    first = await rig.channel.refund(refund(f"{order.out_trade_no}-r1", 500))
    assert (first.amount_minor, first.status) == (500, RefundStatus.SUCCEEDED)
    assert (await rig.channel.query(order.out_trade_no)).status is ChannelStatus.REFUNDED
    rest = await rig.channel.refund(refund(f"{order.out_trade_no}-r2", 1499))
    assert rest.amount_minor == 1499
    replay = await rig.channel.refund(refund(f"{order.out_trade_no}-r1", 500))
    assert replay.channel_refund_id == first.channel_refund_id, "refund is idempotent on out_refund_no"
    queried = await rig.channel.query_refund(f"{order.out_trade_no}-r2")
    assert (queried.amount_minor, queried.out_trade_no) == (1499, order.out_trade_no)


async def test_refund_over_the_paid_amount_is_rejected(rig: Rig) -> None:
    order = voucher(1000)
    await rig.channel.create_voucher(order)
    await rig.pay(order.out_trade_no)
    await rig.channel.refund(RefundRequest(order.out_trade_no, "r-600", 600, 1000, "CNY"))
    with pytest.raises(ChannelRejected):
        await rig.channel.refund(RefundRequest(order.out_trade_no, "r-401", 401, 1000, "CNY"))
    assert (await rig.channel.refund(RefundRequest(order.out_trade_no, "r-400", 400, 1000, "CNY"))).amount_minor == 400


async def test_refund_of_an_unpaid_order_is_rejected(rig: Rig) -> None:
    order = voucher()
    await rig.channel.create_voucher(order)
    with pytest.raises(ChannelRejected):
        await rig.channel.refund(RefundRequest(order.out_trade_no, "r-1", 1, order.amount_minor, "CNY"))
