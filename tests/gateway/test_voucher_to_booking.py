"""End to end against the real simulators: create -> voucher ready -> pay -> notify -> succeeded -> booked."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from channels.signing import wx_signed_headers
from channels.sim.bank import BankSim
from channels.sim.notifier import NotifyMessage
from channels.sim.wx import WxSim
from engine.payments.store import transitions_of
from tests.gateway.conftest import Gw

CHANNELS = ["wxsim", "banksim"]


def sim_notify(gw: Gw, channel: str, out_trade_no: str) -> NotifyMessage:
    """The notify the simulator itself would send for this order, freshly signed."""
    sim = gw.sims[channel]
    order = sim.runtime.store.orders[out_trade_no]
    builder = WxSim(sim.runtime) if channel == "wxsim" else BankSim(sim.runtime)
    return builder.build_notify(order)


async def post_notify(gw: Gw, channel: str, message: NotifyMessage) -> tuple[int, bytes]:
    async with gw.http.post(f"{gw.url}/channels/{channel}/notify", data=message.body,
                            headers=message.headers) as r:
        return r.status, await r.read()


@pytest.mark.parametrize("channel", CHANNELS)
async def test_channel_payment_goes_from_voucher_to_booked_success(gw: Gw, channel: str) -> None:
    client = await gw.merchant()
    ready = await gw.ready_payment(client, channel=channel)
    voucher = ready["voucher"]
    assert ready["status"] == "awaiting_payment" and voucher["status"] == "ready"
    assert voucher["channel"] == channel and voucher["pay_url"] and voucher["qr_code"]
    assert voucher["expires_at"] <= ready["expires_at"]
    # Our order number at the channel is the payment's transaction number.
    assert ready["txn_no"] in gw.sims[channel].runtime.store.orders

    paid = await gw.pay(channel, voucher["pay_url"])
    assert paid["notify_sent"] is True
    done = await gw.wait_payment(client, ready["id"], lambda p: p["status"] == "succeeded")
    assert done["amount"] == 1999 and done["fee"] == 12
    assert await gw.entries(ready["id"]) == ["PAY_CHANNEL"]
    async with gw.pool.acquire() as conn:
        reasons = [t.reason or "" for t in await transitions_of(conn, ready["id"])]
        events = [r["type"] for r in await conn.fetch(
            "SELECT type FROM outbox_events WHERE object_id = $1 ORDER BY created_at", ready["id"])]
    assert any(r.startswith("notify ") for r in reasons), reasons
    assert events == ["voucher.ready", "payment.succeeded"]
    accounts = await client.accounts()
    pending = [a for a in accounts.body["data"] if a["currency"] == "CNY" and a["role"] == "merchant_pending"]
    assert pending and pending[0]["balance"] == 1999 - 12


@pytest.mark.parametrize("channel", CHANNELS)
async def test_duplicate_notifies_book_once_and_are_all_acked(gw: Gw, channel: str) -> None:
    client = await gw.merchant()
    await gw.set_faults(channel, no_notify_rate=1.0)
    try:
        ready = await gw.ready_payment(client, channel=channel)
        await gw.pay(channel, ready["voucher"]["pay_url"])
    finally:
        await gw.set_faults(channel)
    message = sim_notify(gw, channel, ready["txn_no"])
    answers = await asyncio.gather(*(post_notify(gw, channel, message) for _ in range(8)))
    ack = gw_ack(channel)
    assert all(answer == ack for answer in answers), answers
    again = await post_notify(gw, channel, sim_notify(gw, channel, ready["txn_no"]))
    assert again == ack
    await gw.wait_payment(client, ready["id"], lambda p: p["status"] == "succeeded")
    assert await gw.entries(ready["id"]) == ["PAY_CHANNEL"]


def gw_ack(channel: str) -> tuple[int, bytes]:
    return (200, b'{"code":"SUCCESS"}') if channel == "wxsim" else (200, b"success")


async def _unpaid_wx_payment(gw: Gw) -> tuple[Any, dict[str, Any]]:
    client = await gw.merchant()
    ready = await gw.ready_payment(client, channel="wxsim")
    return client, ready


def _forged_body(out_trade_no: str, amount: int) -> str:
    return ('{"id":"EV-forged","create_time":"2026-11-22T00:00:00+00:00","event_type":"TRANSACTION.SUCCESS",'
            '"resource_type":"plain-resource","summary":"x","resource":{"appid":"wxsimapp","mchid":"sim-merchant",'
            f'"out_trade_no":"{out_trade_no}","transaction_id":"FORGED1","trade_type":"NATIVE",'
            '"trade_state":"SUCCESS","success_time":"2026-11-22T00:00:00+00:00",'
            f'"amount":{{"total":{amount},"payer_total":{amount},"currency":"CNY"}}}}}}')


@pytest.mark.parametrize("how", ["wrong_key", "stale", "unsigned", "garbage"])
async def test_forged_or_stale_notify_is_refused_and_books_nothing(gw: Gw, how: str) -> None:
    client, ready = await _unpaid_wx_payment(gw)
    body = _forged_body(ready["txn_no"], ready["amount"])
    if how == "wrong_key":
        headers = wx_signed_headers("not-the-key", "1", body, int(time.time()))
    elif how == "stale":  # the right key, but replayed from 10 minutes ago
        headers = wx_signed_headers(gw.settings.channels[0].key, "1", body, int(time.time()) - 600)
    else:
        headers = {}
    if how == "garbage":
        body = "\x00not json at all"
    headers["Content-Type"] = "application/json"
    async with gw.http.post(f"{gw.url}/channels/wxsim/notify", data=body.encode(), headers=headers) as r:
        assert r.status == 500 and (await r.json())["code"] == "FAIL"
    got = await client.get_payment(ready["id"])
    assert got.body["status"] == "awaiting_payment"
    assert await gw.entries(ready["id"]) == []
