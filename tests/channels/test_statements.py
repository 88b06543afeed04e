"""Daily statements: exact amounts, every seeded discrepancy, bad lines with line numbers."""

from __future__ import annotations

from datetime import UTC, date, datetime

from channels.adapters.banksim.statement import parse_bank_statement
from channels.adapters.wxsim.statement import parse_wx_statement
from channels.protocol import ChannelStatus, RefundRequest, RefundStatus, StatementKind

from .conftest import Rig
from .test_channel_flow import voucher


async def _paid_orders(rig: Rig, amounts_minor: list[int]) -> list[str]:
    numbers = []
    for amount_minor in amounts_minor:
        order = voucher(amount_minor)
        await rig.channel.create_voucher(order)
        await rig.pay(order.out_trade_no)
        numbers.append(order.out_trade_no)
    return numbers


async def test_statement_lists_payments_and_refunds_with_exact_amounts(rig: Rig) -> None:
    a, b = await _paid_orders(rig, [1999, 1])
    await rig.channel.refund(RefundRequest(a, f"{a}-r", 1, 1999, "CNY"))
    unpaid = voucher(500)
    await rig.channel.create_voucher(unpaid)
    statement = await rig.channel.fetch_statement(datetime.now(UTC).date())
    assert statement.malformed == ()
    payments = {line.out_trade_no: line for line in statement.lines if line.kind is StatementKind.PAYMENT}
    refunds = [line for line in statement.lines if line.kind is StatementKind.REFUND]
    assert {no: line.amount_minor for no, line in payments.items()} == {a: 1999, b: 1}
    assert all(line.status is ChannelStatus.SUCCEEDED and line.currency == "CNY" for line in payments.values())
    assert [(r.out_trade_no, r.out_refund_no, r.amount_minor, r.status) for r in refunds] == [
        (a, f"{a}-r", 1, RefundStatus.SUCCEEDED)
    ]


async def test_seeded_discrepancies_show_in_the_statement(rig: Rig) -> None:
    missing, wrong_amount, wrong_status, fine = await _paid_orders(rig, [100, 200, 300, 400])
    today = datetime.now(UTC).date()
    seeded = {
        "missing": [missing],
        "amount_mismatch": {wrong_amount: 201},
        "status_mismatch": [wrong_status],
        "extra": 2,
    }
    async with rig.http.put(f"{rig.sim.url}/sim/admin/discrepancies/{today}", json=seeded) as answer:
        assert answer.status == 200
    statement = await rig.channel.fetch_statement(today)
    by_no = {line.out_trade_no: line for line in statement.lines}
    assert missing not in by_no
    assert by_no[wrong_amount].amount_minor == 201
    assert by_no[wrong_status].status is ChannelStatus.CLOSED
    assert (by_no[fine].amount_minor, by_no[fine].status) == (400, ChannelStatus.SUCCEEDED)
    extras = [no for no in by_no if no.startswith("SIMX")]
    assert len(extras) == 2 and all(by_no[no].status is ChannelStatus.SUCCEEDED for no in extras)


async def test_unreadable_statement_lines_are_reported_with_their_line_numbers(rig: Rig) -> None:
    await _paid_orders(rig, [100, 200, 300])
    today = datetime.now(UTC).date()
    async with rig.http.put(f"{rig.sim.url}/sim/admin/discrepancies/{today}", json={"garbage_lines": 2}):
        pass
    statement = await rig.channel.fetch_statement(today)
    async with rig.http.get(f"{rig.sim.url}/sim/statements/{today}") as answer:
        raw_lines = (await answer.text()).splitlines()
    assert len(statement.lines) == 3
    assert len(statement.malformed) == 2
    for bad in statement.malformed:
        assert raw_lines[bad.line_no - 1] == bad.text
        assert bad.reason


async def test_statement_of_a_day_without_business_is_empty(rig: Rig) -> None:
    statement = await rig.channel.fetch_statement(date(2020, 1, 1))
    assert (statement.lines, statement.malformed) == ((), ())


def test_bank_statement_parser_reports_each_bad_amount_and_keeps_good_lines() -> None:
    text = "\n".join(
        [
            "#banksim statement",
            "trade_no,out_trade_no,biz_type,trade_status,amount,currency,out_request_no,refund_no,finish_time",
            "T1,o1,trade,TRADE_SUCCESS,19.99,CNY,,,2026-11-22 10:00:00",
            "T2,o2,trade,TRADE_SUCCESS,19.999,CNY,,,2026-11-22 10:00:00",
            "T3,o3,trade,TRADE_SUCCESS,-1.00,CNY,,,2026-11-22 10:00:00",
            "T4,o4,trade,TRADE_SUCCESS,1e3,CNY,,,2026-11-22 10:00:00",
            "T5,o5,trade,TRADE_SUCCESS,0.29,CNY,,,2026-11-22 10:00:00",
            "T6,o6,refund,REFUND_SUCCESS,0.01,CNY,o6-r,R6,2026-11-22 10:00:00",
            "T7,o7,trade,TRADE_SUCCESS,1.00,CNY,,,yesterday",
            "T8,o8,trade",
            "#rows:8",
        ]
    )
    statement = parse_bank_statement("banksim", date(2026, 11, 22), text)
    assert [(line.out_trade_no, line.amount_minor) for line in statement.lines] == [("o1", 1999), ("o5", 29), ("o6", 1)]
    assert [bad.line_no for bad in statement.malformed] == [4, 5, 6, 9, 10]


def test_wx_statement_without_header_is_one_malformed_line() -> None:
    statement = parse_wx_statement("wxsim", date(2026, 11, 22), "<html>maintenance</html>\n")
    assert statement.lines == ()
    assert [(bad.line_no, bad.text) for bad in statement.malformed] == [(1, "<html>maintenance</html>")]
