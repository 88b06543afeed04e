"""How the gateway orders channels: the payment's channel first while healthy, measured quality otherwise."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from engine.channel_specs import ChannelSpec
from engine.gateway.context import Gateway, build_channels
from engine.gateway.health import ChannelHealth
from engine.settings import Settings


@pytest.fixture
async def gateway() -> AsyncIterator[Gateway]:
    settings = Settings(gateway_breaker_cool_down_ms=10, channels=(
        ChannelSpec("wxsim", "wxsim", "http://127.0.0.1:9", "m", "k"),
        ChannelSpec("banksim", "banksim", "http://127.0.0.1:9", "m", "k", cost_bps=80)))
    async with aiohttp.ClientSession() as session:
        nothing: Any = None  # routing needs neither database nor booker
        yield Gateway(settings, nothing, nothing, nothing, build_channels(settings, session),
                      ChannelHealth(Gateway.breaker_policy(settings), settings.gateway_quality_window_s), "test")


def test_payment_channel_goes_first_while_healthy(gateway: Gateway) -> None:
    assert gateway.route("CNY", 100, "banksim") == ["banksim", "wxsim"]
    assert gateway.route("CNY", 100, None) == ["wxsim", "banksim"]  # cheaper first
    assert gateway.route("EUR", 100, "wxsim") == []  # no channel takes the currency


def test_measured_poor_success_rate_demotes_even_the_payment_channel(gateway: Gateway) -> None:
    now_s = time.monotonic()
    for i in range(30):  # 40 % success a while ago: the breaker has cooled down, the quality window remembers
        gateway.health.record("banksim", i % 5 < 2, 100.0, now_s - 5)
        gateway.health.record("wxsim", True, 300.0, now_s - 5)
    assert gateway.health.is_admitting("banksim", now_s)
    assert gateway.route("CNY", 100, "banksim") == ["wxsim", "banksim"]
