"""All SQL of the channel gateway: jobs it takes, channel orders, voucher and payment outcomes, exceptions.

Functions take a connection and run inside the caller's transaction. Every state change is a
compare-and-set (`WHERE status = expected`) written together with its transition record, so two workers,
a notify and the janitor can race on one payment and exactly one of them moves it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from accounts.store import Conn
from engine.controls.store import USAGE_OWED
from engine.keys import EXCEPTION_RECORD, new_id
from engine.payments.states import (
    UNPAID,
    PaymentEvent,
    PaymentStatus,
    VoucherEvent,
    VoucherStatus,
    next_payment_status,
    next_voucher_status,
)

OPEN_ORDER_STATUSES = ("creating", "unknown", "created")


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    id: int
    kind: str
    ref_id: str
    payload: dict[str, Any]
    attempts: int  # including this run


@dataclass(frozen=True, slots=True)
class PaymentFacts:
    id: str
    merchant_id: str
    amount: int
    currency: str
    channel: str | None
    status: PaymentStatus
    fee: int
    txn_no: str
    description: str | None
    expires_at: datetime
    voucher_id: str | None
    voucher_status: str | None
    fee_collection: str = "deducted"  # engine.merchants.pricing.COLLECTIONS


@dataclass(frozen=True, slots=True)
class ChannelOrder:
    channel: str
    out_trade_no: str
    payment_id: str
    status: str
    attempts: int
    channel_order_id: str | None
    channel_txn_id: str | None
    queries: int


@dataclass(frozen=True, slots=True)
class ExceptionRecord:
    id: str
    kind: str
    status: str
    channel: str | None
    payment_id: str | None
    out_trade_no: str | None
    channel_txn_id: str | None
    amount: int | None
    currency: str | None
    detail: str
    occurrences: int
    refund_status: str | None
    out_refund_no: str | None
    refund_txn_no: str | None
    channel_refund_id: str | None
    resolution: str | None
    created_at: datetime
    updated_at: datetime


# ---------------------------------------------------------------- jobs

_CLAIM = """
UPDATE jobs j SET status = 'running', locked_by = $2, locked_until = now() + make_interval(secs => $3),
                  attempts = j.attempts + 1, updated_at = now()
FROM (SELECT id FROM jobs WHERE status = 'queued' AND run_after <= now() AND kind = ANY($1::text[])
      ORDER BY run_after, id LIMIT $4 FOR UPDATE SKIP LOCKED) c
