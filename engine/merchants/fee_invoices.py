"""Fee invoices: bill a merchant's invoiced fees, and book their payment.

Invoiced fees (fee plans with collection 'invoiced') are booked to the merchant's fee-payable account:
its applied balance is what the merchant owes. Issuing bills ``owed - Σ open invoices`` (fees still
buffered are billed next time); paying books FEE_INVOICE_PAID (from the merchant's available balance,
whose overdraft rule refuses an uncovered debit) or FEE_INVOICE_RECEIVED (the merchant's transfer to our
bank) and marks the invoice paid, both in one transaction with a compare-and-set on its status: an
invoice is paid once, and a failed booking leaves it open with nothing booked.

Issuing locks the fee-payable account's row for the transaction, so two concurrent issues cannot bill
the same fees twice (the second sees the first's open invoice).
"""

from __future__ import annotations

import logging
from datetime import datetime

import asyncpg

from accounts.model import AccountId, AccountKind, OverdraftMode, OverdraftRule
from accounts.rules import build_entry
from accounts.store import Conn, find_account
from engine.booking import Booker
from engine.errors import IllegalTransition, NotFound, UnsupportedCurrency
from engine.keys import ACCOUNT, FEE_INVOICE, new_id
from engine.merchants import wire
from engine.merchants.errors import NothingToInvoice
from engine.merchants.pricing import FEE_PAYABLE_ROLE
from engine.merchants.store import PLATFORM_OWNER, ensure_account
from engine.txn_no import TxnNoGenerator

log = logging.getLogger(__name__)

TXN_CODES = {"available": "FEE_INVOICE_PAID", "external": "FEE_INVOICE_RECEIVED"}
_COLUMNS = "id, merchant_id, currency, amount, status, paid_from, paid_txn_no, reference, issued_at, paid_at"


def _view(r: asyncpg.Record) -> wire.FeeInvoice:
    return wire.FeeInvoice(r["id"], "fee_invoice", r["merchant_id"], r["currency"].strip(), r["amount"], r["status"],
                           r["paid_from"], r["paid_txn_no"].strip() if r["paid_txn_no"] else None, r["reference"],
                           r["issued_at"], r["paid_at"])


async def _require_merchant(conn: Conn, merchant_id: str) -> None:
    if await conn.fetchval("SELECT 1 FROM merchants WHERE id = $1", merchant_id) is None:
        raise NotFound("merchant", merchant_id, "id")


async def _fees_by_currency(conn: Conn, merchant_id: str) -> tuple[dict[str, int], dict[str, int]]:
    """(owed, unbilled) per currency the merchant has a fee-payable account in."""
    rows = await conn.fetch(
        "SELECT a.currency, a.balance, coalesce((SELECT sum(i.amount) FROM fee_invoices i WHERE i.merchant_id ="
        " a.owner_id AND i.currency = a.currency AND i.status = 'open'), 0)::bigint AS billed FROM accounts a"
        " WHERE a.owner_id = $1 AND a.role = $2 AND a.parent_id IS NULL ORDER BY a.currency",
        merchant_id, FEE_PAYABLE_ROLE)
    owed = {r["currency"].strip(): int(r["balance"]) for r in rows}
    return owed, {r["currency"].strip(): int(r["balance"]) - int(r["billed"]) for r in rows}


async def issue(conn: asyncpg.Connection, merchant_id: str, currency: str, now: datetime) -> wire.FeeInvoice:
    """Bill what is owed and not billed yet. NotFound, UnsupportedCurrency, NothingToInvoice (nothing changed)."""
    async with conn.transaction():
        await _require_merchant(conn, merchant_id)
        locked = await conn.fetchval(
            "SELECT id FROM accounts WHERE owner_id = $1 AND role = $2 AND currency = $3 AND parent_id IS NULL"
            " FOR UPDATE", merchant_id, FEE_PAYABLE_ROLE, currency)
        if locked is None:
            raise UnsupportedCurrency(currency)
        unbilled = (await _fees_by_currency(conn, merchant_id))[1][currency]
        if unbilled <= 0:
            raise NothingToInvoice(merchant_id, currency, unbilled)
        row = await conn.fetchrow(
            f"INSERT INTO fee_invoices (id, merchant_id, currency, amount, status, issued_at)"
            f" VALUES ($1, $2, $3, $4, 'open', $5) RETURNING {_COLUMNS}",
            new_id(FEE_INVOICE), merchant_id, currency, unbilled, now)
    log.info("fee invoice issued", extra={"merchant_id": merchant_id, "invoice_id": row["id"], "amount": unbilled,
                                          "currency": currency})
    return _view(row)


async def pay(booker: Booker, txn_nos: TxnNoGenerator, invoice_id: str, req: wire.PayFeeInvoice,
              now: datetime) -> wire.FeeInvoice:
    """Book the invoice's payment and mark it paid, in one transaction. NotFound; IllegalTransition when it is
    paid already; InsufficientFunds when the available balance does not cover it (nothing booked)."""
    txn_no = txn_nos.next(now)
    async with booker.transaction() as tx:
        conn = tx.conn
        row = await conn.fetchrow(
            "UPDATE fee_invoices SET status = 'paid', paid_from = $2, paid_txn_no = $3, reference = $4, paid_at = $5"
            f" WHERE id = $1 AND status = 'open' RETURNING {_COLUMNS}", invoice_id, req.source, txn_no,
            req.reference, now)
        if row is None:
            status = await conn.fetchval("SELECT status FROM fee_invoices WHERE id = $1", invoice_id)
            if status is None:
                raise NotFound("fee invoice", invoice_id, "id")
            raise IllegalTransition("fee invoice", status, "pay")
        merchant_id, currency = row["merchant_id"], row["currency"].strip()
        payable = await find_account(conn, merchant_id, FEE_PAYABLE_ROLE, currency)
        assert payable is not None, f"invoice {invoice_id} without a fee-payable account"
        if req.source == "available":
            role, source = "merchant_available", await find_account(conn, merchant_id, "merchant_available", currency)
            if source is None:
                raise UnsupportedCurrency(currency)
            source_id = source.id
        else:
            role = "bank_deposits"
            source_id = await ensure_account(conn, PLATFORM_OWNER, role, currency, AccountKind.INTERNAL,
                                             False, OverdraftRule(OverdraftMode.UNLIMITED), new_id(ACCOUNT))
        await tx.post(build_entry(TXN_CODES[req.source], txn_no, now.date(), currency,
                                  {role: AccountId(source_id), FEE_PAYABLE_ROLE: payable.id},
                                  {"amount": row["amount"]}, ref=invoice_id))
    log.info("fee invoice paid", extra={"invoice_id": invoice_id, "merchant_id": merchant_id, "source": req.source,
                                        "txn_no": txn_no})
    return _view(row)


async def show(conn: Conn, invoice_id: str) -> wire.FeeInvoice:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM fee_invoices WHERE id = $1", invoice_id)
    if row is None:
        raise NotFound("fee invoice", invoice_id, "id")
    return _view(row)


async def list_for(conn: Conn, merchant_id: str) -> wire.FeeInvoiceList:
    """The merchant's invoices, newest first, with what it owes and what is not billed yet."""
    await _require_merchant(conn, merchant_id)
    rows = await conn.fetch(f"SELECT {_COLUMNS} FROM fee_invoices WHERE merchant_id = $1"
                            " ORDER BY issued_at DESC, id DESC", merchant_id)
    owed, unbilled = await _fees_by_currency(conn, merchant_id)
    return wire.FeeInvoiceList([_view(r) for r in rows], owed, unbilled)
