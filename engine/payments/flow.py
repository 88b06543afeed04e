"""Payments and refunds: check the request, decide the new rows and the response, write them at once.

Each flow builds the object it will create (ids, times, fee and transaction number are all known up
front), encodes the response, and hands the store the rows plus that response for the idempotency
key, so the whole effect is one database transaction. A wallet payment is ONE statement (its rows and
its posting: payments.store.book_wallet_payment), its own implicit transaction; a refund is two
(rows, ledger posting) in one transaction.
With a payment batcher (PAYENGINE_BATCH_MAX > 0) a wallet payment is prepared the same way and booked with
the others of its batch (engine/payments/batcher.py), answering exactly what the serial path would.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import msgspec

from accounts.errors import LedgerError
from accounts.journal import EntryDraft
from accounts.model import AccountId
from accounts.rules import build_entry
from accounts.store import Conn, PostedEntry
from engine.amounts import check_amount
from engine.booking import Booker
from engine.controls.gate import Admission, Attempt, Booking
from engine.controls.store import AdmissionClaim
from engine.db import release_without_reset
from engine.errors import DomainError, InvalidRequest, NotFound, UnsupportedCurrency
from engine.idempotency.records import IdemSlot, Outcome, StoredResponse
from engine.keys import EVENT, PAYMENT, REFUND, VOUCHER, new_id
from engine.merchants.allowed import check_allowed
from engine.merchants.pricing import DEDUCTED, FEE_PAYABLE_ROLE, fee_txn_code
from engine.merchants.store import MerchantRecord
from engine.payments import closing
from engine.payments.batch_store import BatchPayment
from engine.payments.batcher import BatchCommitUncertain, PaymentBatcher
from engine.payments.states import (
    NEW,
    PaymentEvent,
    RefundEvent,
    VoucherStatus,
    next_payment_status,
    next_refund_status,
)
from engine.payments.store import (
    PAYER,
    Job,
    NewPayment,
    NewRefund,
    OutboxEvent,
    PaymentRecord,
    RefundRecord,
    Transition,
    VoucherRecord,
    book_wallet_payment,
    get_payment,
    insert_payment,
    insert_refund,
)
from engine.payments.views import payment_view, refund_view
from engine.payments.wire import CreatePayment, CreateRefund
from engine.services import Services


def _stored(slot: IdemSlot | None, status: int, body: bytes) -> StoredResponse | None:
    return StoredResponse(slot.merchant_id, slot.key, status, body) if slot else None


def _fee_accounts(merchant: MerchantRecord, currency: str, collection: str) -> dict[str, AccountId]:
    """The fee-payable account an invoiced fee is booked to (none for a deducted one)."""
    if collection == DEDUCTED:
        return {}
    account = merchant.fee_payable_accounts.get(currency)
    if account is None:
        raise UnsupportedCurrency(currency)
    return {FEE_PAYABLE_ROLE: account}


async def create_payment(ctx: Services, booker: Booker, merchant: MerchantRecord, req: CreatePayment,
                         slot: IdemSlot | None, now: datetime) -> Outcome:
    """Wallet: debit the customer and book PAY_WALLET now (201 succeeded, or InsufficientFunds with
    nothing written). Channel: 201 pending_voucher with a pending voucher and a create_voucher job."""
    pending_account = merchant.pending_accounts.get(req.currency)
    if pending_account is None:
        raise UnsupportedCurrency(req.currency)
    check_amount(ctx.settings, req.currency, req.amount)
    wallet = req.method == "wallet"
    channel = None
    if wallet and req.customer_id is None:
        raise InvalidRequest("customer_id", "customer_id is required for method 'wallet'")
    if not wallet:
        channel = req.channel or ctx.settings.default_channel
        if channel not in ctx.known_channels:
            raise InvalidRequest("channel", f"unknown channel {channel!r}; known: {sorted(ctx.known_channels)}")
    check_allowed(merchant, req.method, channel)
    event = PaymentEvent.WALLET_DEBITED if wallet else PaymentEvent.CHANNEL_ORDER_CREATED
    status = next_payment_status(None, event)
    fee = merchant.pricing.fee_for(req.amount)
    collection = merchant.pricing.collection
    fee_accounts = _fee_accounts(merchant, req.currency, collection)
    txn_no = ctx.txn_nos.next(now)
    expires_at = now + timedelta(seconds=req.expires_in_s or ctx.settings.payment_expiry_default_s)
    payment_id = new_id(PAYMENT)
    voucher = None if wallet else VoucherRecord(new_id(VOUCHER), VoucherStatus.PENDING, channel or "",
                                                None, None, expires_at)
    record = PaymentRecord(
        payment_id, merchant.id, req.merchant_order_no, req.amount, req.currency, req.method, channel,
        req.customer_id, None, status, fee, 0, txn_no, req.description, req.metadata, expires_at, now, now,
        voucher)
    body = msgspec.json.encode(payment_view(record))
    response = _stored(slot, 201, body)
    outbox = OutboxEvent(new_id(EVENT), "payment.succeeded", body) if wallet else None
    job = None if voucher is None else Job("create_voucher", voucher.id,
                                           msgspec.json.encode({"payment_id": payment_id, "channel": channel}))
    row = NewPayment(payment_id, merchant.id, req.merchant_order_no, req.amount, req.currency, req.method, channel,
                     req.customer_id, status.value, fee, txn_no, req.description, req.metadata, expires_at, now,
                     voucher.id if voucher else None, collection)
    platform = await ctx.platform_accounts(req.currency) if wallet else {}
    # Limits and risk rules before booking (LimitExceeded / RiskDeclined: nothing written). The counted usage
    # is given back when the booking does not happen (insufficient funds, duplicate order, replayed key).
    admission = await ctx.gate.admit(
        Attempt("payment", req.method, merchant.id, req.customer_id, req.amount, req.currency,
                movement_id=payment_id))
    # The payer's wallet is named PAYER: the booking statement finds it with its customer check.
    entry = build_entry(
        fee_txn_code("PAY_WALLET", collection), txn_no, now.date(), req.currency,
        {"customer_wallet": PAYER, "gateway_transit": platform["gateway_transit"],
         "merchant_pending": pending_account, "fee_income": platform["fee_income"], **fee_accounts},
        {"amount": req.amount, "fee": fee}, ref=payment_id) if wallet else None
    transition = Transition(NEW, status.value, event.value)
    if entry is not None and ctx.payment_batcher is not None and (slot is None or slot.fingerprint is not None):
        assert req.customer_id is not None and outbox is not None
        item = BatchPayment(row, transition, outbox, entry,
                            slot.key if slot else None, slot.fingerprint if slot else None,
                            admission.id if admission else None, admission.record() if admission else None)
        return await _book_batched(ctx.payment_batcher, item, admission, body)
    claim = AdmissionClaim(admission.id, admission.record()) if admission is not None else None
    fingerprint = slot.fingerprint if slot else None
    # A failure before the booking's last step gives the usage back; one after it (commit, enqueue) keeps it.
    async with Booking(admission) as booking:
        if entry is not None:
            async def statement(conn: Conn, routed: EntryDraft) -> PostedEntry:
                booking.reached_last_step()  # one statement, its own transaction: sent = maybe committed
                return await book_wallet_payment(conn, row, transition, outbox, response, fingerprint, claim, routed)

            try:
                await booker.book_statement(entry, statement)
            except (DomainError, LedgerError):
                booking.refused()  # the database said no: nothing of it committed
                raise
        else:
            async with booker.transaction() as tx:
                await insert_payment(tx.conn, row, transition, job, outbox, response, fingerprint, admission=claim)
                # Our statements keep their locks and settings transaction-local.
                release_without_reset(tx.conn)
                booking.reached_last_step()
    if not wallet:  # after commit; the sweep covers a failure here
        await ctx.expiry.schedule(merchant.id, payment_id, expires_at)
    return Outcome(201, body, response is not None)


async def _book_batched(batcher: PaymentBatcher, item: BatchPayment, admission: Admission | None,
                        body: bytes) -> Outcome:
    """The wallet payment through the batcher: the same answer as the serial path for every outcome. A
    refusal the batch kept as the key's answer is answered from what it kept (as run_idempotent would)."""
    async with Booking(admission) as booking:
        try:
            result = await batcher.submit(item)
        except BatchCommitUncertain:
            booking.reached_last_step()  # it may have booked: keep the usage (the orphan sweep gives back)
            raise
        except asyncio.CancelledError:
            booking.reached_last_step()  # the batch goes on without us and may book it
            raise
        if result.error is None:
            booking.reached_last_step()
        elif result.stored is None:
            raise result.error
    if result.stored is not None:  # a refusal: nothing booked, the usage goes back
        if admission is not None:
            await admission.release()
        return Outcome(result.stored[0], result.stored[1], True)
    return Outcome(201, body, item.key is not None)