WHERE j.id = c.id
RETURNING j.id, j.kind, j.ref_id, j.payload::text, j.attempts
"""


def _job(r: asyncpg.Record) -> ClaimedJob:
    return ClaimedJob(r["id"], r["kind"], r["ref_id"], msgspec.json.decode(r["payload"]), r["attempts"])


async def claim_jobs(conn: Conn, kinds: Sequence[str], worker: str, lease_s: float, limit: int) -> list[ClaimedJob]:
    """Take up to `limit` due jobs; rows other workers hold are skipped, not waited for."""
    rows = await conn.fetch(_CLAIM, list(kinds), worker, float(lease_s), limit)
    return [_job(r) for r in rows]


async def claim_job_for(conn: Conn, kind: str, ref_id: str, worker: str, lease_s: float) -> ClaimedJob | None:
    """Take one specific queued job (synchronous voucher mode); None if someone else has it."""
    row = await conn.fetchrow(
        "UPDATE jobs j SET status = 'running', locked_by = $3, locked_until = now() + make_interval(secs => $4),"
        " attempts = j.attempts + 1, updated_at = now()"
        " FROM (SELECT id FROM jobs WHERE kind = $1 AND ref_id = $2 AND status = 'queued' FOR UPDATE SKIP LOCKED) c"
        " WHERE j.id = c.id RETURNING j.id, j.kind, j.ref_id, j.payload::text, j.attempts",
        kind, ref_id, worker, float(lease_s))
    return _job(row) if row else None


async def finish_job(conn: Conn, job_id: int, status: str, error: str | None = None) -> None:
    await conn.execute(
        "UPDATE jobs SET status = $2, last_error = $3, locked_by = NULL, locked_until = NULL, updated_at = now()"
        " WHERE id = $1", job_id, status, error)


async def retry_job(conn: Conn, job_id: int, delay_s: float, error: str) -> None:
    await conn.execute(
        "UPDATE jobs SET status = 'queued', run_after = now() + make_interval(secs => $2), last_error = $3,"
        " locked_by = NULL, locked_until = NULL, updated_at = now() WHERE id = $1", job_id, float(delay_s), error)


async def requeue_stale_jobs(conn: Conn, kinds: Sequence[str]) -> int:
    """Jobs whose worker died (lease ran out while running) become takeable again."""
    status = await conn.execute(
        "UPDATE jobs SET status = 'queued', locked_by = NULL, locked_until = NULL, updated_at = now()"
        " WHERE status = 'running' AND locked_until < now() AND kind = ANY($1::text[])", list(kinds))
    return int(status.rsplit(" ", 1)[-1])


async def enqueue_job(conn: Conn, kind: str, ref_id: str) -> None:
    await conn.execute(
        "INSERT INTO jobs (kind, ref_id) VALUES ($1, $2) ON CONFLICT ON CONSTRAINT jobs_kind_ref DO NOTHING",
        kind, ref_id)


# ---------------------------------------------------------------- payments and channel orders

_FACTS = (
    "SELECT p.id, p.merchant_id, p.amount, p.currency, p.channel, p.status, p.fee, p.txn_no, p.description,"
    " p.expires_at, v.id AS v_id, v.status AS v_status, p.fee_collection"
    " FROM payments p LEFT JOIN vouchers v ON v.payment_id = p.id"
)


def _facts(r: asyncpg.Record) -> PaymentFacts:
    return PaymentFacts(r["id"], r["merchant_id"], r["amount"], r["currency"].strip(), r["channel"],
                        PaymentStatus(r["status"]),
                        r["fee"], r["txn_no"].strip(), r["description"], r["expires_at"], r["v_id"], r["v_status"],
                        r["fee_collection"])


async def payment_facts(conn: Conn, payment_id: str, lock: bool = False) -> PaymentFacts | None:
    row = await conn.fetchrow(_FACTS + " WHERE p.id = $1" + (" FOR UPDATE OF p" if lock else ""), payment_id)
    return _facts(row) if row else None


async def voucher_work(conn: Conn, voucher_id: str) -> tuple[PaymentFacts, dict[str, ChannelOrder]] | None:
    """The voucher's payment and every channel order made for it, in one round trip."""
    row = await conn.fetchrow(
        _FACTS.replace(" FROM payments p", ", co.orders FROM payments p", 1)
        + " LEFT JOIN LATERAL (SELECT json_agg(o) AS orders FROM (SELECT"
        f" {_ORDER_COLUMNS} FROM channel_orders WHERE payment_id = p.id) o) co ON true WHERE v.id = $1", voucher_id)
    if row is None:
        return None
    orders = [ChannelOrder(**o) for o in msgspec.json.decode(row["orders"] or "[]")]
    return _facts(row), {o.channel: o for o in orders}


async def payment_of_voucher(conn: Conn, voucher_id: str) -> PaymentFacts | None:
    row = await conn.fetchrow(_FACTS + " WHERE v.id = $1", voucher_id)
    return _facts(row) if row else None


_ORDER_COLUMNS = "channel, out_trade_no, payment_id, status, attempts, channel_order_id, channel_txn_id, queries"


def _order(r: asyncpg.Record) -> ChannelOrder:
    return ChannelOrder(r["channel"], r["out_trade_no"], r["payment_id"], r["status"], r["attempts"],
                        r["channel_order_id"], r["channel_txn_id"], r["queries"])


async def orders_of(conn: Conn, payment_id: str) -> dict[str, ChannelOrder]:
    rows = await conn.fetch(f"SELECT {_ORDER_COLUMNS} FROM channel_orders WHERE payment_id = $1", payment_id)
    return {r["channel"]: _order(r) for r in rows}


