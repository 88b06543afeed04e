"""The simulators seen from the wire: authentication, the payer endpoint, the CLI entry."""

from __future__ import annotations

import asyncio
import socket
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from channels import signing
from channels.errors import BadSignature
from channels.protocol import ChannelConfig
from channels.registry import UnknownChannel, adapter_classes, build_channel
from channels.sim import PROFILES

from .conftest import Rig
from .test_channel_flow import voucher

REPO_ROOT = Path(__file__).resolve().parents[2]


async def test_wallet_refuses_a_request_signed_with_another_key(http: aiohttp.ClientSession, wallet_rig: Rig) -> None:
    rig = wallet_rig
    body = '{"mchid": "sim-merchant"}'
    path = "/v3/pay/transactions/out-trade-no/x/close"
    auth = signing.wx_authorization("wrong-key", "sim-merchant", "1", "POST", path, body, int(time.time()))
    async with http.post(rig.sim.url + path, data=body, headers={"Authorization": auth}) as answer:
        assert answer.status == 401
        assert (await answer.json())["code"] == "SIGN_ERROR"


async def test_bank_refuses_a_request_signed_with_another_key(http: aiohttp.ClientSession, bank_rig: Rig) -> None:
    rig = bank_rig
    params = {"app_id": "sim-merchant", "method": "trade.query", "out_trade_no": "x"}
    params["sign"] = signing.bank_sign("wrong-key", params)
    async with http.post(rig.sim.url + "/gateway.do", data=params) as answer:
        fields = await answer.json()
    assert (answer.status, fields["code"], fields["sub_code"]) == (200, "40002", "isv.invalid-signature")


async def test_adapter_with_the_wrong_key_trusts_no_answer(http: aiohttp.ClientSession, rig: Rig) -> None:
    """The channel's refusal is itself signed with the right key, so the adapter cannot read it."""
    config = ChannelConfig(
        name=rig.sim.profile.kind.value,
        base_url=rig.sim.url,
        merchant_id="sim-merchant",
        key="wrong-key",
        notify_url=rig.receiver.url,
    )
    with pytest.raises(BadSignature):
        await build_channel(http, config).query("x")


async def test_payer_can_pay_with_the_pay_url(rig: Rig) -> None:
    order = voucher()
    result = await rig.channel.create_voucher(order)
    async with rig.http.post(f"{rig.sim.url}/sim/pay", json={"pay_url": result.pay_url}) as answer:
        assert answer.status == 200
        assert (await answer.json())["out_trade_no"] == order.out_trade_no
    async with rig.http.post(f"{rig.sim.url}/sim/pay", json={"pay_url": result.pay_url}) as answer:
        assert answer.status == 409, "paying twice is refused"
    async with rig.http.post(f"{rig.sim.url}/sim/pay", json={"channel_order_id": "nope"}) as answer:
        assert answer.status == 404


def test_registry_finds_one_adapter_per_module() -> None:
    assert set(adapter_classes()) == {"wxsim", "banksim"}


async def test_registry_refuses_an_unknown_channel(http: aiohttp.ClientSession) -> None:
    with pytest.raises(UnknownChannel):
        build_channel(http, ChannelConfig("paypal", "http://127.0.0.1:1", "m", "k", "http://127.0.0.1:1/n"))


def test_every_named_profile_has_an_adapter() -> None:
    assert {"wxsim", "banksim", "wxsim-slow", "banksim-flaky"} <= set(PROFILES)
    assert {profile.kind.value for profile in PROFILES.values()} <= set(adapter_classes())


async def test_run_simulator_serves_until_terminated(http: aiohttp.ClientSession) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code = f"from channels.sim import run_simulator; run_simulator('banksim', '127.0.0.1', {port}, None)"
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", code, cwd=REPO_ROOT)
    try:
        for _ in range(100):
            try:
                async with http.get(f"http://127.0.0.1:{port}/sim/admin/faults") as answer:
                    assert answer.status == 200
                    break
            except aiohttp.ClientConnectorError:
                await asyncio.sleep(0.05)
        else:
            pytest.fail("simulator did not start within 5 s")
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 5)
