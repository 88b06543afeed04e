"""Payouts through each adapter against the real simulators: accept, settle, fail, repeat, statement."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime

import pytest

from channels.errors import ChannelRejected, OrderNotFound, UnclearRefusal
from channels.protocol import PayoutDestination, PayoutRequest, PayoutResult, PayoutStatus, StatementKind

from .conftest import Rig


def payout(
    amount_minor: int = 1999, number: str | None = None, holder_name: str = "Zhang San", kind: str = "bank_card"
) -> PayoutRequest:
    # Never ends in the simulator's bad suffix (000000) by accident: the last digit is 7.
    number = number or f"6222{secrets.randbelow(10**11):011d}7"
    return PayoutRequest(
        out_payout_no=f"PO{secrets.token_hex(10)}",
        amount_minor=amount_minor,
        currency="CNY",
        destination=PayoutDestination(kind=kind, number=number, holder_name=holder_name, bank_code="ICBC"),
        description="withdrawal",
    )


async def admin(rig: Rig, method: str, path: str, body: object) -> dict[str, object]:
    async with rig.http.request(method, f"{rig.sim.url}/sim/admin/{path}", json=body) as answer:
        assert answer.status == 200, await answer.text()
        result: dict[str, object] = await answer.json()
        return result


async def funds_minor(rig: Rig) -> int:
    funds = (await admin(rig, "GET", "payout-funds", None))["funds_minor"]
    assert isinstance(funds, int)
    return funds


async def settled(rig: Rig, out_payout_no: str, timeout_s: float = 2.0) -> PayoutResult:
    """Query until the payout is final, as the engine's worker would."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        result = await rig.channel.query_payout(out_payout_no)
        if result.status is not PayoutStatus.PROCESSING or asyncio.get_running_loop().time() > deadline:
            return result
        await asyncio.sleep(0.02)


async def test_payout_is_accepted_as_processing_then_settles_succeeded(rig: Rig) -> None:
    await rig.set_faults(payout_settle_ms=150)
    funds_before = await funds_minor(rig)
    request = payout(1234, kind="bank_account")
    created = await rig.channel.create_payout(request)
    assert (created.out_payout_no, created.status) == (request.out_payout_no, PayoutStatus.PROCESSING)
    assert created.channel_payout_no and created.finished_at is None
    assert (await rig.channel.query_payout(request.out_payout_no)).status is PayoutStatus.PROCESSING
    done = await settled(rig, request.out_payout_no)
    assert done.status is PayoutStatus.SUCCEEDED
    assert done.channel_payout_no == created.channel_payout_no
    assert done.finished_at is not None and done.failure_code is None
    assert await funds_minor(rig) == funds_before - 1234


async def test_repeated_create_returns_the_same_payout_and_pays_once(rig: Rig) -> None:
    await admin(rig, "PUT", "payout-funds", {"funds_minor": 10_000})
    request = payout(2500)
    first = await rig.channel.create_payout(request)
    await settled(rig, request.out_payout_no)
    again = await rig.channel.create_payout(request)
    assert again.channel_payout_no == first.channel_payout_no
    assert again.status is PayoutStatus.SUCCEEDED
    assert len(rig.sim.runtime.payouts.payouts) == 1
    assert await funds_minor(rig) == 7_500


async def test_same_payout_number_with_other_content_is_rejected(rig: Rig) -> None:
    request = payout(100)
    await rig.channel.create_payout(request)
    with pytest.raises(ChannelRejected) as refused:
        await rig.channel.create_payout(PayoutRequest(request.out_payout_no, 101, "CNY", request.destination))
    assert not isinstance(refused.value, OrderNotFound)
    # Not a refusal that moved nothing: a payout exists under that number, so the caller must ask about it.
    assert isinstance(refused.value, UnclearRefusal)
    assert rig.sim.runtime.payouts.payouts[request.out_payout_no].ask.amount_minor == 100


async def test_payout_to_a_bad_account_number_fails_after_acceptance(rig: Rig) -> None:
    request = payout(700, number="6222020200000000")
    assert (await rig.channel.create_payout(request)).status is PayoutStatus.PROCESSING
    failed = await settled(rig, request.out_payout_no)
    assert (failed.status, failed.failure_code) == (PayoutStatus.FAILED, "ACCOUNT_INVALID")
    assert failed.failure_message and failed.finished_at is not None


async def test_payout_under_another_holder_name_fails_with_name_mismatch(rig: Rig) -> None:
    number = "6222123412341237"
    await admin(rig, "PUT", "payout-holders", {number: "Li Lei"})
    wrong, right = payout(300, number, "Han Meimei"), payout(300, number, "Li Lei")
    await rig.channel.create_payout(wrong)
    await rig.channel.create_payout(right)
    assert (await settled(rig, wrong.out_payout_no)).failure_code == "NAME_MISMATCH"
    assert (await settled(rig, right.out_payout_no)).status is PayoutStatus.SUCCEEDED


