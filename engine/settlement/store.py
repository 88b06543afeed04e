"""All SQL of settlement: what is due per merchant, batches and their items, settlement terms.

A payment is due on settlement date S when it succeeded, its journal entry is dated no later than
S - cycle_days (the merchant's cycle, default 1), it was not settled before, and it is reconciled: a
wallet payment needs no channel; a channel payment needs a reconciliation item of a live run (one no
re-run superseded) that is ok or resolved, and none that is still open (an exception order waits until
it is handled: engine/settlement/advice_store.py lists what waits and why). Succeeded refunds due by
the same rule are deducted, and so are refused ones an operator re-routed to the customer's wallet. An
invoiced fee (engine.merchants.pricing.INVOICED) never reached the pending account's netting: such a
payment settles its whole amount and its fee counts as 0 here.

Every other entry that moved the merchant's pending account (an operator's adjustment, a reversal, a refund
re-routed by hand: any transaction code but NOT_ADJUSTMENTS, those of payments, refunds, settlements, sweeps
and of entries that never touch a pending account) is due by the same date rule and settles as an
'adjustment' item with the signed amount it moved. So a batch pays exactly Σ (payments' net) - Σ (refunds'
net) + Σ (adjustments) of what is due and released, which is what those entries left in the pending account:
held-back payments stay there, and so does nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from accounts.store import Conn

# Codes whose legs on a merchant's pending account settle through their payment or refund (or are settlements,
# or move money between sub-accounts of the one account).
SETTLED_AS_PAYMENTS = ("PAY_CHANNEL", "PAY_CHANNEL_INVOICED", "PAY_WALLET", "PAY_WALLET_INVOICED",
                       "REFUND_CHANNEL", "REFUND_CHANNEL_INVOICED", "REFUND_WALLET", "REFUND_WALLET_INVOICED",
                       "SETTLE", "SWEEP")
# Codes that never post to a merchant's pending account (wallets, available balances, payouts, fee invoices):
# left out so the scan for adjustments reads only the rare entries that may (ADJUST, FEE, the desk's codes).
NEVER_ON_PENDING = ("TOPUP", "TRANSFER_C2C", "CASHBACK", "FEE_INVOICE_PAID", "FEE_INVOICE_RECEIVED",
                    "PAYOUT_FREEZE", "PAYOUT_SETTLE", "PAYOUT_UNFREEZE")
# Migration 084's partial index journal_entries_settled_apart lists the same codes in this order (a test checks).
NOT_ADJUSTMENTS = SETTLED_AS_PAYMENTS + NEVER_ON_PENDING
_NOT_ADJUSTMENTS_SQL = ", ".join(f"'{code}'" for code in NOT_ADJUSTMENTS)
# A refund the channel refused and an operator re-routed to the customer's wallet (engine/reroutes/) booked
# REFUND_WALLET under the refund's own number: its money left the pending account as a refund's does, so it is
# deducted as a refund (its code is not an adjustment). One re-routed to a bank booked REFUND_TO_BANK, which
# settles as an adjustment; one handled by hand booked nothing.
_REFUNDED_TO_WALLET_SQL = "'REFUND_WALLET', 'REFUND_WALLET_INVOICED'"

# A channel payment is reconciled once an item of a live run (not superseded by a re-run) matched it (ok or
# resolved) and none of its items is still open (or resolving: a desk proposal about its money awaits approval);
# only then may it be settled. Wallet payments need no channel.
_RECONCILED = """EXISTS (SELECT 1 FROM recon_items r JOIN recon_runs u ON u.id = r.run_id
                        WHERE r.payment_id = p.id AND r.kind = 'payment' AND r.state IN ('ok', 'resolved')
                          AND u.superseded_by IS NULL)
       AND NOT EXISTS (SELECT 1 FROM recon_items r WHERE r.payment_id = p.id AND r.kind = 'payment'
                                         AND r.state IN ('open', 'resolving'))"""

# A payment or refund whose journal entry the exception desk reversed (engine/desk/) moved no money any more: its
# mirror took the merchant's pending share back, so settlement pays (or deducts) neither the original nor the
# mirror. Once the original was settled, though, the mirror is an adjustment like any other (the merchant owes it).
_NOT_REVERSED = "NOT EXISTS (SELECT 1 FROM journal_reversals v WHERE v.original_txn_no = {txn_no})"
_NOT_MIRROR_OF_UNSETTLED = """NOT EXISTS (
    SELECT 1 FROM journal_reversals v
    WHERE v.reversal_txn_no = e.txn_no
      AND (EXISTS (SELECT 1 FROM payments op WHERE op.txn_no = v.original_txn_no
                   AND NOT EXISTS (SELECT 1 FROM settlement_items s WHERE s.object_id = op.id))
           OR EXISTS (SELECT 1 FROM refunds orf WHERE orf.txn_no = v.original_txn_no
                      AND NOT EXISTS (SELECT 1 FROM settlement_items s WHERE s.object_id = orf.id))))"""


_DUE = f"""
SELECT p.merchant_id, p.currency, 'payment' AS kind, p.id, p.amount,
       CASE WHEN p.fee_collection = 'invoiced' THEN 0 ELSE p.fee END AS fee