async def find_order(conn: Conn, channel: str, out_trade_no: str) -> ChannelOrder | None:
    row = await conn.fetchrow(f"SELECT {_ORDER_COLUMNS} FROM channel_orders WHERE channel = $1 AND out_trade_no = $2",
                              channel, out_trade_no)
    return _order(row) if row else None


async def lock_order(conn: Conn, channel: str, out_trade_no: str) -> ChannelOrder | None:
    row = await conn.fetchrow(
        f"SELECT {_ORDER_COLUMNS} FROM channel_orders WHERE channel = $1 AND out_trade_no = $2 FOR UPDATE",
        channel, out_trade_no)
    return _order(row) if row else None


async def begin_attempt(conn: Conn, channel: str, out_trade_no: str, payment_id: str, now: datetime) -> ChannelOrder:
    """Record that we are about to ask `channel` for this order (before the call, so a crash leaves a trace)."""
    row = await conn.fetchrow(
        "INSERT INTO channel_orders (channel, out_trade_no, payment_id, status, attempts, created_at, updated_at)"
        " VALUES ($1, $2, $3, 'creating', 1, $4, $4)"
        " ON CONFLICT (channel, out_trade_no) DO UPDATE SET attempts = channel_orders.attempts + 1, updated_at = $4"
        f" RETURNING {_ORDER_COLUMNS}", channel, out_trade_no, payment_id, now)
    assert row is not None
    return _order(row)


async def set_order_status(conn: Conn, channel: str, out_trade_no: str, status: str, now: datetime,
                           error: str | None = None, next_query_at: datetime | None = None) -> None:
    await conn.execute(
        "UPDATE channel_orders SET status = $3, last_error = coalesce($4, last_error), next_query_at = $5,"
        " updated_at = $6 WHERE channel = $1 AND out_trade_no = $2 AND status NOT IN ('paid')",
        channel, out_trade_no, status, error, next_query_at, now)


# Status names come from the state tables (engine/payments/states.py), as parameters: $12/$13 the payment's
# from/to, $14/$15 the voucher's, $16/$17 the events.
_VOUCHER_READY = """
WITH p AS (
    UPDATE payments SET status = $13::text, channel = $3, updated_at = $10
    WHERE id = $1 AND status = $12::text RETURNING id
), v AS (
    UPDATE vouchers SET status = $15::text, channel = $3, channel_order_no = $5, pay_url = $6, qr_code = $7,
                        expires_at = $8, updated_at = $10
    WHERE id = $2 AND status = $14::text AND EXISTS (SELECT 1 FROM p) RETURNING id
), o AS (
    UPDATE channel_orders SET status = 'created', channel_order_id = $5, next_query_at = $9, last_error = NULL,
                              updated_at = $10
    WHERE channel = $3 AND out_trade_no = $4 AND EXISTS (SELECT 1 FROM p)
), t AS (
    INSERT INTO transitions (object_id, from_status, to_status, event, reason, at)
    SELECT id, $12::text, $13::text, $16::text, $3, $10 FROM p
    UNION ALL SELECT id, $14::text, $15::text, $17::text, $3, $10 FROM v
), j AS (
    UPDATE jobs SET status = 'done', last_error = NULL, locked_by = NULL, locked_until = NULL, updated_at = now()
    WHERE id = $11 AND EXISTS (SELECT 1 FROM p)
)
SELECT count(*) FROM p
"""


async def mark_voucher_ready(conn: Conn, payment: PaymentFacts, channel: str, channel_order_id: str, pay_url: str,
                             expires_at: datetime, next_query_at: datetime, now: datetime, job_id: int) -> bool:
    """pending_voucher -> awaiting_payment with the channel's voucher, and its job done; False (nothing
    written) if the payment moved meanwhile."""
    paid_from, voucher_from = PaymentStatus.PENDING_VOUCHER, VoucherStatus.PENDING
    moved = await conn.fetchval(
        _VOUCHER_READY, payment.id, payment.voucher_id, channel, payment.txn_no, channel_order_id, pay_url, pay_url,
        expires_at, next_query_at, now, job_id,
        paid_from, next_payment_status(paid_from, PaymentEvent.VOUCHER_READY),
        voucher_from, next_voucher_status(voucher_from, VoucherEvent.CHANNEL_VOUCHER_CREATED),
        PaymentEvent.VOUCHER_READY, VoucherEvent.CHANNEL_VOUCHER_CREATED)
    return bool(moved)


