"""Payouts when the channel misbehaves: lost answers after acceptance, outages, forged signatures."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from urllib.parse import urlencode

import aiohttp
import msgspec
import pytest

from channels import signing
from channels.errors import (
    BadSignature,
    ChannelRejected,
    ChannelTimeout,
    ChannelUnavailable,
    OrderNotFound,
    UnclearRefusal,
)
from channels.protocol import ChannelConfig, PayoutStatus
from channels.registry import build_channel
from channels.sim import SimKind, profile_named

from .conftest import CLIENT_TIMEOUT_S, Rig
from .test_payouts import payout


async def test_create_that_hangs_after_acceptance_times_out_and_query_finds_it(rig: Rig) -> None:
    await rig.set_faults(payout_timeout_rate=1.0, hang_ms=2_000)
    request = payout(4321)
    started = time.monotonic()
    with pytest.raises(ChannelTimeout):
        await rig.channel.create_payout(request)
    assert time.monotonic() - started < CLIENT_TIMEOUT_S + 0.5
    # Only creates hang: the engine can ask at once while the fault is still on.
    found = await rig.channel.query_payout(request.out_payout_no)
    assert found.status is PayoutStatus.SUCCEEDED and found.channel_payout_no
    assert len(rig.sim.runtime.payouts.payouts) == 1


async def test_create_whose_connection_is_cut_after_acceptance_is_unknown_not_failed(rig: Rig) -> None:
    await rig.set_faults(payout_drop_rate=1.0)
    request = payout(88)
    with pytest.raises(ChannelTimeout, match="connection lost"):
        await rig.channel.create_payout(request)
    assert (await rig.channel.query_payout(request.out_payout_no)).status is PayoutStatus.SUCCEEDED
    await rig.set_faults(payout_drop_rate=0.0)
    # Sending it again is safe: the channel answers with the payout it already has.
    again = await rig.channel.create_payout(request)
    assert again.status is PayoutStatus.SUCCEEDED
    assert again.channel_payout_no == rig.sim.runtime.payouts.payouts[request.out_payout_no].payout_id
    assert len(rig.sim.runtime.payouts.payouts) == 1


async def test_channel_down_answers_unavailable_and_accepts_nothing(rig: Rig) -> None:
    await rig.set_faults(error_rate=1.0)
    request = payout()
    with pytest.raises(ChannelUnavailable):
        await rig.channel.create_payout(request)
    await rig.set_faults(error_rate=0.0)
    with pytest.raises(OrderNotFound):
        await rig.channel.query_payout(request.out_payout_no)


async def test_adapter_with_a_foreign_key_is_refused_and_refuses_the_answer(
    rig: Rig, http: aiohttp.ClientSession
) -> None:
    profile = rig.sim.profile
    config = ChannelConfig(profile.kind.value, rig.sim.url, profile.merchant_id, "not-the-key", "", CLIENT_TIMEOUT_S)
    forger = build_channel(http, config)
    request = payout()
    with pytest.raises(BadSignature):
        await forger.create_payout(request)
    with pytest.raises(BadSignature):
        await forger.query_payout(request.out_payout_no)
    assert rig.sim.runtime.payouts.payouts == {}


async def test_wallet_refuses_a_payout_request_signed_with_another_key(wallet_rig: Rig) -> None:
    profile = wallet_rig.sim.profile
    path = "/v3/fund-app/mch-transfer/bank-transfer-bills"
    body = msgspec.json.encode(
        {"mchid": profile.merchant_id, "out_bill_no": "PO-forged", "transfer_amount": 100, "account_type": "BANK_CARD",
         "account_number": "6222000011112227", "user_name": "Mallory"}
    ).decode()
    auth = signing.wx_authorization("forged", profile.merchant_id, "1", "POST", path, body, int(time.time()))
    headers = {"Authorization": auth, "Content-Type": "application/json"}
    async with wallet_rig.http.post(wallet_rig.sim.url + path, data=body, headers=headers) as answer:
        assert answer.status == 401
        assert (await answer.json())["code"] == "SIGN_ERROR"
    assert wallet_rig.sim.runtime.payouts.payouts == {}


async def test_bank_refuses_a_payout_request_signed_with_another_key(bank_rig: Rig) -> None:
    profile = bank_rig.sim.profile
    params = {
        "app_id": profile.merchant_id, "method": "fund.trans.uni.transfer", "sign_type": "SHA256",
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"), "out_biz_no": "PO-forged",
        "trans_amount": "1.00", "payee_type": "BANKCARD", "payee_account": "6222000011112227", "payee_name": "Mallory",
    }
    params["sign"] = signing.bank_sign("forged", params)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    async with bank_rig.http.post(f"{bank_rig.sim.url}/gateway.do", data=urlencode(params), headers=form) as answer:
        assert (await answer.json(content_type=None))["code"] == "40002"
    assert bank_rig.sim.runtime.payouts.payouts == {}


@pytest.mark.parametrize("name", ["wxsim-payout-slow", "banksim-payout-flaky"])
def test_payout_fault_profiles_are_built_in(name: str) -> None:
    profile = profile_named(name)
    assert profile.kind in (SimKind.WALLET, SimKind.BANK)
    assert profile.faults.payout_settle_ms > 0


async def test_a_business_system_error_to_a_create_is_unclear_not_a_refusal(bank_rig: Rig) -> None:
    # A business-level system error is banksim's wire (wxsim answers HTTP 500: ChannelUnavailable, tested above).
    await bank_rig.set_faults(payout_system_error_rate=1.0)
    request = payout(321)
    with pytest.raises(UnclearRefusal) as unclear:
        await bank_rig.channel.create_payout(request)
    assert unclear.value.code == "ACQ.SYSTEM_ERROR"
    # The payout was accepted all the same: only a query can tell.
    assert (await bank_rig.channel.query_payout(request.out_payout_no)).status is PayoutStatus.SUCCEEDED


async def test_a_definitive_refusal_to_a_create_stays_a_refusal(rig: Rig) -> None:
    request = payout(321, kind="bank_card")
    bad = msgspec.structs.replace(request, amount_minor=0)  # the channel refuses a zero amount and moves nothing
    with pytest.raises(ChannelRejected) as refused:
        await rig.channel.create_payout(bad)
    assert not isinstance(refused.value, UnclearRefusal | OrderNotFound), refused.value
    assert not rig.sim.runtime.payouts.payouts


async def test_a_query_reports_the_amount_and_currency_the_channel_holds(rig: Rig) -> None:
    request = payout(4_567)
    await rig.channel.create_payout(request)
    found = await rig.channel.query_payout(request.out_payout_no)
    assert (found.amount_minor, found.currency) == (4_567, "CNY")
    if rig.sim.runtime.profile.kind is SimKind.BANK:
        await rig.set_faults(payout_report_skew_minor=1)
        skewed = await rig.channel.query_payout(request.out_payout_no)
        assert (skewed.amount_minor, skewed.currency) == (4_568, "CNY")


async def test_a_query_lookup_glitch_answers_not_found_while_the_payout_stays(rig: Rig) -> None:
    request = payout(654)
    await rig.channel.create_payout(request)
    await rig.set_faults(payout_query_not_found_rate=1.0)
    with pytest.raises(OrderNotFound):
        await rig.channel.query_payout(request.out_payout_no)
    assert request.out_payout_no in rig.sim.runtime.payouts.payouts  # only the lookup glitched
    await rig.set_faults(payout_query_not_found_rate=0.0)
    assert (await rig.channel.query_payout(request.out_payout_no)).status is PayoutStatus.SUCCEEDED