async def close_payment(ctx: Services, merchant: MerchantRecord, payment_id: str, slot: IdemSlot | None,
                        now: datetime) -> Outcome:
    """The merchant closes an unpaid payment (payments/closing.py); its limit usage goes back."""
    body = await closing.close_payment(ctx.pool, merchant.id, payment_id, closing.BY_MERCHANT, now, ctx.release_usage,
                                       slot)
    assert body is not None, "a merchant's close raises when there is nothing to close"
    return Outcome(200, body, slot is not None)


async def create_refund(ctx: Services, booker: Booker, merchant: MerchantRecord, payment_id: str,
                        req: CreateRefund, slot: IdemSlot | None, now: datetime) -> Outcome:
    """Wallet payments: credit the customer now (REFUND_WALLET). Channel payments: a pending refund and a
    channel_refund job. The refund total never exceeds the payment (checked by the reserving UPDATE)."""
    async with ctx.pool.acquire() as conn:
        payment = await get_payment(conn, merchant.id, payment_id)
    if payment is None:
        raise NotFound("payment", payment_id)
    check_amount(ctx.settings, payment.currency, req.amount)
    wallet = payment.method == "wallet"
    event = RefundEvent.WALLET_CREDITED if wallet else RefundEvent.CHANNEL_REFUND_REQUESTED
    status = next_refund_status(None, event)
    refund = RefundRecord(new_id(REFUND), payment_id, req.merchant_refund_no, req.amount, status, req.reason,
                          ctx.txn_nos.next(now), now)
    body = msgspec.json.encode(refund_view(refund))
    response = _stored(slot, 201, body)
    outbox = OutboxEvent(new_id(EVENT), "refund.succeeded", body) if wallet else None
    platform = await ctx.platform_accounts(payment.currency) if wallet else {}
    async with booker.transaction() as tx:
        fee_share, payer, collection = await insert_refund(
            tx.conn, NewRefund(refund.id, payment_id, merchant.id, req.merchant_refund_no, req.amount, status.value,
                               req.reason, refund.txn_no, now),
            event.value, None if wallet else "channel_refund", outbox, response)
        if wallet:
            assert payer is not None
            entry = build_entry(
                fee_txn_code("REFUND_WALLET", collection), refund.txn_no, now.date(), payment.currency,
                {"merchant_pending": merchant.pending_accounts[payment.currency],
                 "fee_income": platform["fee_income"], "customer_wallet": AccountId(payer),
                 **_fee_accounts(merchant, payment.currency, collection)},
                {"amount": req.amount, "fee": fee_share}, ref=refund.id)
            await tx.post(entry)
    return Outcome(201, body, response is not None)
