"""Create a transfer: check the request, decide the row and the response, then one booking transaction.

Customers belong to a merchant, so a merchant moves money only between its own customers (another
merchant's customer answers 404 like an unknown one) or from its own available balance (cash-back).
The control gate (limits, risk rules) admits the transfer first; its record is stored on the row. The
transaction is two statements: the transfer insert (key claim, parties, row, event, response, risk
record) and the ledger posting, whose balance check refuses an uncovered debit (InsufficientFunds).
"""

from __future__ import annotations

import logging
from datetime import datetime

import msgspec

from accounts.errors import LedgerError
from accounts.journal import EntryDraft
from accounts.rules import build_entry
from engine.amounts import check_amount
from engine.booking import Booker
from engine.controls.gate import Attempt, Booking
from engine.db import release_without_reset
from engine.errors import DomainError, IdempotencyKeyTaken, UnsupportedCurrency
from engine.idempotency.records import IdemSlot, Outcome, StoredResponse
from engine.keys import EVENT, TRANSFER, new_id
from engine.merchants.store import MerchantRecord
from engine.payments.store import OutboxEvent
from engine.services import Services
from engine.transfers.errors import SelfTransfer, TransferSourceInvalid
from engine.transfers.states import TransferStatus
from engine.transfers.store import Parties, TransferRecord, insert_transfer
from engine.transfers.wire import CreateTransfer, Transfer

log = logging.getLogger(__name__)

EVENT_SUCCEEDED = "transfer.succeeded"
TXN_CODES = {"customer": "TRANSFER_C2C", "merchant": "CASHBACK"}


def transfer_view(t: TransferRecord) -> Transfer:
    return Transfer(t.id, t.transfer_no, t.source, t.from_customer_id, t.to_customer_id,
                    t.amount, t.currency, t.status, t.txn_no, t.description,
                    t.metadata, t.created_at)


def check_request(merchant: MerchantRecord, req: CreateTransfer, currencies: tuple[str, ...]) -> None:
    """The rules that need no database: payer named iff a customer pays, not to self, a known currency."""
    if (req.source == "customer") != (req.from_customer_id is not None):
        raise TransferSourceInvalid(req.source)
    if req.from_customer_id == req.to_customer_id:
        raise SelfTransfer(req.to_customer_id)
    if req.currency not in currencies or req.currency not in merchant.pending_accounts:
        raise UnsupportedCurrency(req.currency)


def transfer_entry(t: TransferRecord, parties: Parties) -> EntryDraft:
    if t.source == "customer":
        accounts = {"payer_wallet": parties.payer_account_id, "payee_wallet": parties.payee_account_id}
    else:
        accounts = {"merchant_available": parties.payer_account_id, "customer_wallet": parties.payee_account_id}
    return build_entry(TXN_CODES[t.source], t.txn_no, t.created_at.date(), t.currency, accounts,
                       {"amount": t.amount}, ref=t.id)


async def create_transfer(ctx: Services, booker: Booker, merchant: MerchantRecord, req: CreateTransfer,
                          slot: IdemSlot | None, now: datetime) -> Outcome:
    """Book the transfer and answer 201 with it; a refusal raises with nothing written (see the store)."""
    try:
        return await _book(ctx, booker, merchant, req, slot, now)
    except IdempotencyKeyTaken:
        raise  # a retry of a request we have: answered from the key, not a refusal
    except (DomainError, LedgerError) as exc:  # every refusal: transfer, payment, controls, ledger rules
        # Ids, codes and amounts only: never the request body, metadata or keys.
        log.info("transfer refused", extra={
            "merchant_id": merchant.id, "transfer_no": req.transfer_no, "source": req.source,
            "amount": req.amount, "currency": req.currency, "code": exc.code, "param": getattr(exc, "param", None)})
        raise


async def _book(ctx: Services, booker: Booker, merchant: MerchantRecord, req: CreateTransfer,
                slot: IdemSlot | None, now: datetime) -> Outcome:
    check_request(merchant, req, ctx.settings.currencies)
    check_amount(ctx.settings, req.currency, req.amount)
    record = TransferRecord(
        new_id(TRANSFER), merchant.id, req.transfer_no, req.source, req.amount, req.currency, req.from_customer_id,
        req.to_customer_id, TransferStatus.SUCCEEDED, ctx.txn_nos.next(now), req.description, dict(req.metadata), now)
    body = msgspec.json.encode(transfer_view(record))
    response = StoredResponse(slot.merchant_id, slot.key, 201, body) if slot else None
    event = OutboxEvent(new_id(EVENT), EVENT_SUCCEEDED, body)
    # Limits and risk rules before booking (LimitExceeded / RiskDeclined: nothing written). The payer is
    # the customer whose spending is counted; a cash-back counts against the merchant's limits only.
    admission = await ctx.gate.admit(
        Attempt("transfer", "transfer", merchant.id, req.from_customer_id, req.amount, req.currency,
                movement_id=record.id))
    risk = None if admission is None else msgspec.json.encode(admission.record())
    # Not booked (insufficient funds, duplicate transfer_no, replayed key, ...): the usage is given back;
    # a failure at or after COMMIT keeps it (the transfer may exist).
    async with Booking(admission) as booking:
        async with booker.transaction() as tx:
            if admission is not None:
                await admission.claim(tx.conn)  # AdmissionReleased: the orphan sweep gave it back, do not book
            parties = await insert_transfer(tx.conn, record, risk, event, response,
                                            slot.fingerprint if slot else None)
            await tx.post(transfer_entry(record, parties))
            # Our statement and the posting function keep their locks and settings transaction-local.
            release_without_reset(tx.conn)
            booking.reached_last_step()
    return Outcome(201, body, response is not None)
