"""Parser for the wallet channel's daily bill (WeChat style: backtick-prefixed fields)."""

from __future__ import annotations

from datetime import date

from channels.adapters.statement_lines import LineError, collect, csv_fields, parse_minor, parse_time
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
    "trade_time",
    "mch_id",
    "transaction_id",
    "out_trade_no",
    "trade_state",
    "currency",
    "total_fen",
    "refund_id",
    "out_refund_no",
    "refund_fen",
    "refund_status",
]
SUMMARY_HEADER = "total_count"
_PAYMENT_STATES = {
    "SUCCESS": ChannelStatus.SUCCEEDED,
    "CLOSED": ChannelStatus.CLOSED,
    "REVOKED": ChannelStatus.CLOSED,
    "PAYERROR": ChannelStatus.FAILED,
}
_REFUND_STATES = {
    "SUCCESS": RefundStatus.SUCCEEDED,
    "PROCESSING": RefundStatus.PROCESSING,
    "ABNORMAL": RefundStatus.FAILED,
    "CLOSED": RefundStatus.FAILED,
}
# Transfers to bank cards/accounts (payouts) share the bill; their amount is in total_fen.
_TRANSFER_STATES = {"TRANSFER_SUCCESS": PayoutStatus.SUCCEEDED, "TRANSFER_FAIL": PayoutStatus.FAILED}


def _parse_row(fields: list[str]) -> StatementLine:
    if len(fields) != len(HEADER):
        raise LineError(f"expected {len(HEADER)} fields, got {len(fields)}")
    if not all(field.startswith("`") for field in fields):
        raise LineError("field without the leading backtick")
    (at, _mch, txn_id, out_trade_no, state, currency, total, refund_id, out_refund_no, refund, refund_state) = (
        field[1:] for field in fields
    )
    if state == "REFUND":
        refund_status = _REFUND_STATES.get(refund_state)
        if refund_status is None or not out_refund_no:
            raise LineError(f"refund row with status {refund_state!r} and out_refund_no {out_refund_no!r}")
        return StatementLine(
            kind=StatementKind.REFUND,
            out_trade_no=out_trade_no,
            channel_txn_id=refund_id or txn_id,
            amount_minor=parse_minor(refund),
            currency=currency,
            status=refund_status,
            occurred_at=parse_time(at),
            out_refund_no=out_refund_no,
        )
    payout_status = _TRANSFER_STATES.get(state)
    if payout_status is not None:
        return StatementLine(
            kind=StatementKind.PAYOUT,
            out_trade_no=out_trade_no,
            channel_txn_id=txn_id,
            amount_minor=parse_minor(total),
            currency=currency,
            status=payout_status,
            occurred_at=parse_time(at),
            out_payout_no=out_trade_no,
        )
    status = _PAYMENT_STATES.get(state)
    if status is None:
        raise LineError(f"unknown trade_state {state!r}")
    return StatementLine(
        kind=StatementKind.PAYMENT,
        out_trade_no=out_trade_no,
        channel_txn_id=txn_id,
        amount_minor=parse_minor(total),
        currency=currency,
        status=status,
        occurred_at=parse_time(at),
    )


def parse_wx_statement(channel: str, day: date, text: str) -> Statement:
    """Header on line 1, one row per line, then a summary block that we skip."""
    physical = text.splitlines()
    if not physical or csv_fields(physical[0]) != HEADER:
        header = physical[0] if physical else ""
        return Statement(channel, day, (), (MalformedLine(1, header, "missing or unknown header"),))
    body: list[tuple[int, str]] = []
    for line_no, line in enumerate(physical[1:], start=2):
        if line.startswith(SUMMARY_HEADER):
            break
        if line.strip():
            body.append((line_no, line))
    lines, malformed = collect(iter(body), _parse_row)
    return Statement(channel, day, tuple(lines), tuple(malformed))
