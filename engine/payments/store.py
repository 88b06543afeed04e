"""All SQL for payments, vouchers, refunds, their transitions, gateway jobs and the webhook outbox.

Functions take a connection and run inside the caller's transaction. The rows of one business event
(payment or refund, its transition record, its outbox event, its voucher and job, and the response
stored for its idempotency key) go out as ONE statement; a wallet payment's posting goes in the same
statement (book_wallet_payment: no BEGIN or COMMIT round trip). Rule checks that must hold under
concurrency live in the WHERE clause of the write (compare-and-set), never in a read before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import asyncpg
import msgspec

from accounts.journal import EntryDraft
from accounts.model import AccountId
from accounts.store import Conn, PostedEntry, leg_arrays, posted_entry, raise_ledger_error
from engine.controls.errors import AdmissionReleased
from engine.controls.store import USAGE_OWED, AdmissionClaim, claim_usage_cte
from engine.errors import DuplicateOrder, IdempotencyKeyTaken, NotFound
from engine.idempotency.records import StoredResponse
from engine.payments.errors import PaymentCurrencyMismatch, PaymentNotRefundable, RefundExceedsPayment
from engine.payments.states import (
    ENDED_WITHOUT_MONEY,
    PaymentMethod,
    PaymentStatus,
    RefundStatus,
    RerouteTarget,
    VoucherStatus,
)


@dataclass(frozen=True, slots=True)
class VoucherRecord:
    id: str
    status: VoucherStatus
    channel: str
    pay_url: str | None
    qr_code: str | None
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class PaymentRecord:
    id: str
    merchant_id: str
    merchant_order_no: str
    amount: int
    currency: str
    method: PaymentMethod
    channel: str | None
    customer_id: str | None
    payer_account_id: str | None
    status: PaymentStatus
    fee: int
    amount_refunded: int
    txn_no: str
    description: str | None
    metadata: dict[str, str]
    expires_at: datetime
    created_at: datetime
    updated_at: datetime
    voucher: VoucherRecord | None


@dataclass(frozen=True, slots=True)
class RefundRecord:
    id: str
    payment_id: str
    merchant_refund_no: str
    amount: int
    status: RefundStatus
    reason: str | None
    txn_no: str
    created_at: datetime
    rerouted_to: RerouteTarget | None = None  # wallet | bank | manual, once an operator resolved a failed refund
    payout_id: str | None = None  # the bank payout of a refund re-routed to the bank


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    id: str
    type: str
    payload: bytes  # the object's JSON, exactly as the API shows it


@dataclass(frozen=True, slots=True)
class Transition:
    from_status: str | None
    to_status: str
    event: str
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Job:
    kind: str  # create_voucher | close_order | channel_refund
    ref_id: str
    payload: bytes = b"{}"


def _json(data: bytes | None) -> str | None:
    return None if data is None else data.decode()


def _resp(r: StoredResponse | None) -> tuple[str | None, int | None, bytes | None]:
    return (r.key, r.status_code, r.body) if r else (None, None, None)


# ---------------------------------------------------------------- payments

_INSERT_PAYMENT = """
WITH k AS (
    -- The folded idempotency claim (when $29 is set): the key goes in with its response, in the effect's
    -- transaction. The try-lock keeps "another request with this key is running" a refusal (409), not a
    -- wait: the holder's row is not committed yet, so the unique index alone would block until it is.
    INSERT INTO idempotency_keys (merchant_id, key, fingerprint, status_code, response_body, locked_until)
    SELECT $2::text, $26::text, $29::bytea, $27::int, $28::bytea, $14::timestamptz
    WHERE $29::bytea IS NOT NULL AND pg_try_advisory_xact_lock(hashtextextended($2::text || ':' || $26::text, 0))
    ON CONFLICT (merchant_id, key) DO NOTHING
    RETURNING 1
), """ + claim_usage_cte(32) + """, p AS (
    INSERT INTO payments (id, merchant_id, merchant_order_no, amount, currency, method, channel, customer_id,
                          payer_account_id, status, fee, txn_no, description, metadata, expires_at,
                          created_at, updated_at, fee_collection, controls)
    SELECT $1::text, $2::text, $3::text, $4::bigint, $5::text, $6::text, $7::text, c.id,
           CASE WHEN $6::text = 'wallet' THEN c.wallet_account_id END, $8::text, $9::bigint, $10::text,
           $11::text, $12::jsonb, $13::timestamptz, $14::timestamptz, $14::timestamptz, $30::text, $31::jsonb
    FROM (SELECT 1) one LEFT JOIN customers c ON c.id = $15::text AND c.merchant_id = $2::text
                                              AND c.currency = $5::text
    WHERE ($15::text IS NULL OR c.id IS NOT NULL) AND ($29::bytea IS NULL OR EXISTS (SELECT 1 FROM k))
      AND ($32::text IS NULL OR EXISTS (SELECT 1 FROM u))
    ON CONFLICT ON CONSTRAINT payments_merchant_order_no DO NOTHING
    RETURNING id, payer_account_id
), t AS (
    INSERT INTO transitions (object_id, from_status, to_status, event, reason, at)
    SELECT id, $16::text, $8::text, $17::text, $18::text, $14::timestamptz FROM p
), v AS (
    INSERT INTO vouchers (id, payment_id, channel, status, expires_at, created_at, updated_at)
    SELECT $19::text, id, $7::text, 'pending', $13::timestamptz, $14::timestamptz, $14::timestamptz FROM p
    WHERE $19::text IS NOT NULL
), j AS (
    INSERT INTO jobs (kind, ref_id, payload) SELECT $20::text, $21::text, $22::jsonb FROM p WHERE $20::text IS NOT NULL
), o AS (
    INSERT INTO outbox_events (id, merchant_id, type, object_id, payload, created_at)
    SELECT $23::text, $2::text, $24::text, id, $25::jsonb, $14::timestamptz FROM p WHERE $23::text IS NOT NULL
), i AS (
    UPDATE idempotency_keys SET status_code = $27::int, response_body = $28::bytea
    WHERE merchant_id = $2::text AND key = $26::text AND EXISTS (SELECT 1 FROM p) AND $29::bytea IS NULL
)
SELECT p.id, p.payer_account_id, (SELECT count(*) FROM k) AS claimed, (SELECT count(*) FROM u) AS admitted
FROM (SELECT 1) one LEFT JOIN p ON true
"""


@dataclass(frozen=True, slots=True)
class NewPayment:
    id: str
    merchant_id: str
    merchant_order_no: str
    amount: int
    currency: str
    method: str
    channel: str | None
    customer_id: str | None
    status: str
    fee: int
    txn_no: str
    description: str | None
    metadata: dict[str, str]
    expires_at: datetime
    created_at: datetime
    voucher_id: str | None
    fee_collection: str = "deducted"  # engine.merchants.pricing.COLLECTIONS


async def insert_payment(conn: Conn, p: NewPayment, transition: Transition, job: Job | None,
                         event: OutboxEvent | None, response: StoredResponse | None,
                         claim_fingerprint: bytes | None = None, *,
                         admission: AdmissionClaim | None = None) -> str | None:
    """Insert a payment with its transition, voucher, job, outbox event and stored response.

    With ``claim_fingerprint`` the response's idempotency key is claimed here too (inserted with the
    response, so the claim costs no round trip of its own); IdempotencyKeyTaken when the key is held.
    With ``admission`` the gate's record goes in with the payment and the admission's usage row is
    claimed in the same statement (AdmissionReleased when the orphan sweep gave it back: do not book).
    Returns the payer's wallet account id (None for channel payments). Raises DuplicateOrder naming
    the existing payment, NotFound for an unknown customer, PaymentCurrencyMismatch for a customer
    whose wallet is in another currency; then nothing was written (the caller rolls back)."""
    assert claim_fingerprint is None or response is not None
    key, status_code, body = _resp(response)
    row = await conn.fetchrow(
        _INSERT_PAYMENT,
        p.id, p.merchant_id, p.merchant_order_no, p.amount, p.currency, p.method, p.channel, p.status, p.fee,
        p.txn_no, p.description, msgspec.json.encode(p.metadata).decode(), p.expires_at, p.created_at,
        p.customer_id, transition.from_status, transition.event, transition.reason, p.voucher_id,
        job.kind if job else None, job.ref_id if job else None, _json(job.payload if job else None),
        event.id if event else None, event.type if event else None, _json(event.payload if event else None),
        key, status_code, body, claim_fingerprint, p.fee_collection,
        admission.record_json if admission else None, admission.admission_id if admission else None,
    )
    assert row is not None
    if claim_fingerprint is not None and not row["claimed"]:
        raise IdempotencyKeyTaken(key or "")
    if row["id"] is not None:
        payer: str | None = row["payer_account_id"]
        return payer
    existing = await conn.fetchval(
        "SELECT id FROM payments WHERE merchant_id = $1 AND merchant_order_no = $2", p.merchant_id,
        p.merchant_order_no)
    if existing is not None:
        raise DuplicateOrder("merchant_order_no", p.merchant_order_no, existing)
    if p.customer_id is not None:
        currency = await conn.fetchval(
            "SELECT currency FROM customers WHERE id = $1 AND merchant_id = $2", p.customer_id, p.merchant_id)
        if currency is None:
            raise NotFound("customer", p.customer_id, "customer_id")
        if currency.strip() != p.currency:
            raise PaymentCurrencyMismatch(currency.strip(), p.currency, "currency")
    assert admission is not None and not row["admitted"], "a payment not inserted for no reason"
    raise AdmissionReleased(admission.admission_id)  # the orphan sweep gave this usage back: do not book


# A wallet payment's rows and its posting as ONE statement (migration 088): its own implicit transaction.
_BOOK_WALLET = (
    "SELECT * FROM payment_book_wallet($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12, $13, $14, $15, $16,"
    " $17, $18, $19::jsonb, $20, $21, $22, $23, $24::jsonb, $25, $26, $27, $28::text[], $29::text[], $30::bigint[],"
    " $31::text[])"
)
# The payer's wallet, named by the statement itself (found with the customer check): the entry's legs name
# it with this placeholder until then (the single and the batched booking alike).
PAYER = AccountId("@payer")


async def book_wallet_payment(conn: Conn, p: NewPayment, transition: Transition, event: OutboxEvent | None,
                              response: StoredResponse | None, claim_fingerprint: bytes | None,
                              admission: AdmissionClaim | None, entry: EntryDraft) -> PostedEntry:
    """Insert a wallet payment with its transition, outbox event, stored response (and folded key claim)
    and gate record, and post ``entry`` (its payer's leg on PAYER), in one statement: run it on its
    own, it is its own transaction. Raises what insert_payment and post_entry raise; then nothing was
    written, the key included."""
    assert claim_fingerprint is None or response is not None
    key, status_code, body = _resp(response)
    try:
        rows = await conn.fetch(
            _BOOK_WALLET,
            p.id, p.merchant_id, p.merchant_order_no, p.amount, p.currency, p.customer_id, p.status, p.fee,
            p.txn_no, p.description, msgspec.json.encode(p.metadata).decode(), p.expires_at, p.created_at,
            p.fee_collection, transition.from_status, transition.event,
            event.id if event else None, event.type if event else None, _json(event.payload if event else None),
            key, status_code, body, claim_fingerprint,
            admission.record_json if admission else None, admission.admission_id if admission else None,
            entry.txn_code, entry.accounting_date, *leg_arrays(entry, PAYER))
    except asyncpg.PostgresError as exc:
        _raise_payment_refusal(exc, p, key)
        raise_ledger_error(exc, entry.txn_no)
        raise
    return posted_entry(entry.txn_no, rows)


def _raise_payment_refusal(exc: asyncpg.PostgresError, p: NewPayment, key: str | None) -> None:
    detail = getattr(exc, "detail", None) or ""
    match getattr(exc, "sqlstate", None):
        case "PE011":
            raise IdempotencyKeyTaken(key or "") from None
        case "PE012":
            raise DuplicateOrder("merchant_order_no", p.merchant_order_no, detail) from None
        case "PE013":
            raise NotFound("customer", p.customer_id or "", "customer_id") from None
        case "PE014":
            raise PaymentCurrencyMismatch(detail.strip(), p.currency, "currency") from None
        case "PE015":
            raise AdmissionReleased(detail) from None  # the orphan sweep gave this usage back: do not book


_PAYMENT_SELECT = (
    "SELECT p.id, p.merchant_id, p.merchant_order_no, p.amount, p.currency, p.method, p.channel, p.customer_id,"
    " p.payer_account_id, p.status, p.fee, p.amount_refunded, p.txn_no, p.description, p.metadata::text,"
    " p.expires_at, p.created_at, p.updated_at,"
    " v.id AS v_id, v.status AS v_status, v.channel AS v_channel, v.pay_url, v.qr_code, v.expires_at AS v_expires_at"
    " FROM payments p LEFT JOIN vouchers v ON v.payment_id = p.id"
)


def _payment(r: asyncpg.Record) -> PaymentRecord:
    voucher = None
    if r["v_id"] is not None:
        voucher = VoucherRecord(r["v_id"], VoucherStatus(r["v_status"]), r["v_channel"], r["pay_url"], r["qr_code"],
                                r["v_expires_at"])
    return PaymentRecord(
        r["id"], r["merchant_id"], r["merchant_order_no"], r["amount"], r["currency"].strip(),
        cast(PaymentMethod, r["method"]), r["channel"], r["customer_id"], r["payer_account_id"],
        PaymentStatus(r["status"]), r["fee"], r["amount_refunded"], r["txn_no"], r["description"],
        msgspec.json.decode(r["metadata"], type=dict[str, str]),
        r["expires_at"], r["created_at"], r["updated_at"], voucher,
    )


async def get_payment(conn: Conn, merchant_id: str, payment_id: str) -> PaymentRecord | None:
    """One payment of this merchant (another merchant's payment is None, as if it did not exist)."""
    row = await conn.fetchrow(_PAYMENT_SELECT + " WHERE p.id = $1 AND p.merchant_id = $2", payment_id, merchant_id)
    return _payment(row) if row else None


async def list_payments(conn: Conn, merchant_id: str, merchant_order_no: str | None, status: str | None,
                        limit: int, starting_after: str | None) -> tuple[list[PaymentRecord], bool]:
    """Newest first; ``starting_after`` is the last id of the previous page. Returns (page, has_more)."""
    cursor: Any = None
    if starting_after is not None:
        cursor = await conn.fetchrow(
            "SELECT created_at, id FROM payments WHERE id = $1 AND merchant_id = $2", starting_after, merchant_id)
        if cursor is None:
            raise NotFound("payment", starting_after, "starting_after")
    rows = await conn.fetch(
        _PAYMENT_SELECT + " WHERE p.merchant_id = $1"
        " AND ($2::text IS NULL OR p.merchant_order_no = $2) AND ($3::text IS NULL OR p.status = $3)"
        " AND ($4::timestamptz IS NULL OR (p.created_at, p.id) < ($4, $5::text))"
        " ORDER BY p.created_at DESC, p.id DESC LIMIT $6",
        merchant_id, merchant_order_no, status, cursor["created_at"] if cursor else None,
        cursor["id"] if cursor else None, limit + 1,
    )
    return [_payment(r) for r in rows[:limit]], len(rows) > limit


_TRANSITION_PAYMENT = """
WITH p AS (
    UPDATE payments SET status = $3::text, updated_at = $4::timestamptz
    WHERE id = $1::text AND merchant_id = $2::text AND status = $5::text
    RETURNING id, CASE WHEN $19::boolean THEN controls->>'admission' END AS admission
), v AS (
    UPDATE vouchers v SET status = $6::text, updated_at = $4::timestamptz
    FROM (SELECT id, status FROM vouchers WHERE payment_id IN (SELECT id FROM p) AND status = ANY($7::text[])
          FOR UPDATE) old
    WHERE v.id = old.id
    RETURNING v.id, old.status AS from_status, v.status AS to_status
), t AS (
    INSERT INTO transitions (object_id, from_status, to_status, event, reason, at)
    SELECT id, $5::text, $3::text, $8::text, $9::text, $4::timestamptz FROM p
    UNION ALL
    SELECT id, from_status, to_status, $8::text, $9::text, $4::timestamptz FROM v
), j AS (
    INSERT INTO jobs (kind, ref_id, payload) SELECT $10::text, $11::text, $12::jsonb FROM p WHERE $10::text IS NOT NULL
    ON CONFLICT ON CONSTRAINT jobs_kind_ref DO NOTHING
), o AS (
    INSERT INTO outbox_events (id, merchant_id, type, object_id, payload, created_at)
    SELECT $13::text, $2::text, $14::text, id, $15::jsonb, $4::timestamptz FROM p WHERE $13::text IS NOT NULL
), i AS (
    UPDATE idempotency_keys SET status_code = $17::int, response_body = $18::bytea
    WHERE merchant_id = $2::text AND key = $16::text AND EXISTS (SELECT 1 FROM p)
), """ + USAGE_OWED + """
SELECT (SELECT count(*) FROM p) AS moved
"""


async def transition_payment(conn: Conn, merchant_id: str, payment_id: str, transition: Transition, now: datetime,
                             voucher_to: str | None = None, voucher_from: tuple[str, ...] = (),
                             job: Job | None = None, event: OutboxEvent | None = None,
                             response: StoredResponse | None = None) -> bool:
    """Compare-and-set a payment from ``transition.from_status`` to ``to_status`` with its records; a
    final state without money also records the limit usage the payment owes back (``USAGE_OWED``).

    Returns False (and writes nothing) when the payment is no longer in ``from_status``."""
    assert transition.from_status is not None
    key, status_code, body = _resp(response)
    moved = await conn.fetchval(
        _TRANSITION_PAYMENT,
        payment_id, merchant_id, transition.to_status, now, transition.from_status, voucher_to, list(voucher_from),
        transition.event, transition.reason, job.kind if job else None, job.ref_id if job else None,
        _json(job.payload if job else None), event.id if event else None, event.type if event else None,
        _json(event.payload if event else None), key, status_code, body,
        PaymentStatus(transition.to_status) in ENDED_WITHOUT_MONEY,
    )
    return bool(moved)


# ---------------------------------------------------------------- refunds

_INSERT_REFUND = """
WITH p AS (
    UPDATE payments SET amount_refunded = amount_refunded + $3::bigint,
           fee_refunded = div(2 * fee::numeric * (amount_refunded + $3::bigint) + amount, 2 * amount::numeric)::bigint,
           updated_at = $8::timestamptz
    WHERE id = $1::text AND merchant_id = $2::text AND status = 'succeeded' AND amount_refunded + $3::bigint <= amount
    RETURNING id, payer_account_id, fee, amount, amount_refunded, fee_refunded, fee_collection
), r AS (
    INSERT INTO refunds (id, payment_id, merchant_id, merchant_refund_no, amount, fee_refunded, status, reason,
                         txn_no, created_at, updated_at)
    SELECT $4::text, p.id, $2::text, $5::text, $3::bigint,
           p.fee_refunded - div(2 * p.fee::numeric * (p.amount_refunded - $3::bigint) + p.amount,
                                2 * p.amount::numeric)::bigint,
           $6::text, $7::text, $9::text, $8::timestamptz, $8::timestamptz
    FROM p
    ON CONFLICT ON CONSTRAINT refunds_payment_refund_no DO NOTHING
    RETURNING id, fee_refunded
), t AS (
    INSERT INTO transitions (object_id, from_status, to_status, event, reason, at)
    SELECT id, 'created', $6::text, $10::text, $7::text, $8::timestamptz FROM r
), j AS (
    INSERT INTO jobs (kind, ref_id, payload) SELECT $11::text, id, $12::jsonb FROM r WHERE $11::text IS NOT NULL
), o AS (
    INSERT INTO outbox_events (id, merchant_id, type, object_id, payload, created_at)
    SELECT $13::text, $2::text, $14::text, id, $15::jsonb, $8::timestamptz FROM r WHERE $13::text IS NOT NULL
), i AS (
    UPDATE idempotency_keys SET status_code = $17::int, response_body = $18::bytea
    WHERE merchant_id = $2::text AND key = $16::text AND EXISTS (SELECT 1 FROM r)
)
SELECT (SELECT count(*) FROM p) AS reserved, (SELECT fee_refunded FROM r) AS fee_share,
       (SELECT payer_account_id FROM p) AS payer_account_id, (SELECT fee_collection FROM p) AS fee_collection
"""


@dataclass(frozen=True, slots=True)
class NewRefund:
    id: str
    payment_id: str
    merchant_id: str
    merchant_refund_no: str
    amount: int
    status: str
    reason: str | None
    txn_no: str
    created_at: datetime


async def insert_refund(conn: Conn, rf: NewRefund, transition_event: str, job_kind: str | None,
                        event: OutboxEvent | None, response: StoredResponse | None) -> tuple[int, str | None, str]:
    """Reserve the refund on its payment and insert it; returns (fee share refunded, payer wallet account,
    how the payment's fee was collected).

    The payment's ``amount_refunded + amount <= amount`` is checked in the UPDATE that raises it, so
    concurrent refunds can never exceed the payment. Raises DuplicateOrder, NotFound,
    PaymentNotRefundable or RefundExceedsPayment; the caller's transaction must then roll back."""
    key, status_code, body = _resp(response)
    row = await conn.fetchrow(
        _INSERT_REFUND,
        rf.payment_id, rf.merchant_id, rf.amount, rf.id, rf.merchant_refund_no, rf.status, rf.reason,
        rf.created_at, rf.txn_no, transition_event, job_kind, '{"refund": true}' if job_kind else None,
        event.id if event else None, event.type if event else None, _json(event.payload if event else None),
        key, status_code, body,
    )
    assert row is not None
    if row["fee_share"] is not None:
        return int(row["fee_share"]), row["payer_account_id"], row["fee_collection"]
    existing = await conn.fetchval(
        "SELECT id FROM refunds WHERE payment_id = $1 AND merchant_refund_no = $2", rf.payment_id,
        rf.merchant_refund_no)
    if existing is not None:
        raise DuplicateOrder("merchant_refund_no", rf.merchant_refund_no, existing)
    payment = await conn.fetchrow(
        "SELECT status, amount, amount_refunded FROM payments WHERE id = $1 AND merchant_id = $2",
        rf.payment_id, rf.merchant_id)
    if payment is None:
        raise NotFound("payment", rf.payment_id)
    if payment["status"] != "succeeded":
        raise PaymentNotRefundable(rf.payment_id, payment["status"])
    raise RefundExceedsPayment(rf.payment_id, rf.amount, payment["amount"] - payment["amount_refunded"])


async def get_refund(conn: Conn, merchant_id: str, refund_id: str) -> RefundRecord | None:
    r = await conn.fetchrow(
        "SELECT id, payment_id, merchant_refund_no, amount, status, reason, txn_no, created_at, rerouted_to,"
        " payout_id FROM refunds WHERE id = $1 AND merchant_id = $2", refund_id, merchant_id)
    if r is None:
        return None
    return RefundRecord(r["id"], r["payment_id"], r["merchant_refund_no"], r["amount"],
                        RefundStatus(r["status"]), r["reason"],
                        r["txn_no"], r["created_at"], cast(RerouteTarget | None, r["rerouted_to"]), r["payout_id"])


async def transitions_of(conn: Conn, object_id: str) -> list[Transition]:
    rows = await conn.fetch(
        "SELECT from_status, to_status, event, reason FROM transitions WHERE object_id = $1 ORDER BY id", object_id)
    return [Transition(r["from_status"], r["to_status"], r["event"], r["reason"]) for r in rows]
