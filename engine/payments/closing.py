"""Closing an unpaid payment: the one path for the merchant's close, the deadline (expiry) and the janitor.

A close is one compare-and-set statement (payments/store.transition_payment): the payment moves from the
unpaid status it was read in to closed through the state table, its voucher (pending or ready) expires, a
``close_order`` job closes the channel order of a channel payment, the ``payment.closed`` event goes to the
outbox, the limit usage it counted becomes owed back (usage_releases), and, for a merchant's close, the
response is stored for its Idempotency-Key. If the payment moved in between (paid, voucher ready), nothing is
written and the caller reads it again. After the commit the usage is given back (controls/usage_release.py).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import msgspec

from accounts.store import Conn
from engine.controls.usage_release import ReleaseAdmission, release_now
from engine.errors import NotFound
from engine.idempotency.records import IdemSlot, StoredResponse
from engine.keys import EVENT, new_id
from engine.payments.states import (
    UNPAID,
    PaymentEvent,
    VoucherEvent,
    VoucherStatus,
    next_payment_status,
    next_voucher_status,
)
from engine.payments.store import Job, OutboxEvent, PaymentRecord, Transition, get_payment, transition_payment
from engine.payments.views import payment_view

CLOSE_RETRIES_MAX = 3  # reads and compare-and-sets while the payment keeps moving under us
CLOSE_ORDER_JOB = "close_order"


@dataclass(frozen=True, slots=True)
class Closing:
    """Why a payment closes: the state table's event and the reason its transition records."""

    event: PaymentEvent
    reason: str


BY_MERCHANT = Closing(PaymentEvent.CLOSE, "closed by merchant")
EXPIRED = Closing(PaymentEvent.EXPIRE, "expired")
CLOSED_AT_CHANNEL = Closing(PaymentEvent.EXPIRE, "closed at channel")


async def close_unpaid(conn: Conn, current: PaymentRecord, why: Closing, now: datetime,
                       response_for: IdemSlot | None = None) -> bytes | None:
    """In the caller's transaction: move ``current`` (as read) to closed; returns the closed payment's JSON,
    or None when it was no longer in the status it was read in. Raises IllegalTransition when the state table
    has no row for the close (a paid or failed payment)."""
    target = next_payment_status(current.status, why.event)
    voucher = current.voucher
    if voucher is not None and voucher.status in (VoucherStatus.PENDING, VoucherStatus.READY):
        voucher = dataclasses.replace(voucher, status=next_voucher_status(voucher.status, VoucherEvent.PAYMENT_CLOSED))
    closed = dataclasses.replace(current, status=target, updated_at=now, voucher=voucher)
    body = msgspec.json.encode(payment_view(closed))
    response = StoredResponse(response_for.merchant_id, response_for.key, 200, body) if response_for else None
    moved = await transition_payment(
        conn, current.merchant_id, current.id, Transition(current.status, target, why.event, why.reason), now,
        voucher_to=VoucherStatus.EXPIRED, voucher_from=(VoucherStatus.PENDING, VoucherStatus.READY),
        job=Job(CLOSE_ORDER_JOB, current.id) if current.method == "channel" else None,
        event=OutboxEvent(new_id(EVENT), "payment.closed", body), response=response)
    return body if moved else None


async def close_payment(pool: asyncpg.Pool, merchant_id: str, payment_id: str, why: Closing, now: datetime,
                        release_usage: ReleaseAdmission | None, response_for: IdemSlot | None = None,
                        *, only_if_due: bool = False) -> bytes | None:
    """Read, close (``close_unpaid``), and give the limit usage back; retried while the payment moves.

    Returns the closed payment's JSON, or None when there is nothing to close: it is gone, no longer unpaid,
    or (``only_if_due``, the deadline's close) not past its ``expires_at``. A merchant's close of a missing
    payment raises NotFound, of a paid one IllegalTransition. ``release_usage`` None: the release loop gives
    the usage back later."""
    for _ in range(CLOSE_RETRIES_MAX):
        async with pool.acquire() as conn:
            current = await get_payment(conn, merchant_id, payment_id)
            if current is None:
                if only_if_due:
                    return None
                raise NotFound("payment", payment_id)
            if only_if_due and (current.status not in UNPAID or current.expires_at > now):
                return None
            async with conn.transaction():
                body = await close_unpaid(conn, current, why, now, response_for)
        if body is not None:  # the connection is back in the pool: the release takes its own
            await release_now(pool, release_usage, payment_id)
            return body
    if only_if_due:
        return None  # it kept moving (voucher ready, paid...): the next sweep looks again
    raise RuntimeError(f"payment {payment_id} kept changing status while closing")

