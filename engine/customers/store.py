"""All SQL about customers and their wallets: customers and topups. (Merchants and platform accounts:
engine/merchants/store.py; idempotency keys: engine/idempotency/store.py.)

Functions take a connection and run inside whatever transaction the caller holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import asyncpg

from accounts.model import AccountId, AccountKind, AccountSpec
from accounts.store import Conn, leg_date_bounds, open_account
from accounts.subjects import ROLE_SUBJECTS
from engine.errors import DuplicateOrder


@dataclass(frozen=True, slots=True)
class CustomerRecord:
    id: str
    merchant_id: str
    external_id: str
    currency: str
    wallet_account_id: AccountId
    balance_minor: int
    created_at: datetime
    frozen_minor: int = 0  # in the customer's frozen account: open payouts (engine/payouts), not spendable


_CUSTOMER_SELECT = (
    "SELECT c.id, c.merchant_id, c.external_id, c.currency, c.wallet_account_id, a.balance, c.created_at,"
    " coalesce(f.balance, 0) AS frozen"
    " FROM customers c JOIN accounts a ON a.id = c.wallet_account_id"
    " LEFT JOIN accounts f ON f.owner_id = c.id AND f.role = 'customer_frozen' AND f.currency = c.currency"
    " AND f.parent_id IS NULL"
)


def _customer(row: asyncpg.Record) -> CustomerRecord:
    return CustomerRecord(row["id"], row["merchant_id"], row["external_id"], row["currency"].strip(),
                          AccountId(row["wallet_account_id"]), row["balance"], row["created_at"], row["frozen"])


async def insert_customer(conn: Conn, customer_id: str, merchant_id: str, external_id: str, currency: str,
                          wallet_account_id: str, now: datetime) -> CustomerRecord:
    """Open the customer's wallet and insert the customer (caller holds the transaction).

    Raises DuplicateOrder naming the existing customer when external_id was used by this merchant."""
    existing = await conn.fetchval(
        "SELECT id FROM customers WHERE merchant_id = $1 AND external_id = $2", merchant_id, external_id)
    if existing is not None:
        raise DuplicateOrder("external_id", external_id, existing)
    spec = AccountSpec(AccountId(wallet_account_id), AccountKind.CUSTOMER, customer_id, "customer_wallet",
                       ROLE_SUBJECTS["customer_wallet"], currency)
    await open_account(conn, spec)
    try:
        await conn.execute(
            "INSERT INTO customers (id, merchant_id, external_id, currency, wallet_account_id, created_at)"
            " VALUES ($1, $2, $3, $4, $5, $6)",
            customer_id, merchant_id, external_id, currency, wallet_account_id, now,
        )
    except asyncpg.UniqueViolationError:  # a concurrent create won; the caller's transaction rolls back
        raise DuplicateOrder("external_id", external_id, "a concurrent request") from None
    return CustomerRecord(customer_id, merchant_id, external_id, currency, AccountId(wallet_account_id), 0, now)


async def get_customer(conn: Conn, merchant_id: str, customer_id: str) -> CustomerRecord | None:
    row = await conn.fetchrow(_CUSTOMER_SELECT + " WHERE c.id = $1 AND c.merchant_id = $2", customer_id, merchant_id)
    return _customer(row) if row else None


async def insert_topup(conn: Conn, topup_id: str, customer_id: str, topup_no: str, amount: int, txn_no: str,
                       now: datetime) -> None:
    """Record a topup; raises DuplicateOrder naming the earlier topup with the same topup_no."""
    inserted = await conn.fetchval(
        "INSERT INTO topups (id, customer_id, topup_no, amount, txn_no, created_at) VALUES ($1,$2,$3,$4,$5,$6)"
        " ON CONFLICT ON CONSTRAINT topups_customer_topup_no DO NOTHING RETURNING id",
        topup_id, customer_id, topup_no, amount, txn_no, now,
    )
    if inserted is None:
        existing = await conn.fetchval(
            "SELECT id FROM topups WHERE customer_id = $1 AND topup_no = $2", customer_id, topup_no)
        raise DuplicateOrder("topup_no", topup_no, existing)


# ---------------------------------------------------------------- idempotency keys


# ---------------------------------------------------------------- statements

@dataclass(frozen=True, slots=True)
class StatementRow:
    """One applied leg of an account with what its entry was booked for: the payment or refund its ``ref`` names
    (with the order and refund numbers) and, for the payment's or refund's own entry, its gross/fee split."""

    seq: int
    txn_no: str
    txn_code: str
    side: str
    amount_minor: int
    delta: int
    balance_after: int
    accounting_date: date
    applied_at: datetime
    ref: str | None
    payment_id: str | None
    refund_id: str | None
    merchant_order_no: str | None
    merchant_refund_no: str | None
    gross_minor: int | None  # the payment's or refund's amount, on the entry that booked it
    fee_minor: int | None  # its fee (a refund: the fee share it gave back)


# One statement for the page: the entry's ref names a payment or a refund by primary key, so each line costs two
# index probes, never a query of its own. The gross/fee split is the payment's (refund's) own only on the entry
# booked under its own transaction number (not, say, a late success's second booking of the same payment).
_STATEMENT = """
SELECT l.seq, l.txn_no, e.txn_code, l.side, l.amount, l.delta, l.balance_after, l.accounting_date, l.applied_at,
       e.ref, coalesce(p.id, r.payment_id) AS payment_id, r.id AS refund_id,
       coalesce(p.merchant_order_no, rp.merchant_order_no) AS merchant_order_no, r.merchant_refund_no,
       CASE WHEN p.txn_no = e.txn_no THEN p.amount WHEN r.txn_no = e.txn_no THEN r.amount END AS gross,
       CASE WHEN p.txn_no = e.txn_no THEN p.fee WHEN r.txn_no = e.txn_no THEN r.fee_refunded END AS fee
FROM (
    -- The page first (the account's index in seq order), then the joins for its lines only.
    SELECT * FROM journal_legs l WHERE l.account_id = $1 AND l.seq IS NOT NULL AND l.seq > $2{dates}
    ORDER BY l.seq LIMIT $3
) l
JOIN journal_entries e ON e.accounting_date = l.accounting_date AND e.txn_no = l.txn_no
LEFT JOIN payments p ON p.id = e.ref
LEFT JOIN refunds r ON r.id = e.ref
LEFT JOIN payments rp ON rp.id = r.payment_id
ORDER BY l.seq
"""


async def statement_rows(conn: Conn, account_id: str, limit: int, after_seq: int | None,
                         from_date: date | None, to_date: date | None) -> list[StatementRow]:
    """Applied legs of one account in sequence order, each with the balance it left and what it was for.
    ``from_date`` / ``to_date``: inclusive accounting dates (only their journal partitions are read)."""
    dates, bounds = leg_date_bounds(4, from_date, to_date)
    rows = await conn.fetch(_STATEMENT.format(dates=dates), account_id, after_seq or 0, limit, *bounds)
    return [StatementRow(r["seq"], r["txn_no"].strip(), r["txn_code"], r["side"], r["amount"], r["delta"],
                         r["balance_after"], r["accounting_date"], r["applied_at"], r["ref"], r["payment_id"],
                         r["refund_id"], r["merchant_order_no"], r["merchant_refund_no"], r["gross"], r["fee"])
            for r in rows]