# $5/$6 the payment's from/to, $7/$8 the voucher's, $9/$10 the events.
_VOUCHER_FAILED = """
WITH p AS (
    UPDATE payments SET status = $6::text, updated_at = $4 WHERE id = $1 AND status = $5::text
    RETURNING id, controls->>'admission' AS admission
), v AS (
    UPDATE vouchers SET status = $8::text, failure_code = $3, updated_at = $4
    WHERE id = $2 AND status = $7::text AND EXISTS (SELECT 1 FROM p) RETURNING id
), t AS (
    INSERT INTO transitions (object_id, from_status, to_status, event, reason, at)
    SELECT id, $5::text, $6::text, $9::text, $3, $4 FROM p
    UNION ALL SELECT id, $7::text, $8::text, $10::text, $3, $4 FROM v
), """ + USAGE_OWED + """
SELECT count(*) FROM p
"""


async def mark_voucher_failed(conn: Conn, payment: PaymentFacts, failure_code: str, now: datetime) -> bool:
    """pending_voucher -> failed, voucher failed, and the limit usage it owes back recorded (USAGE_OWED)."""
    paid_from, voucher_from = PaymentStatus.PENDING_VOUCHER, VoucherStatus.PENDING
    return bool(await conn.fetchval(
        _VOUCHER_FAILED, payment.id, payment.voucher_id, failure_code, now,
        paid_from, next_payment_status(paid_from, PaymentEvent.VOUCHER_FAILED),
        voucher_from, next_voucher_status(voucher_from, VoucherEvent.CHANNEL_REJECTED),
        PaymentEvent.VOUCHER_FAILED, VoucherEvent.CHANNEL_REJECTED))


async def mark_payment_paid(conn: Conn, payment_id: str, from_status: PaymentStatus, channel: str, now: datetime,
                            reason: str) -> bool:
    """unpaid -> succeeded through the state table (compare-and-set) with its transition record."""
    to_status = next_payment_status(from_status, PaymentEvent.PAID)
    moved = await conn.fetchval(
        "WITH p AS (UPDATE payments SET status = $6::text, channel = $3, updated_at = $4"
        "           WHERE id = $1 AND status = $2::text RETURNING id),"
        " t AS (INSERT INTO transitions (object_id, from_status, to_status, event, reason, at)"
        "       SELECT id, $2::text, $6::text, $7::text, $5, $4 FROM p)"
        " SELECT count(*) FROM p", payment_id, from_status, channel, now, reason, to_status, PaymentEvent.PAID)
    return bool(moved)


async def mark_order_paid(conn: Conn, channel: str, out_trade_no: str, channel_txn_id: str, paid_amount: int,
                          paid_at: datetime | None, now: datetime) -> None:
    await conn.execute(
        "UPDATE channel_orders SET status = 'paid', channel_txn_id = $3, paid_amount = $4, paid_at = $5,"
        " next_query_at = NULL, updated_at = $6 WHERE channel = $1 AND out_trade_no = $2",
        channel, out_trade_no, channel_txn_id, paid_amount, paid_at, now)


async def expired_unpaid(conn: Conn, now: datetime, limit: int) -> list[tuple[str, str]]:
    """(merchant id, payment id) of channel payments past their deadline, oldest first."""
    rows = await conn.fetch(
        "SELECT merchant_id, id FROM payments WHERE status = ANY($3::text[])"
        " AND expires_at <= $1 AND method = 'channel' ORDER BY expires_at LIMIT $2", now, limit, sorted(UNPAID))
    return [(r["merchant_id"], r["id"]) for r in rows]


