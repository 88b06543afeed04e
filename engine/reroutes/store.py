"""All SQL of failed-refund re-routes. Functions take a connection and run inside the caller's transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import cast

import asyncpg

from accounts.model import AccountId
from accounts.store import Conn
from engine.errors import NotFound
from engine.payments.states import AutoRefundStatus, RefundStatus, RerouteTarget


@dataclass(frozen=True, slots=True)
class RefundFacts:
    """A refund with what its re-route needs: the payment's currency, fee plan and customer's wallet."""

    id: str
    merchant_id: str
    payment_id: str
    merchant_refund_no: str
    merchant_order_no: str
    amount: int
    fee_refunded: int  # this refund's share of the payment's fee
    status: RefundStatus
    reason: str | None
    txn_no: str  # the refund's number: the channel never booked it, its re-route entry does
    failure_code: str | None
    currency: str
    fee_collection: str
    customer_id: str | None
    wallet_account_id: AccountId | None  # the customer's wallet in the payment's currency, when there is one
    rerouted_to: RerouteTarget | None
    payout_id: str | None
    resolved_by: str | None
    resolution_note: str | None
    resolved_at: datetime | None
    created_at: datetime
    updated_at: datetime  # for a failed refund: when it failed


_FACTS = """
SELECT r.id, r.merchant_id, r.payment_id, r.merchant_refund_no, p.merchant_order_no, r.amount, r.fee_refunded,
       r.status, r.reason, r.txn_no, r.failure_code, p.currency, p.fee_collection, p.customer_id, c.wallet_account_id,
       r.rerouted_to, r.payout_id, r.resolved_by, r.resolution_note, r.resolved_at, r.created_at, r.updated_at
FROM refunds r JOIN payments p ON p.id = r.payment_id
LEFT JOIN customers c ON c.id = p.customer_id AND c.merchant_id = p.merchant_id AND c.currency = p.currency
"""


def _facts(r: asyncpg.Record) -> RefundFacts:
    wallet = r["wallet_account_id"]
    return RefundFacts(
        r["id"], r["merchant_id"], r["payment_id"], r["merchant_refund_no"], r["merchant_order_no"], r["amount"],
        r["fee_refunded"], RefundStatus(r["status"]), r["reason"], r["txn_no"].strip(), r["failure_code"],
        r["currency"].strip(), r["fee_collection"], r["customer_id"], AccountId(wallet) if wallet else None,
        cast(RerouteTarget | None, r["rerouted_to"]),
        r["payout_id"], r["resolved_by"], r["resolution_note"], r["resolved_at"], r["created_at"], r["updated_at"])


async def refund_facts(conn: Conn, refund_id: str) -> RefundFacts | None:
    """Any merchant's refund (operators see them all)."""
    row = await conn.fetchrow(_FACTS + " WHERE r.id = $1", refund_id)
    return _facts(row) if row else None


async def failed_refunds(conn: Conn, merchant_id: str | None, starting_after: str | None,
                         limit: int) -> list[RefundFacts]:
    """Refunds waiting for an operator, the longest waiting first ((updated_at, id): the partial index
    refunds_failed), optionally of one merchant, after ``starting_after`` (the last of the previous page)."""
    cursor = None
    if starting_after is not None:
        cursor = await conn.fetchrow("SELECT updated_at, id FROM refunds WHERE id = $1 AND status = 'failed'",
                                     starting_after)
        if cursor is None:
            raise NotFound("failed refund", starting_after, "starting_after")
    rows = await conn.fetch(
        _FACTS + " WHERE r.status = 'failed' AND ($1::text IS NULL OR r.merchant_id = $1)"
        " AND ($2::timestamptz IS NULL OR (r.updated_at, r.id) > ($2, $3::text))"
        " ORDER BY r.updated_at, r.id LIMIT $4",
        merchant_id, cursor["updated_at"] if cursor else None, cursor["id"] if cursor else None, limit)
    return [_facts(r) for r in rows]


async def awaiting_operator(conn: Conn) -> tuple[int, datetime | None]:
    """(how many refunds, merchants' and auto-refunds, are failed and wait for an operator, when the oldest of them
    failed). Both read from partial indexes of the failed ones."""
    row = await conn.fetchrow(
        "SELECT sum(n) AS n, min(oldest) AS oldest FROM ("
        " SELECT count(*) AS n, min(updated_at) AS oldest FROM refunds WHERE status = 'failed'"
        " UNION ALL SELECT count(*), min(updated_at) FROM exceptions WHERE refund_status = 'failed') f")
    assert row is not None
    return int(row["n"]), row["oldest"]


@dataclass(frozen=True, slots=True)
class AutoRefundFacts:
    """An exception's auto-refund: money a channel collected for a payment we had closed, to be given back."""

    id: str  # the exception's
    merchant_id: str
    payment_id: str
    merchant_order_no: str
    amount: int
    currency: str
    refund_status: AutoRefundStatus
    refund_txn_no: str  # never booked while the refund failed: its re-route entry is
    customer_id: str | None
    wallet_account_id: AccountId | None
    rerouted_to: RerouteTarget | None
    payout_id: str | None
    resolved_by: str | None
    resolution: str | None
    detail: str
    updated_at: datetime