FROM payments p
JOIN journal_entries e ON e.txn_no = p.txn_no
LEFT JOIN merchant_settlement_terms t ON t.merchant_id = p.merchant_id
WHERE p.status = 'succeeded'
  AND e.accounting_date <= $1::date - coalesce(t.cycle_days, 1)
  AND ($2::text IS NULL OR p.merchant_id = $2::text) AND ($3::text IS NULL OR p.currency = $3::text)
  AND NOT EXISTS (SELECT 1 FROM settlement_items s WHERE s.object_id = p.id)
  AND (p.method = 'wallet' OR ({_RECONCILED}))
  AND {_NOT_REVERSED.format(txn_no="p.txn_no")}
UNION ALL
SELECT r.merchant_id, p.currency, 'refund', r.id, r.amount,
       CASE WHEN p.fee_collection = 'invoiced' THEN 0 ELSE r.fee_refunded END
FROM refunds r
JOIN payments p ON p.id = r.payment_id
JOIN journal_entries e ON e.txn_no = r.txn_no
LEFT JOIN merchant_settlement_terms t ON t.merchant_id = r.merchant_id
WHERE (r.status = 'succeeded' OR (r.status = 'rerouted' AND e.txn_code IN ({_REFUNDED_TO_WALLET_SQL})))
  AND e.accounting_date <= $1::date - coalesce(t.cycle_days, 1)
  AND ($2::text IS NULL OR r.merchant_id = $2::text) AND ($3::text IS NULL OR p.currency = $3::text)
  AND NOT EXISTS (SELECT 1 FROM settlement_items s WHERE s.object_id = r.id)
  AND {_NOT_REVERSED.format(txn_no="r.txn_no")}
UNION ALL
SELECT a.owner_id, a.currency, 'adjustment', e.txn_no::text, sum(l.delta)::bigint, 0
FROM journal_entries e
JOIN journal_legs l ON l.txn_no = e.txn_no AND l.accounting_date = e.accounting_date
JOIN accounts a ON a.id = l.account_id
LEFT JOIN merchant_settlement_terms t ON t.merchant_id = a.owner_id
WHERE e.txn_code NOT IN ({_NOT_ADJUSTMENTS_SQL})
  AND a.kind = 'merchant' AND a.role = 'merchant_pending'
  AND e.accounting_date <= $1::date - coalesce(t.cycle_days, 1)
  AND ($2::text IS NULL OR a.owner_id = $2::text) AND ($3::text IS NULL OR a.currency = $3::text)
  AND NOT EXISTS (SELECT 1 FROM settlement_items s WHERE s.object_id = e.txn_no::text)
  AND {_NOT_MIRROR_OF_UNSETTLED}