async def claim_due_queries(conn: Conn, now: datetime, lease_s: float, limit: int) -> list[ChannelOrder]:
    """Orders whose next active query is due; pushed `lease_s` ahead so another janitor skips them."""
    rows = await conn.fetch(
        "UPDATE channel_orders o SET next_query_at = $1 + make_interval(secs => $2), queries = o.queries + 1"
        " FROM (SELECT channel, out_trade_no FROM channel_orders WHERE next_query_at <= $1"
        "       ORDER BY next_query_at LIMIT $3 FOR UPDATE SKIP LOCKED) due"
        " WHERE o.channel = due.channel AND o.out_trade_no = due.out_trade_no"
        f" RETURNING {', '.join('o.' + c.strip() for c in _ORDER_COLUMNS.split(','))}",
        now, float(lease_s), limit)
    return [_order(r) for r in rows]


async def schedule_query(conn: Conn, channel: str, out_trade_no: str, next_query_at: datetime | None) -> None:
    await conn.execute("UPDATE channel_orders SET next_query_at = $3 WHERE channel = $1 AND out_trade_no = $2",
                       channel, out_trade_no, next_query_at)


# ---------------------------------------------------------------- outbox

# ---------------------------------------------------------------- exceptions

@dataclass(frozen=True, slots=True)
class NewException:
    kind: str
    dedupe_key: str
    detail: str
    channel: str | None = None
    payment_id: str | None = None
    out_trade_no: str | None = None
    channel_txn_id: str | None = None
    amount: int | None = None
    currency: str | None = None
    out_refund_no: str | None = None
    refund_txn_no: str | None = None


async def record_exception(conn: Conn, exc: NewException, now: datetime) -> tuple[str, bool]:
    """Open an exception record, or count one more occurrence of the same one. Returns (id, created)."""
    row = await conn.fetchrow(
        "INSERT INTO exceptions (id, kind, dedupe_key, detail, channel, payment_id, out_trade_no, channel_txn_id,"
        " amount, currency, refund_status, out_refund_no, refund_txn_no, created_at, updated_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, CASE WHEN $11::text IS NULL THEN NULL ELSE 'requested' END,"
        " $11, $12, $13, $13)"
        " ON CONFLICT (dedupe_key) DO UPDATE SET occurrences = exceptions.occurrences + 1, updated_at = $13"
        " RETURNING id, (xmax = 0) AS created",
        new_id(EXCEPTION_RECORD), exc.kind, exc.dedupe_key, exc.detail, exc.channel, exc.payment_id, exc.out_trade_no,
        exc.channel_txn_id, exc.amount, exc.currency, exc.out_refund_no, exc.refund_txn_no, now)
    assert row is not None
    return row["id"], bool(row["created"])


_EXC_COLUMNS = (
    "id, kind, status, channel, payment_id, out_trade_no, channel_txn_id, amount, currency, detail, occurrences,"
    " refund_status, out_refund_no, refund_txn_no, channel_refund_id, resolution, created_at, updated_at"
)


def _exception(r: asyncpg.Record) -> ExceptionRecord:
    refund_txn_no = r["refund_txn_no"].strip() if r["refund_txn_no"] else None
    return ExceptionRecord(
        r["id"], r["kind"], r["status"], r["channel"], r["payment_id"], r["out_trade_no"], r["channel_txn_id"],
        r["amount"], r["currency"], r["detail"], r["occurrences"], r["refund_status"], r["out_refund_no"],
        refund_txn_no, r["channel_refund_id"], r["resolution"], r["created_at"], r["updated_at"])


async def get_exception(conn: Conn, exception_id: str) -> ExceptionRecord | None:
    row = await conn.fetchrow(f"SELECT {_EXC_COLUMNS} FROM exceptions WHERE id = $1", exception_id)
    return _exception(row) if row else None


async def list_exceptions(conn: Conn, status: str | None, kind: str | None, payment_id: str | None,
                          limit: int) -> list[ExceptionRecord]:
    rows = await conn.fetch(
        f"SELECT {_EXC_COLUMNS} FROM exceptions WHERE ($1::text IS NULL OR status = $1)"
        " AND ($2::text IS NULL OR kind = $2) AND ($3::text IS NULL OR payment_id = $3)"
        " ORDER BY created_at DESC, id DESC LIMIT $4", status, kind, payment_id, limit)
    return [_exception(r) for r in rows]


