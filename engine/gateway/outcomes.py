"""Applying "the channel says this order is paid", whoever learned it: notify, janitor query, close.

One booking transaction per report: lock the channel order, check it against the payment, then either
move the payment to succeeded and book PAY_CHANNEL (fee from the payment), or recognise a repeat, or
take the money of a payment we had already closed and open an auto-refund, or refuse and record why.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from datetime import datetime

from accounts.model import AccountId
from accounts.rules import build_entry
from accounts.store import Conn, find_account
from engine.booking import BookingTransaction
from engine.gateway.context import Gateway
from engine.gateway.events import write_payment_event
from engine.gateway.metrics import NOTIFIES
from engine.gateway.store import (
    ChannelOrder,
    NewException,
    PaymentFacts,
    enqueue_job,
    find_order,
    lock_order,
    mark_order_paid,
    mark_payment_paid,
    payment_facts,
    record_exception,
)
from engine.merchants.pricing import DEDUCTED, FEE_PAYABLE_ROLE, fee_txn_code
from engine.payments.states import UNPAID

log = logging.getLogger(__name__)

AUTO_REFUND_JOB = "auto_refund"


@dataclass(frozen=True, slots=True)
class ChannelPaid:
    channel: str
    out_trade_no: str
    amount_minor: int
    currency: str
    channel_txn_id: str
    paid_at: datetime | None
    source: str  # notify | query | close


class Verdict(enum.StrEnum):
    BOOKED = "booked"
    DUPLICATE = "duplicate"
    LATE_REFUNDING = "late_refunding"  # paid after we closed: booked, auto-refund opened
    UNKNOWN_ORDER = "unknown_order"
    AMOUNT_MISMATCH = "amount_mismatch"
    CONFLICTING_TXN = "conflicting_txn"

    @property
    def accepted(self) -> bool:
        """Whether the channel should hear an acknowledgement (we hold the outcome durably)."""
        return self in (Verdict.BOOKED, Verdict.DUPLICATE, Verdict.LATE_REFUNDING)


async def _merchant_account(conn: Conn, payment: PaymentFacts, role: str) -> AccountId:
    account = await find_account(conn, payment.merchant_id, role, payment.currency)
    assert account is not None, f"merchant {payment.merchant_id} has no {payment.currency} {role} account"
    return account.id


async def apply_paid(gw: Gateway, paid: ChannelPaid, now: datetime) -> Verdict:
    """Apply one paid report exactly once; see the module docstring. Refusals leave an exception record."""
    platform = await gw.platform_accounts(paid.currency) if len(paid.currency) == 3 else {}
    async with gw.booker.transaction() as tx:
        conn = tx.conn
        # Payment row first, then the order row: the same lock order as the voucher and expiry writes.
        found = await find_order(conn, paid.channel, paid.out_trade_no)
        payment = await payment_facts(conn, found.payment_id, lock=True) if found else None
        order = await lock_order(conn, paid.channel, paid.out_trade_no) if found else None
        verdict = await _refusal(conn, paid, order, payment, now)
        if verdict is not None:
            NOTIFIES.labels(paid.channel, verdict.value).inc()
            return verdict
        assert order is not None and payment is not None
        accounts = {"channel_receivable": platform["channel_receivable"],
                    "gateway_transit": platform["gateway_transit"], "fee_income": platform["fee_income"],
                    "merchant_pending": await _merchant_account(conn, payment, "merchant_pending")}
        await mark_order_paid(conn, paid.channel, paid.out_trade_no, paid.channel_txn_id, paid.amount_minor,
                              paid.paid_at, now)
        if payment.status in UNPAID and await mark_payment_paid(
                conn, payment.id, payment.status, paid.channel, now, f"{paid.source} {paid.channel_txn_id}"):
            fee_accounts = {} if payment.fee_collection == DEDUCTED else {
                FEE_PAYABLE_ROLE: await _merchant_account(conn, payment, FEE_PAYABLE_ROLE)}
            entry = build_entry(fee_txn_code("PAY_CHANNEL", payment.fee_collection), payment.txn_no, now.date(),
                                payment.currency, {**accounts, **fee_accounts},
                                {"amount": payment.amount, "fee": payment.fee}, ref=payment.id)
            await tx.post(entry)
            await write_payment_event(conn, payment.merchant_id, payment.id, "payment.succeeded", now)
            verdict = Verdict.BOOKED
        else:
            verdict = await _book_late_success(tx, gw, paid, payment, accounts, now)
    NOTIFIES.labels(paid.channel, verdict.value).inc()
    log.info("channel payment applied", extra={"channel": paid.channel, "out_trade_no": paid.out_trade_no,
                                              "source": paid.source, "verdict": verdict.value})
    return verdict


def _problem(kind: str, key: str, detail: str, paid: ChannelPaid, payment_id: str | None = None) -> NewException:
    return NewException(kind, f"{kind}:{paid.channel}:{key}", f"{paid.source}: {detail}", channel=paid.channel,
                        payment_id=payment_id, out_trade_no=paid.out_trade_no, channel_txn_id=paid.channel_txn_id,
                        amount=paid.amount_minor, currency=paid.currency)


async def _refusal(conn: Conn, paid: ChannelPaid, order: ChannelOrder | None, payment: PaymentFacts | None,
                   now: datetime) -> Verdict | None:
    """Why this report must not be booked (recorded), DUPLICATE for a repeat, None to go ahead."""
    logged = {"channel": paid.channel, "out_trade_no": paid.out_trade_no, "channel_txn_id": paid.channel_txn_id,
              "amount": paid.amount_minor, "currency": paid.currency, "source": paid.source}
    if order is None or payment is None:
        await record_exception(conn, _problem(
            "unknown_order", f"{paid.out_trade_no}:{paid.channel_txn_id}",
            f"channel reports {paid.out_trade_no} paid but we never ordered it there", paid), now)
        log.warning("paid report for an unknown order refused", extra=logged)
        return Verdict.UNKNOWN_ORDER
    if order.channel_txn_id is not None:
        if order.channel_txn_id == paid.channel_txn_id:
            return Verdict.DUPLICATE
        await record_exception(conn, _problem(
            "conflicting_txn", paid.channel_txn_id, f"order already paid by {order.channel_txn_id}", paid,
            payment.id), now)
        log.warning("paid report with a second channel transaction refused", extra=logged)
        return Verdict.CONFLICTING_TXN
    if (paid.amount_minor, paid.currency) != (payment.amount, payment.currency):
        await record_exception(conn, _problem(
            "amount_mismatch", f"{paid.out_trade_no}:{paid.channel_txn_id}",
            f"channel reports {paid.amount_minor} {paid.currency}, payment is {payment.amount} {payment.currency}",
            paid, payment.id), now)
        log.warning("paid report with a different amount refused", extra={**logged, "expected": payment.amount})
        return Verdict.AMOUNT_MISMATCH
    return None


async def _book_late_success(tx: BookingTransaction, gw: Gateway, paid: ChannelPaid, payment: PaymentFacts,
                             accounts: dict[str, AccountId], now: datetime) -> Verdict:
    """The payer paid an order we had closed (or paid twice): take the money, then give it back.

    PAY_CHANNEL books what the channel holds for us (no fee: the merchant keeps nothing of it); the
    REFUND_CHANNEL entry is booked by the auto-refund job once the channel confirms the refund."""
    txn_no = gw.txn_nos.next(now)
    refund_txn_no = gw.txn_nos.next(now)
    entry = build_entry("PAY_CHANNEL", txn_no, now.date(), payment.currency, accounts,
                        {"amount": paid.amount_minor, "fee": 0}, ref=payment.id)
    await tx.post(entry)
    conn = tx.conn
    exception_id, _ = await record_exception(conn, NewException(
        "late_success", f"late_success:{paid.channel}:{paid.channel_txn_id}",
        f"{paid.source}: paid {paid.amount_minor} {paid.currency} while payment is {payment.status}; "
        f"booked as {txn_no} and refunded through the channel", channel=paid.channel, payment_id=payment.id,
        out_trade_no=paid.out_trade_no, channel_txn_id=paid.channel_txn_id, amount=paid.amount_minor,
        currency=paid.currency, out_refund_no=f"AR{refund_txn_no}", refund_txn_no=refund_txn_no), now)
    await enqueue_job(conn, AUTO_REFUND_JOB, exception_id)
    log.warning("late channel success: booked and auto-refund opened",
                extra={"channel": paid.channel, "payment_id": payment.id, "exception_id": exception_id})
    return Verdict.LATE_REFUNDING