GROUP BY a.owner_id, a.currency, e.txn_no
HAVING sum(l.delta) <> 0
"""


@dataclass(frozen=True, slots=True)
class Unsettled:
    """Succeeded payments not settled yet, of one merchant, currency, booking date and channel: when they fall due
    (booking date + the merchant's cycle) and whether a channel's reconciliation still holds them back."""

    merchant_id: str
    currency: str
    booked_on: date  # the accounting date of their journal entries
    cycle_days: int
    channel: str | None  # None: wallet payments (no reconciliation needed)
    reconciled: bool
    payments: int

    @property
    def due_on(self) -> date:
        return self.booked_on + timedelta(days=self.cycle_days)


async def unsettled(conn: Conn, merchant_id: str | None, groups_max: int) -> list[Unsettled]:
    """The earliest-due groups of succeeded payments no batch holds (at most ``groups_max``): what a settle run
    that found nothing due can say about when something will be."""
    rows = await conn.fetch(
        "SELECT p.merchant_id, p.currency, e.accounting_date AS booked_on, coalesce(t.cycle_days, 1) AS cycle_days,"
        f"  p.channel, (p.method = 'wallet' OR ({_RECONCILED})) AS reconciled, count(*) AS payments"
        " FROM payments p JOIN journal_entries e ON e.txn_no = p.txn_no"
        " LEFT JOIN merchant_settlement_terms t ON t.merchant_id = p.merchant_id"
        " WHERE p.status = 'succeeded' AND ($1::text IS NULL OR p.merchant_id = $1::text)"
        "   AND NOT EXISTS (SELECT 1 FROM settlement_items s WHERE s.object_id = p.id)"
        f"  AND {_NOT_REVERSED.format(txn_no='p.txn_no')}"
        " GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY e.accounting_date + coalesce(t.cycle_days, 1), 1, 2, 5 NULLS FIRST"
        " LIMIT $2",
        merchant_id, groups_max)
    return [Unsettled(r["merchant_id"], r["currency"].strip(), r["booked_on"], r["cycle_days"], r["channel"],
                      r["reconciled"], r["payments"]) for r in rows]


@dataclass(frozen=True, slots=True)
class Batch:
    id: str
    merchant_id: str
    currency: str
    settle_date: date
    through_date: date
    payments: int
    gross: int
    fees: int
    refunds: int
    refunded: int
    refund_fees: int
    net: int
    txn_no: str | None
    created_at: datetime
    adjustments: int = 0  # other entries on the pending account settled by this batch
    adjusted: int = 0  # Σ what they moved, signed (credit to the merchant +)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "merchant_id": self.merchant_id, "currency": self.currency,
                "settle_date": self.settle_date.isoformat(), "through_date": self.through_date.isoformat(),
                "payments": self.payments, "gross": self.gross, "fees": self.fees, "refunds": self.refunds,
                "refunded": self.refunded, "refund_fees": self.refund_fees, "adjustments": self.adjustments,
                "adjusted": self.adjusted, "net": self.net, "txn_no": self.txn_no,
                "created_at": self.created_at.isoformat()}


BATCH_COLUMNS = ("id, merchant_id, currency, settle_date, through_date, payments, gross, fees, refunds, refunded,"
                 " refund_fees, net, txn_no, created_at, adjustments, adjusted")


def batch_of(r: Any) -> Batch:
    return Batch(r["id"], r["merchant_id"], r["currency"].strip(), r["settle_date"], r["through_date"],
                 r["payments"], r["gross"], r["fees"], r["refunds"], r["refunded"], r["refund_fees"], r["net"],
                 r["txn_no"], r["created_at"], r["adjustments"], r["adjusted"])


async def due_groups(conn: Conn, settle_date: date, merchant_id: str | None) -> list[tuple[str, str]]:
    rows = await conn.fetch(f"SELECT DISTINCT merchant_id, currency FROM ({_DUE}) due ORDER BY 1, 2",
                            settle_date, merchant_id, None)
    return [(r["merchant_id"], r["currency"].strip()) for r in rows]


async def get_batch(conn: Conn, merchant_id: str, currency: str, settle_date: date) -> Batch | None:
    r = await conn.fetchrow(f"SELECT {BATCH_COLUMNS} FROM settlement_batches"
                            " WHERE merchant_id = $1 AND currency = $2 AND settle_date = $3",
                            merchant_id, currency, settle_date)
    return batch_of(r) if r else None


async def batches_of(conn: Conn, settle_date: date, merchant_id: str | None = None) -> list[Batch]:
    rows = await conn.fetch(f"SELECT {BATCH_COLUMNS} FROM settlement_batches WHERE settle_date = $1"
                            " AND ($2::text IS NULL OR merchant_id = $2) ORDER BY merchant_id, currency",
                            settle_date, merchant_id)
    return [batch_of(r) for r in rows]


async def claim_due(conn: Conn, batch_id: str, merchant_id: str, currency: str, settle_date: date,
                    through_date: date) -> Batch:
    """Create the batch and claim every due payment and refund for it in two statements; returns the
    batch with its sums (txn_no still NULL). Caller holds the transaction."""
    await conn.execute(
        "INSERT INTO settlement_batches (id, merchant_id, currency, settle_date, through_date, payments, gross,"
        " fees, refunds, refunded, refund_fees, net) VALUES ($1, $2, $3, $4, $5, 0, 0, 0, 0, 0, 0, 0)",
        batch_id, merchant_id, currency, settle_date, through_date)
    r = await conn.fetchrow(
        f"WITH ins AS (INSERT INTO settlement_items (object_id, kind, batch_id, amount, fee)"
        f"  SELECT id, kind, $4, amount, fee FROM ({_DUE}) due RETURNING kind, amount, fee)"
        " UPDATE settlement_batches b SET payments = s.payments, gross = s.gross, fees = s.fees,"
        "   refunds = s.refunds, refunded = s.refunded, refund_fees = s.refund_fees,"
        "   adjustments = s.adjustments, adjusted = s.adjusted,"
        "   net = greatest(s.gross - s.fees - s.refunded + s.refund_fees + s.adjusted, 0)"
        " FROM (SELECT count(*) FILTER (WHERE kind = 'payment') AS payments,"
        "   coalesce(sum(amount) FILTER (WHERE kind = 'payment'), 0) AS gross,"
        "   coalesce(sum(fee) FILTER (WHERE kind = 'payment'), 0) AS fees,"
        "   count(*) FILTER (WHERE kind = 'refund') AS refunds,"
        "   coalesce(sum(amount) FILTER (WHERE kind = 'refund'), 0) AS refunded,"
        "   coalesce(sum(fee) FILTER (WHERE kind = 'refund'), 0) AS refund_fees,"
        "   count(*) FILTER (WHERE kind = 'adjustment') AS adjustments,"
        "   coalesce(sum(amount) FILTER (WHERE kind = 'adjustment'), 0) AS adjusted FROM ins) s"
        " WHERE b.id = $4 RETURNING s.gross - s.fees - s.refunded + s.refund_fees + s.adjusted AS raw_net,"
        f" {_prefixed()}",
        settle_date, merchant_id, currency, batch_id)
    assert r is not None
    if r["raw_net"] < 0:
        raise NegativeNet(merchant_id, currency, int(r["raw_net"]))
    return batch_of(r)


def _prefixed() -> str:
    return ", ".join(f"b.{c.strip()}" for c in BATCH_COLUMNS.split(","))


class NegativeNet(Exception):
    """Refunds (and adjustments) due exceed payments due: nothing is settled, everything waits for the next run."""

    def __init__(self, merchant_id: str, currency: str, net: int) -> None:
        super().__init__(f"{merchant_id} {currency}: refunds exceed payments by {-net}")
        self.merchant_id = merchant_id
        self.net = net


async def set_batch_txn(conn: Conn, batch_id: str, txn_no: str) -> None:
    await conn.execute("UPDATE settlement_batches SET txn_no = $2 WHERE id = $1", batch_id, txn_no)