_AUTO_FACTS = """
SELECT e.id, p.merchant_id, e.payment_id, p.merchant_order_no, e.amount, e.currency, e.refund_status,
       e.refund_txn_no, p.customer_id, c.wallet_account_id, e.refund_rerouted_to, e.refund_payout_id,
       e.refund_resolved_by, e.resolution, e.detail, e.updated_at
FROM exceptions e JOIN payments p ON p.id = e.payment_id
LEFT JOIN customers c ON c.id = p.customer_id AND c.merchant_id = p.merchant_id AND c.currency = p.currency
WHERE e.refund_status IS NOT NULL
"""


def _auto_facts(r: asyncpg.Record) -> AutoRefundFacts:
    wallet = r["wallet_account_id"]
    return AutoRefundFacts(
        r["id"], r["merchant_id"], r["payment_id"], r["merchant_order_no"], r["amount"], r["currency"].strip(),
        AutoRefundStatus(r["refund_status"]), r["refund_txn_no"].strip(), r["customer_id"],
        AccountId(wallet) if wallet else None, cast(RerouteTarget | None, r["refund_rerouted_to"]),
        r["refund_payout_id"], r["refund_resolved_by"], r["resolution"], r["detail"], r["updated_at"])


async def auto_refund_facts(conn: Conn, exception_id: str) -> AutoRefundFacts | None:
    """The exception's auto-refund; None when there is no such exception or it carries no refund."""
    row = await conn.fetchrow(_AUTO_FACTS + " AND e.id = $1", exception_id)
    return _auto_facts(row) if row else None


async def failed_auto_refunds(conn: Conn, limit: int) -> list[AutoRefundFacts]:
    """Auto-refunds waiting for an operator, the longest waiting first."""
    rows = await conn.fetch(_AUTO_FACTS + " AND e.refund_status = 'failed' ORDER BY e.updated_at, e.id LIMIT $1",
                            limit)
    return [_auto_facts(r) for r in rows]


async def resolve_auto_refund(conn: Conn, exception_id: str, res: Resolution, now: datetime) -> bool:
    """Compare-and-set a failed auto-refund to its resolution and resolve its exception; False (nothing written)
    when it is failed no more."""
    status = await conn.execute(
        "UPDATE exceptions SET refund_status = $2, refund_rerouted_to = $3, refund_payout_id = $4,"
        " refund_resolved_by = $5, resolution = $6, status = 'resolved', resolved_at = $7, updated_at = $7"
        " WHERE id = $1 AND refund_status = 'failed'",
        exception_id, res.status, res.rerouted_to, res.payout_id, res.operator, res.note, now)
    return bool(status.endswith(" 1"))


_RESOLVE = """
WITH r AS (
    UPDATE refunds SET status = $2, rerouted_to = $3, payout_id = $4, resolved_by = $5, resolution_note = $6,
                       resolved_at = $7, updated_at = $7
    WHERE id = $1 AND status = 'failed'
    RETURNING id, payment_id, amount, fee_refunded
), p AS (
    -- The money reaches the customer after all: the refund counts on its payment again (its failure gave the
    -- reservation back), checked in the UPDATE that raises it, so concurrent refunds can never exceed the payment.
    UPDATE payments SET amount_refunded = payments.amount_refunded + r.amount,
                        fee_refunded = payments.fee_refunded + r.fee_refunded, updated_at = $7
    FROM r WHERE payments.id = r.payment_id AND $8::boolean AND payments.amount_refunded + r.amount <= payments.amount
    RETURNING payments.id
), t AS (
    INSERT INTO transitions (object_id, from_status, to_status, event, reason, at, actor)
    SELECT id, 'failed', $2, $9, $6, $7, $5 FROM r
)
SELECT (SELECT count(*) FROM r) AS moved, (SELECT count(*) FROM p) AS counted
"""


@dataclass(frozen=True, slots=True)
class Resolution:
    status: str  # rerouted | manual
    rerouted_to: str  # wallet | bank | manual
    event: str
    payout_id: str | None
    operator: str
    note: str
    counts_as_refunded: bool


async def resolve_refund(conn: Conn, refund_id: str, res: Resolution, now: datetime) -> tuple[bool, bool]:
    """Compare-and-set a failed refund to its resolution, with its transition (who and why) and, when it counts as
    refunded, the payment's refunded total raised again. Returns (moved: it was still failed, counted: the payment
    took it back within its amount); nothing is written when not moved."""
    row = await conn.fetchrow(_RESOLVE, refund_id, res.status, res.rerouted_to, res.payout_id, res.operator,
                              res.note, now, res.counts_as_refunded, res.event)
    assert row is not None
    return bool(row["moved"]), bool(row["counted"])