async def test_payouts_beyond_the_channel_funds_fail_in_acceptance_order(rig: Rig) -> None:
    await admin(rig, "PUT", "payout-funds", {"funds_minor": 1_000})
    first, second = payout(600), payout(600)
    await rig.channel.create_payout(first)
    await rig.channel.create_payout(second)
    # Ask for the second first: settlement still follows acceptance order.
    assert (await settled(rig, second.out_payout_no)).failure_code == "INSUFFICIENT_FUNDS"
    assert (await settled(rig, first.out_payout_no)).status is PayoutStatus.SUCCEEDED
    assert await funds_minor(rig) == 400


async def test_fail_rate_makes_accepted_payouts_fail_as_bank_rejected(rig: Rig) -> None:
    await rig.set_faults(payout_fail_rate=1.0)
    request = payout()
    await rig.channel.create_payout(request)
    assert (await settled(rig, request.out_payout_no)).failure_code == "BANK_REJECTED"


async def test_admin_settles_a_processing_payout_with_the_chosen_outcome(rig: Rig) -> None:
    await rig.set_faults(payout_settle_ms=60_000)
    request = payout()
    await rig.channel.create_payout(request)
    path = f"payouts/{request.out_payout_no}/settle"
    await admin(rig, "POST", path, {"status": "FAIL", "failure_code": "ACCOUNT_FROZEN"})
    result = await rig.channel.query_payout(request.out_payout_no)
    assert (result.status, result.failure_code) == (PayoutStatus.FAILED, "ACCOUNT_FROZEN")
    async with rig.http.post(f"{rig.sim.url}/sim/admin/{path}", json={"status": "SUCCESS"}) as again:
        assert again.status == 409


async def test_unknown_payout_is_order_not_found(rig: Rig) -> None:
    with pytest.raises(OrderNotFound):
        await rig.channel.query_payout(f"PO{secrets.token_hex(10)}")


async def test_destination_kind_the_channel_lacks_is_rejected_before_sending(rig: Rig) -> None:
    request = payout(kind="crypto_wallet")
    with pytest.raises(ChannelRejected):
        await rig.channel.create_payout(request)
    assert request.out_payout_no not in rig.sim.runtime.payouts.payouts


async def test_non_positive_amount_is_rejected_by_the_channel(rig: Rig) -> None:
    with pytest.raises(ChannelRejected):
        await rig.channel.create_payout(payout(0))
    assert rig.sim.runtime.payouts.payouts == {}


async def test_statement_lists_finished_payouts_with_their_outcome(rig: Rig) -> None:
    good, bad, pending, missing, off = payout(1001), payout(202, "6222020200000000"), payout(5), payout(7), payout(9)
    for request in (good, bad, missing, off):
        await rig.channel.create_payout(request)
    await rig.set_faults(payout_settle_ms=60_000)
    await rig.channel.create_payout(pending)
    today = datetime.now(UTC).date()
    seeded = {"missing": [missing.out_payout_no], "amount_mismatch": {off.out_payout_no: 10}, "extra_payouts": 1}
    await admin(rig, "PUT", f"discrepancies/{today}", seeded)
    statement = await rig.channel.fetch_statement(today)
    assert statement.malformed == ()
    lines = {line.out_payout_no: line for line in statement.lines if line.kind is StatementKind.PAYOUT}
    assert lines[good.out_payout_no].status is PayoutStatus.SUCCEEDED
    assert lines[good.out_payout_no].amount_minor == 1001
    assert lines[good.out_payout_no].out_trade_no == good.out_payout_no
    assert lines[good.out_payout_no].channel_txn_id == rig.sim.runtime.payouts.payouts[good.out_payout_no].payout_id
    assert (lines[bad.out_payout_no].status, lines[bad.out_payout_no].amount_minor) == (PayoutStatus.FAILED, 202)
    assert lines[off.out_payout_no].amount_minor == 10
    assert pending.out_payout_no not in lines and missing.out_payout_no not in lines
    extras = [no for no in lines if no and no.startswith("SIMXW")]
    assert len(extras) == 1 and lines[extras[0]].status is PayoutStatus.SUCCEEDED


async def test_seeded_status_mismatch_reports_a_payout_with_the_other_outcome(rig: Rig) -> None:
    succeeded, failed = payout(10), payout(20, "6222020200000000")
    for request in (succeeded, failed):
        await rig.channel.create_payout(request)
    today = datetime.now(UTC).date()
    flipped = [succeeded.out_payout_no, failed.out_payout_no]
    await admin(rig, "PUT", f"discrepancies/{today}", {"status_mismatch": flipped})
    lines = {line.out_payout_no: line.status for line in (await rig.channel.fetch_statement(today)).lines}
    assert lines[succeeded.out_payout_no] is PayoutStatus.FAILED
    assert lines[failed.out_payout_no] is PayoutStatus.SUCCEEDED


@pytest.mark.parametrize("faults", [{"payout_settle_ms": -1}, {"payout_fail_rate": 1.5}, {"payout_drop_rate": -0.1}])
async def test_out_of_range_payout_faults_are_refused(rig: Rig, faults: dict[str, object]) -> None:
    async with rig.http.put(f"{rig.sim.url}/sim/admin/faults", json=faults) as answer:
        assert answer.status == 400
    async with rig.http.put(f"{rig.sim.url}/sim/admin/payout-funds", json={"funds_minor": -1}) as answer:
        assert answer.status == 400
