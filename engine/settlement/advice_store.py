"""SQL of what operators read about settlement: a batch's remittance advice (its lines) and what is held back.

A remittance line is one item of the batch: a payment (gross, fee), a refund (refunded, fee returned) or an
adjustment (an entry on the pending account, signed); Σ of the lines' figures are the batch's figures.

A payment is held back while it succeeded but cannot be settled for want of reconciliation: an item of it is
still open or resolving ('recon_item_open', naming the item, its run, outcome and state), or no live run (one not
superseded) has an ok or resolved item of it yet although its booking date is closed
('awaiting_reconciliation'). Payments not due yet (the merchant's cycle) are not held back; `payengine settle`
notes when they fall due.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from accounts.store import Conn
from engine.settlement.store import BATCH_COLUMNS, Batch, batch_of


async def batch_by_id(conn: Conn, batch_id: str) -> Batch | None:
    r = await conn.fetchrow(f"SELECT {BATCH_COLUMNS} FROM settlement_batches WHERE id = $1", batch_id)
    return batch_of(r) if r else None

LineKind = Literal["payment", "refund", "adjustment"]
HoldReason = Literal["recon_item_open", "awaiting_reconciliation"]
_KINDS: dict[str, LineKind] = {"payment": "payment", "refund": "refund", "adjustment": "adjustment"}

_LINES = """
SELECT s.kind, s.object_id, s.amount, s.fee,
       CASE s.kind WHEN 'payment' THEN s.object_id WHEN 'refund' THEN r.payment_id END AS payment_id,
       coalesce(p.merchant_order_no, rp.merchant_order_no) AS merchant_order_no
FROM settlement_items s
LEFT JOIN payments p ON s.kind = 'payment' AND p.id = s.object_id
LEFT JOIN refunds r ON s.kind = 'refund' AND r.id = s.object_id
LEFT JOIN payments rp ON rp.id = r.payment_id
WHERE s.batch_id = $1 AND ($2::text IS NULL OR s.object_id > $2)
ORDER BY s.object_id LIMIT $3
"""


@dataclass(frozen=True, slots=True)
class RemittanceLine:
    kind: LineKind
    id: str  # payment id, refund id, or the adjustment's transaction number
    payment_id: str | None
    merchant_order_no: str | None
    gross: int
    fee: int
    refunded: int
    refund_fee: int
    adjusted: int

    @property
    def net(self) -> int:
        return self.gross - self.fee - self.refunded + self.refund_fee + self.adjusted


def _line(r: Any) -> RemittanceLine:
    kind, amount, fee = _KINDS[r["kind"]], int(r["amount"]), int(r["fee"])
    return RemittanceLine(kind, r["object_id"], r["payment_id"], r["merchant_order_no"],
                          amount if kind == "payment" else 0, fee if kind == "payment" else 0,
                          amount if kind == "refund" else 0, fee if kind == "refund" else 0,
                          amount if kind == "adjustment" else 0)


async def remittance_lines(conn: Conn, batch_id: str, after: str | None, limit: int) -> list[RemittanceLine]:
    """The batch's lines in id order, after ``after`` (the last id of the previous page)."""
    return [_line(r) for r in await conn.fetch(_LINES, batch_id, after, limit)]


_HELD = """
SELECT p.merchant_id, p.id AS payment_id, p.merchant_order_no, p.currency, p.amount,
       CASE WHEN p.fee_collection = 'invoiced' THEN 0 ELSE p.fee END AS fee, p.channel,
       e.accounting_date AS booked_on, i.id AS item_id, i.run_id, i.outcome, i.state, i.our_amount, i.their_amount
FROM payments p
JOIN journal_entries e ON e.txn_no = p.txn_no
LEFT JOIN LATERAL (SELECT r.id, r.run_id, r.outcome, r.state, r.our_amount, r.their_amount FROM recon_items r
                   WHERE r.payment_id = p.id AND r.kind = 'payment' AND r.state IN ('open', 'resolving')
                   ORDER BY r.id DESC LIMIT 1) i ON true
WHERE p.status = 'succeeded' AND p.method = 'channel'
  AND ($1::text IS NULL OR p.merchant_id = $1)
  AND NOT EXISTS (SELECT 1 FROM settlement_items s WHERE s.object_id = p.id)
  AND (i.id IS NOT NULL
       OR (e.accounting_date < (SELECT open_date FROM accounting_calendar)
           AND NOT EXISTS (SELECT 1 FROM recon_items r JOIN recon_runs u ON u.id = r.run_id
                           WHERE r.payment_id = p.id AND r.kind = 'payment' AND r.state IN ('ok', 'resolved')
                             AND u.superseded_by IS NULL)))
ORDER BY e.accounting_date, p.id
LIMIT $2
"""


@dataclass(frozen=True, slots=True)
class HeldPayment:
    merchant_id: str
    payment_id: str
    merchant_order_no: str
    currency: str
    amount: int
    fee: int
    channel: str | None
    booked_on: date
    reason: HoldReason
    recon_item_id: int | None
    recon_run_id: str | None
    outcome: str | None
    state: str | None
    our_amount: int | None
    their_amount: int | None

    @property
    def net(self) -> int:
        return self.amount - self.fee


async def held_payments(conn: Conn, merchant_id: str | None, limit: int) -> list[HeldPayment]:
    """Succeeded channel payments settlement holds back, earliest booked first (at most ``limit``)."""
    rows = await conn.fetch(_HELD, merchant_id, limit)
    return [HeldPayment(r["merchant_id"], r["payment_id"], r["merchant_order_no"], r["currency"].strip(),
                        r["amount"], r["fee"], r["channel"], r["booked_on"],
                        "recon_item_open" if r["item_id"] is not None else "awaiting_reconciliation",
                        r["item_id"], r["run_id"], r["outcome"], r["state"], r["our_amount"], r["their_amount"])
            for r in rows]
