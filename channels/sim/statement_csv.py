"""The daily statement files as each simulated channel writes them.

The column names are the channel's, written out here on purpose rather than shared with
the adapters' parsers: the simulator plays the other side, and a shared constant would
hide a parser that drifted from the file it reads.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime

from channels.amounts import minor_to_major
from channels.sim.statement import GARBAGE_TEXT, StatementRow


def bank_time(moment: datetime | None) -> str:
    return "" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S")


def render_wx_statement(merchant_id: str, rows: list[StatementRow]) -> str:
    """WeChat-style bill: every field prefixed with a backtick, a summary block at the end."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        [
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
    )
    for row in rows:
        if row.junk:
            out.write(GARBAGE_TEXT + "\n")
            continue
        amount = "12x" if row.corrupt else str(row.amount_minor)
        refund = row.kind == "refund"
        # Transfers to bank share the bill: trade_state TRANSFER_SUCCESS / TRANSFER_FAIL, amount in total_fen.
        state = "REFUND" if refund else f"TRANSFER_{row.status}" if row.kind == "payout" else row.status
        fields = [
            row.at.strftime("%Y-%m-%d %H:%M:%S"),
            merchant_id,
            row.txn_id,
            row.out_trade_no,
            state,
            row.currency,
            "0" if refund else amount,
            row.refund_id,
            row.out_refund_no,
            amount if refund else "0",
            row.status if refund else "",
        ]
        writer.writerow(["`" + field for field in fields])
    writer.writerow(["total_count", "total_fen", "total_refund_fen"])
    good = [row for row in rows if not (row.junk or row.corrupt)]
    pay = sum(r.amount_minor for r in good if r.kind == "payment")
    refunds = sum(r.amount_minor for r in good if r.kind == "refund")
    writer.writerow([f"`{len(good)}", f"`{pay}", f"`{refunds}"])
    return out.getvalue()


def render_bank_statement(merchant_id: str, day: date, rows: list[StatementRow]) -> str:
    """Comment lines around a plain CSV body; amounts in major units, refunds positive."""
    out = io.StringIO()
    out.write(f"#banksim statement\n#app_id:{merchant_id}\n#date:{day.isoformat()}\n")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        [
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
    )
    for row in rows:
        if row.junk:
            out.write(GARBAGE_TEXT + "\n")
            continue
        refund = row.kind == "refund"
        status = ("REFUND_SUCCESS" if refund else "TRADE_SUCCESS") if row.status == "SUCCESS" else "TRADE_CLOSED"
        if row.kind == "payout":
            status = f"PAYOUT_{row.status}"
        writer.writerow(
            [
                row.txn_id,
                row.out_trade_no,
                row.kind if row.kind == "payout" else "refund" if refund else "trade",
                status,
                "1.234" if row.corrupt else minor_to_major(row.amount_minor),
                row.currency,
                row.out_refund_no,
                row.refund_id,
                bank_time(row.at),
            ]
        )
    out.write(f"#end\n#rows:{sum(1 for row in rows if not row.junk)}\n")
    return out.getvalue()
