"""Slow, failing and silent channels, switched on through the simulator's admin endpoint."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from aiohttp import web

from channels.errors import ChannelTimeout, ChannelUnavailable, OrderNotFound
from channels.protocol import ChannelStatus, VoucherRequest
from channels.sim import Latency, SimFaults, SimKind, start_simulator
from tests.serving import serving

from .conftest import Rig, fast_profile
from .test_channel_flow import voucher


async def test_hanging_create_raises_timeout_and_the_order_exists_afterwards(rig: Rig) -> None:
    """A timeout is *unknown*: the channel did create the order, so a query finds it."""
    await rig.set_faults(timeout_rate=1.0, hang_ms=2_000)
    order = voucher()
    started = time.monotonic()
    with pytest.raises(ChannelTimeout):
        await rig.channel.create_voucher(order)
    assert time.monotonic() - started < 1.5
    await rig.set_faults(timeout_rate=0.0)
    assert (await rig.channel.query(order.out_trade_no)).status is ChannelStatus.PENDING


async def test_hang_next_creates_hangs_exactly_that_many_creates_and_no_query(rig: Rig) -> None:
    await rig.set_faults(hang_next_creates=1, hang_ms=2_000)
    lost, kept = voucher(), voucher()
    with pytest.raises(ChannelTimeout):
        await rig.channel.create_voucher(lost)
    assert (await rig.channel.query(lost.out_trade_no)).status is ChannelStatus.PENDING  # queries do not hang
    await rig.channel.create_voucher(kept)  # the count is used up
    async with rig.http.get(f"{rig.sim.url}/sim/admin/faults") as answer:
        assert (await answer.json())["hang_next_creates"] == 0


async def test_channel_taken_down_answers_unavailable_and_changes_nothing(rig: Rig) -> None:
    await rig.set_faults(error_rate=1.0)
    order = voucher()
    with pytest.raises(ChannelUnavailable):
        await rig.channel.create_voucher(order)
    await rig.set_faults(error_rate=0.0)
    with pytest.raises(OrderNotFound):
        await rig.channel.query(order.out_trade_no)


async def test_error_rate_fails_about_that_share_of_calls(rig: Rig) -> None:
    await rig.set_faults(error_rate=0.5)
    outcomes = []
    for _ in range(40):
        try:
            await rig.channel.create_voucher(voucher())
            outcomes.append(True)
        except ChannelUnavailable:
            outcomes.append(False)
    assert 8 <= outcomes.count(False) <= 32


async def test_paid_order_with_no_notify_is_still_found_by_query(rig: Rig) -> None:
    await rig.set_faults(no_notify_rate=1.0)
    order = voucher()
    await rig.channel.create_voucher(order)
    paid = await rig.pay(order.out_trade_no)
    assert paid["notify_sent"] is False
    with pytest.raises(TimeoutError):
        await rig.receiver.next(timeout_s=0.3)
    assert (await rig.channel.query(order.out_trade_no)).status is ChannelStatus.SUCCEEDED


async def test_create_latency_follows_the_profile(rig: Rig) -> None:
    await rig.set_faults(create_latency={"mean_ms": 150.0, "stddev_ms": 0.0})
    started = time.monotonic()
    await rig.channel.create_voucher(voucher())
    assert 0.14 <= time.monotonic() - started < 1.0


async def test_unreachable_channel_raises_unavailable(rig: Rig) -> None:
    await rig.sim.close()
    with pytest.raises(ChannelUnavailable):
        await rig.channel.query("anything")


async def test_invalid_fault_settings_are_refused(rig: Rig) -> None:
    async with rig.http.put(f"{rig.sim.url}/sim/admin/faults", json={"error_rate": 1.5}) as answer:
        assert answer.status == 400


async def test_same_seed_gives_the_same_fault_sequence() -> None:
    profile = fast_profile(SimKind.WALLET, faults=SimFaults(error_rate=0.5, create_latency=Latency(1, 1)))
    draws = []
    for _ in range(2):
        sim = await start_simulator(profile)
        draws.append([sim.runtime.rng.random() for _ in range(5)])
        await sim.close()
    assert draws[0] == draws[1]


async def test_expired_order_reads_closed(rig: Rig) -> None:
    order = VoucherRequest("T-expiring", 100, "CNY", "x", datetime.now(UTC) + timedelta(minutes=1))
    await rig.channel.create_voucher(order)
    rig.sim.runtime.store.orders[order.out_trade_no].expires_at = datetime.now(UTC) - timedelta(seconds=1)
    assert (await rig.channel.query(order.out_trade_no)).status is ChannelStatus.CLOSED


async def test_notify_base_url_is_used_for_orders_without_a_notify_url(http: aiohttp.ClientSession) -> None:
    received: asyncio.Queue[str] = asyncio.Queue()

    async def handle(request: web.Request) -> web.Response:
        await received.put(request.path)
        return web.Response(text="success")

    app = web.Application()
    app.router.add_post("/channels/banksim/notify", handle)
    async with serving(app) as served:
        sim = await start_simulator(fast_profile(SimKind.BANK), notify_base_url=served.url)
        try:
            order = sim.runtime.store.create("T-base", 100, "CNY", "x", "", datetime.now(UTC), 60)
            async with http.post(f"{sim.url}/sim/pay", json={"out_trade_no": order.out_trade_no}) as answer:
                assert (await answer.json())["notify_sent"] is True
            assert await asyncio.wait_for(received.get(), 3) == "/channels/banksim/notify"
        finally:
            await sim.close()