async def resolve_exception(conn: Conn, exception_id: str, resolution: str, now: datetime) -> bool:
    status = await conn.execute(
        "UPDATE exceptions SET status = 'resolved', resolution = $2, resolved_at = $3, updated_at = $3"
        " WHERE id = $1 AND status = 'open'", exception_id, resolution, now)
    return status.endswith(" 1")


async def set_refund_outcome(conn: Conn, exception_id: str, refund_status: str, channel_refund_id: str | None,
                             detail: str | None, now: datetime) -> bool:
    """requested -> succeeded | failed (compare-and-set, so a refund is booked once)."""
    status = await conn.execute(
        "UPDATE exceptions SET refund_status = $2, channel_refund_id = $3,"
        " detail = CASE WHEN $4::text IS NULL THEN detail ELSE detail || '; ' || $4 END, updated_at = $5"
        " WHERE id = $1 AND refund_status = 'requested'", exception_id, refund_status, channel_refund_id, detail, now)
    return status.endswith(" 1")


# ---------------------------------------------------------------- merchant refunds through the channel

@dataclass(frozen=True, slots=True)
class RefundWork:
    id: str
    merchant_id: str
    payment_id: str
    amount: int
    fee_refunded: int  # this refund's share of the payment's fee
    status: str
    txn_no: str  # also our out_refund_no at the channel
    reason: str | None
    currency: str
    payment_amount: int
    channel: str | None  # where the payment was paid, from its channel order
    out_trade_no: str | None
    fee_collection: str = "deducted"  # how the payment's fee was collected (engine.merchants.pricing)


async def refund_work(conn: Conn, refund_id: str) -> RefundWork | None:
    row = await conn.fetchrow(
        "SELECT r.id, r.merchant_id, r.payment_id, r.amount, r.fee_refunded, r.status, r.txn_no, r.reason,"
        " p.currency, p.amount AS payment_amount, o.channel, o.out_trade_no, p.fee_collection"
        " FROM refunds r JOIN payments p ON p.id = r.payment_id"
        " LEFT JOIN channel_orders o ON o.payment_id = p.id AND o.status = 'paid' AND o.out_trade_no = p.txn_no"
        " WHERE r.id = $1 ORDER BY o.paid_at LIMIT 1", refund_id)
    if row is None:
        return None
    return RefundWork(row["id"], row["merchant_id"], row["payment_id"], row["amount"], row["fee_refunded"],
                      row["status"], row["txn_no"].strip(), row["reason"], row["currency"].strip(),
                      row["payment_amount"], row["channel"], row["out_trade_no"], row["fee_collection"])


_FINISH_REFUND = """
WITH r AS (
    UPDATE refunds SET status = $2, channel_refund_no = $3, failure_code = $4, updated_at = $5
    WHERE id = $1 AND status = 'pending' RETURNING id, payment_id, amount, fee_refunded
), p AS (
    -- A refund the channel refused gives its reservation back, so it can be asked again.
    UPDATE payments SET amount_refunded = payments.amount_refunded - r.amount,
                        fee_refunded = payments.fee_refunded - r.fee_refunded, updated_at = $5
    FROM r WHERE payments.id = r.payment_id AND $2 = 'failed'
), t AS (
    INSERT INTO transitions (object_id, from_status, to_status, event, reason, at)
    SELECT id, 'pending', $2, $6, $4, $5 FROM r
)
SELECT count(*) FROM r
"""


async def finish_refund(conn: Conn, refund_id: str, status: str, channel_refund_id: str | None,
                        failure_code: str | None, event: str, now: datetime) -> bool:
    """pending -> succeeded | failed (compare-and-set); a failed refund releases its reservation."""
    return bool(await conn.fetchval(_FINISH_REFUND, refund_id, status, channel_refund_id, failure_code, now, event))
