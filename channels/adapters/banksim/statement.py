"""Parser for the bank channel's daily statement: `#` comment lines around a plain CSV."""

from __future__ import annotations

from datetime import date

from channels.adapters.statement_lines import LineError, collect, csv_fields, parse_time
from channels.amounts import AmountFormatError, major_to_minor
from channels.protocol import (
    ChannelStatus,
    MalformedLine,
    PayoutStatus,
    RefundStatus,
    Statement,
    StatementKind,
    StatementLine,
)

HEADER = [
    "trade_no",
    "out_trade_no",
    "biz_type",
    "trade_status",
    "amount",
    "currency",
    "out_request_no",
    "refund_no",
    "finish_time",
]
_TRADE_STATES = {
    "TRADE_SUCCESS": ChannelStatus.SUCCEEDED,
    "TRADE_FINISHED": ChannelStatus.SUCCEEDED,
    "TRADE_CLOSED": ChannelStatus.CLOSED,
}
_REFUND_STATES = {"REFUND_SUCCESS": RefundStatus.SUCCEEDED, "REFUND_FAIL": RefundStatus.FAILED}
_PAYOUT_STATES = {"PAYOUT_SUCCESS": PayoutStatus.SUCCEEDED, "PAYOUT_FAIL": PayoutStatus.FAILED}


def parse_major(text: str) -> int:
    try:
        return major_to_minor(text)
    except AmountFormatError as error:
        raise LineError(str(error)) from error


def _parse_row(fields: list[str]) -> StatementLine:
    if len(fields) != len(HEADER):
        raise LineError(f"expected {len(HEADER)} fields, got {len(fields)}")
    trade_no, out_trade_no, biz_type, status_text, amount, currency, out_request_no, refund_no, at = fields
    if biz_type == "refund":
        refund_status = _REFUND_STATES.get(status_text)
        if refund_status is None or not out_request_no:
            raise LineError(f"refund row with status {status_text!r} and out_request_no {out_request_no!r}")
        return StatementLine(
            kind=StatementKind.REFUND,
            out_trade_no=out_trade_no,
            channel_txn_id=refund_no or trade_no,
            amount_minor=parse_major(amount),
            currency=currency,
            status=refund_status,
            occurred_at=parse_time(at),
            out_refund_no=out_request_no,
        )
    if biz_type == "payout":
        payout_status = _PAYOUT_STATES.get(status_text)
        if payout_status is None:
            raise LineError(f"payout row with status {status_text!r}")
        return StatementLine(
            kind=StatementKind.PAYOUT,
            out_trade_no=out_trade_no,
            channel_txn_id=trade_no,
            amount_minor=parse_major(amount),
            currency=currency,
            status=payout_status,
            occurred_at=parse_time(at),
            out_payout_no=out_trade_no,
        )
    status = _TRADE_STATES.get(status_text)
    if biz_type != "trade" or status is None:
        raise LineError(f"unknown biz_type/trade_status {biz_type!r}/{status_text!r}")
    return StatementLine(
        kind=StatementKind.PAYMENT,
        out_trade_no=out_trade_no,
        channel_txn_id=trade_no,
        amount_minor=parse_major(amount),
        currency=currency,
        status=status,
        occurred_at=parse_time(at),
    )


def parse_bank_statement(channel: str, day: date, text: str) -> Statement:
    """Comment lines are skipped anywhere; the first other line must be the header."""
    numbered = [
        (line_no, line)
        for line_no, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.startswith("#")
    ]
    if not numbered or csv_fields(numbered[0][1]) != HEADER:
        line_no, header = numbered[0] if numbered else (1, "")
        return Statement(channel, day, (), (MalformedLine(line_no, header, "missing or unknown header"),))
    lines, malformed = collect(iter(numbered[1:]), _parse_row)
    return Statement(channel, day, tuple(lines), tuple(malformed))
