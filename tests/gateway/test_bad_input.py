"""Bad input from channels and callers: refused with a log line and an exception record, nothing booked."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from channels.signing import wx_signed_headers
from engine.keys import PAYMENT, VOUCHER, new_id
from engine.payments.store import Job, NewPayment, Transition, insert_payment
from tests.factories import new_txn_no
from tests.gateway.conftest import WX_KEY, Gw


async def _direct_payment(gw: Gw, channel: str, amount: int = 2500) -> tuple[Any, str]:
    """A channel payment naming a channel the API would not accept, written through the payment store."""
    client = await gw.merchant()
    now = datetime.now(UTC)
    payment_id, voucher_id = new_id(PAYMENT), new_id(VOUCHER)
    row = NewPayment(payment_id, client.merchant_id, "ord-" + uuid.uuid4().hex, amount, "CNY", "channel", channel,
                     None, "pending_voucher", 15, new_txn_no(), None, {}, now + timedelta(minutes=15), now, voucher_id)
    job = Job("create_voucher", voucher_id, json.dumps({"payment_id": payment_id, "channel": channel}).encode())
    async with gw.pool.acquire() as conn, conn.transaction():
        await insert_payment(conn, row, Transition("created", "pending_voucher", "channel_order_created"), job,
                             None, None)
    return client, payment_id


@pytest.mark.parametrize("mode", ["garbage", "wrong_amount", "wrong_currency"])
async def test_untrustworthy_voucher_answer_is_recorded_and_the_next_channel_serves(gw: Gw, mode: str) -> None:
    gw.rogue.mode = mode
    # Lying answers count as failures: after a few the rogue's breaker opens. Let it cool down so it is asked.
    _, health = await gw.admin("GET", "/admin/gateway")
    if health["channels"]["rogue"]["breaker"] != "closed":
        await asyncio.sleep(gw.settings.gateway_breaker_cool_down_ms / 1000 + 0.1)
    calls_before = gw.rogue.calls
    client, payment_id = await _direct_payment(gw, "rogue")
    ready = await gw.wait_payment(client, payment_id, lambda p: p["voucher"]["status"] != "pending")
    assert gw.rogue.calls > calls_before
    assert ready["voucher"]["status"] == "ready" and ready["voucher"]["channel"] == "wxsim"
    (exc,) = await gw.exceptions(payment_id=payment_id)
    assert exc["kind"] == "bad_channel_answer" and exc["channel"] == "rogue"
    assert ("malformed" in exc["detail"]) if mode == "garbage" else ("expected 2500 CNY" in exc["detail"])
    assert await gw.entries(payment_id) == []


async def test_payment_for_an_unconfigured_channel_fails_its_voucher_with_a_record(gw: Gw) -> None:
    client, payment_id = await _direct_payment(gw, "nosuchchannel")
    failed = await gw.wait_payment(client, payment_id, lambda p: p["voucher"]["status"] != "pending")
    assert failed["status"] == "failed" and failed["voucher"]["status"] == "failed"
    (exc,) = await gw.exceptions(payment_id=payment_id)
    assert exc["kind"] == "unknown_channel"
    async with gw.pool.acquire() as conn:
        events = [r["type"] for r in await conn.fetch("SELECT type FROM outbox_events WHERE object_id = $1",
                                                      payment_id)]
    assert events == ["voucher.failed"]


async def test_notify_to_an_unknown_channel_is_refused_and_recorded(gw: Gw) -> None:
    name = "ghost" + uuid.uuid4().hex[:8]
    async with gw.http.post(f"{gw.url}/channels/{name}/notify", data=b"trade_status=TRADE_SUCCESS") as r:
        assert r.status == 404
    found = [e for e in await gw.exceptions(kind="unknown_channel") if e["channel"] == name]
    assert len(found) == 1


async def test_signed_notify_for_an_order_we_never_made_is_refused_and_recorded(gw: Gw) -> None:
    out_trade_no = new_txn_no()
    body = json.dumps({
        "id": "EV-x", "create_time": "2026-11-22T00:00:00+00:00", "event_type": "TRANSACTION.SUCCESS",
        "resource_type": "plain-resource", "summary": "x",
        "resource": {"appid": "wxsimapp", "mchid": "sim-merchant", "out_trade_no": out_trade_no,
                     "transaction_id": "T" + out_trade_no, "trade_type": "NATIVE", "trade_state": "SUCCESS",
                     "success_time": "2026-11-22T00:00:00+00:00",
                     "amount": {"total": 700, "payer_total": 700, "currency": "CNY"}}})
    headers = wx_signed_headers(WX_KEY, "1", body, int(time.time())) | {"Content-Type": "application/json"}
    async with gw.http.post(f"{gw.url}/channels/wxsim/notify", data=body.encode(), headers=headers) as r:
        assert r.status == 500 and (await r.json())["code"] == "FAIL"
    found = [e for e in await gw.exceptions(kind="unknown_order") if e["out_trade_no"] == out_trade_no]
    assert len(found) == 1 and found[0]["amount"] == 700 and found[0]["payment_id"] is None
    async with gw.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM journal_entries WHERE txn_no = $1", out_trade_no) == 0


@pytest.mark.parametrize("channel", ["wxsim", "banksim"])
async def test_notify_with_a_different_amount_is_refused_recorded_and_books_nothing(gw: Gw, channel: str) -> None:
    client = await gw.merchant()
    ready = await gw.ready_payment(client, channel=channel, amount=1999)
    await gw.pay(channel, ready["voucher"]["pay_url"], amount_minor=1)  # the channel reports 0.01 paid

    async def recorded() -> bool:
        return bool(await gw.exceptions(payment_id=ready["id"], kind="amount_mismatch"))

    await gw.eventually(recorded)
    (exc,) = await gw.exceptions(payment_id=ready["id"])
    assert exc["amount"] == 1 and "payment is 1999 CNY" in exc["detail"]
    got = await client.get_payment(ready["id"])
    assert got.body["status"] == "awaiting_payment"
    assert await gw.entries(ready["id"]) == []
