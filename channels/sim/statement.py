"""Rows of a simulated daily statement, with discrepancies seeded on request.

The rows are wire-neutral; each channel module renders them in its own CSV format.
Reconciliation tests need every kind of disagreement a real statement shows, so the admin
endpoint can ask for: a row left out, a row we never created, a wrong amount, a wrong status,
and lines that do not parse at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time

import msgspec

from channels.sim.payouts import PayoutState, SimPayout
from channels.sim.store import SimStore

# A statement is rendered in one go; past this many rows the admin asked for something silly.
EXTRA_ROWS_MAX = 10_000
GARBAGE_TEXT = "this line is not part of any statement format"


class Discrepancies(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Admin request body: which rows of one day's statement to falsify.

    `missing`, `amount_mismatch` and `status_mismatch` name payments by out_trade_no and
    payouts by out_payout_no; a payout's status mismatch swaps SUCCESS and FAIL.
    """

    missing: tuple[str, ...] = ()  # out_trade_no whose payment row is left out
    amount_mismatch: dict[str, int] = {}  # out_trade_no -> amount (minor) to report instead
    status_mismatch: tuple[str, ...] = ()  # out_trade_no reported as closed though paid
    extra: int = 0  # successes under synthetic out_trade_no values we never created
    garbage_lines: int = 0  # half unreadable text, half rows with a corrupt amount
    extra_payouts: int = 0  # successful payouts under synthetic out_payout_no values

    def __post_init__(self) -> None:
        counts = (self.extra, self.garbage_lines, self.extra_payouts)
        if not all(0 <= count <= EXTRA_ROWS_MAX for count in counts):
            raise ValueError(f"extra, extra_payouts and garbage_lines must lie in [0, {EXTRA_ROWS_MAX}]")


@dataclass(frozen=True)
class StatementRow:
    kind: str  # "payment" | "refund" | "payout" (out_trade_no holds the out_payout_no)
    out_trade_no: str
    txn_id: str
    amount_minor: int
    currency: str
    status: str  # "SUCCESS" | "CLOSED" (seeded mismatch); refunds are "SUCCESS"; payouts "SUCCESS" | "FAIL"
    at: datetime
    out_refund_no: str = ""
    refund_id: str = ""
    corrupt: bool = False  # the renderer writes an unparseable amount
    junk: bool = False  # the renderer writes GARBAGE_TEXT instead of a row


def extra_out_trade_no(day: date, index: int) -> str:
    """Synthetic references the merchant never issued; recognisable in test failures."""
    return f"SIMX{day:%Y%m%d}{index:06d}"


def extra_out_payout_no(day: date, index: int) -> str:
    return f"SIMXW{day:%Y%m%d}{index:06d}"


def payout_rows(payouts: Sequence[SimPayout], day: date, seeded: Discrepancies, currency: str) -> list[StatementRow]:
    """Finished payouts (successes and failures) dated by when they finished, plus seeded extras."""
    rows: list[StatementRow] = []
    for payout in payouts:
        ask = payout.ask
        assert payout.finished_at is not None
        if ask.out_payout_no in seeded.missing:
            continue
        succeeded = payout.state is PayoutState.SUCCESS
        if ask.out_payout_no in seeded.status_mismatch:
            succeeded = not succeeded
        rows.append(
            StatementRow(
                kind="payout",
                out_trade_no=ask.out_payout_no,
                txn_id=payout.payout_id,
                amount_minor=seeded.amount_mismatch.get(ask.out_payout_no, ask.amount_minor),
                currency=ask.currency,
                status="SUCCESS" if succeeded else "FAIL",
                at=payout.finished_at,
            )
        )
    noon = datetime.combine(day, time(12, 0), tzinfo=UTC)
    for index in range(seeded.extra_payouts):
        no, txn_id = extra_out_payout_no(day, index), f"SIMXWT{day:%Y%m%d}{index:06d}"
        rows.append(StatementRow("payout", no, txn_id, 100 + index, currency, "SUCCESS", noon))
    return rows


def statement_rows(
    store: SimStore, day: date, seeded: Discrepancies, currency: str, payouts: Sequence[SimPayout] = ()
) -> list[StatementRow]:
    """The day's payment, refund and payout rows in time order, falsified as `seeded` asks."""
    rows: list[StatementRow] = []
    for order in store.paid_on(day):
        assert order.paid_at is not None and order.channel_txn_id is not None
        if order.out_trade_no in seeded.missing:
            continue
        rows.append(
            StatementRow(
                kind="payment",
                out_trade_no=order.out_trade_no,
                txn_id=order.channel_txn_id,
                amount_minor=seeded.amount_mismatch.get(order.out_trade_no, order.paid_minor),
                currency=order.currency,
                status="CLOSED" if order.out_trade_no in seeded.status_mismatch else "SUCCESS",
                at=order.paid_at,
            )
        )
    for refund in store.refunded_on(day):
        order = store.orders[refund.out_trade_no]
        rows.append(
            StatementRow(
                kind="refund",
                out_trade_no=refund.out_trade_no,
                txn_id=order.channel_txn_id or "",
                amount_minor=refund.amount_minor,
                currency=order.currency,
                status="SUCCESS",
                at=refund.created_at,
                out_refund_no=refund.out_refund_no,
                refund_id=refund.refund_id,
            )
        )
    noon = datetime.combine(day, time(12, 0), tzinfo=UTC)
    for index in range(seeded.extra):
        rows.append(
            StatementRow(
                kind="payment",
                out_trade_no=extra_out_trade_no(day, index),
                txn_id=f"SIMXT{day:%Y%m%d}{index:06d}",
                amount_minor=100 + index,
                currency=currency,
                status="SUCCESS",
                at=noon,
            )
        )
    rows.extend(payout_rows(payouts, day, seeded, currency))
    rows.sort(key=lambda row: (row.at, row.kind, row.out_trade_no, row.out_refund_no))
    template = rows[0] if rows else StatementRow("payment", "SIMBAD", "SIMBAD", 1, currency, "SUCCESS", noon)
    for index in range(seeded.garbage_lines):
        bad = replace(template, corrupt=True) if index % 2 else replace(template, junk=True)
        rows.insert(min(len(rows), 1 + index), bad)
    return rows
