"""`POST /v1/payouts`: check everything, then freeze the amount and write the payout in one transaction.

Nothing is frozen unless every check passed: the destination (422), the channel (400 unknown or unable to pay
out, 403 outside the merchant's allowed channels, as for payments), the customer (404), the currency (400).
The freeze is a PAYOUT_FREEZE entry from the source account to the owner's frozen account, posted by the
ledger's own statement that checks the source's overdraft rule, so concurrent payouts can never freeze more
than the balance (the loser gets InsufficientFunds, 402, and its transaction writes nothing).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import msgspec

from accounts.model import AccountId, AccountKind, OverdraftRule
from accounts.rules import build_entry
from accounts.store import Conn, find_account
from engine.amounts import check_amount
from engine.booking import Booker, BookingTransaction
from engine.controls.gate import Attempt, Booking
from engine.customers.store import get_customer
from engine.errors import InvalidRequest, NotFound, UnsupportedCurrency
from engine.idempotency.records import IdemSlot, Outcome
from engine.idempotency.store import save_idempotent_response
from engine.keys import ACCOUNT, PAYOUT, new_id
from engine.merchants.allowed import check_channel_allowed
from engine.merchants.errors import PaymentMethodNotAllowed
from engine.merchants.store import MerchantRecord, ensure_account
from engine.payments.errors import PaymentCurrencyMismatch
from engine.payouts.destination import Destination, check_destination
from engine.payouts.errors import PayoutSourceMissing
from engine.payouts.routing import can_pay_out, payout_candidates
from engine.payouts.store import NewPayout, PayoutRecord, get_payout, insert_payout
from engine.payouts.views import payout_view
from engine.payouts.wire import CreatePayout, PayoutSource
from engine.services import Services
from engine.settings import Settings


@dataclass(frozen=True, slots=True)
class Source:
    kind: PayoutSource
    owner_id: str
    customer_id: str | None
    account_id: AccountId
    frozen_role: str
    account_kind: AccountKind


def _channel_kinds(settings: Settings, known_channels: frozenset[str]) -> dict[str, str]:
    """Known channel name -> adapter kind, in configured order (unconfigured: the adapter kinds themselves)."""
    kinds = {spec.name: spec.kind for spec in settings.channels if spec.name in known_channels}
    return kinds or {name: name for name in sorted(known_channels)}


def payout_channel(settings: Settings, known_channels: frozenset[str], merchant: MerchantRecord,
                   asked: str | None) -> tuple[str, bool]:
    """(channel, chosen). A channel the merchant names must be known (400), able to pay out (400) and allowed
    for the merchant (403, as for payments); it is then never changed. Otherwise the configured payout default
    (else the engine's default channel) when the merchant may use it, else the first configured channel that
    can pay out and that the merchant may use."""
    kinds = _channel_kinds(settings, known_channels)
    if asked is not None:
        if asked not in kinds:
            raise InvalidRequest("channel", f"unknown channel {asked!r}; known: {sorted(kinds)}")
        if not can_pay_out(kinds[asked]):
            raise InvalidRequest("channel", f"channel {asked!r} cannot pay out")
        check_channel_allowed(merchant, asked)
        return asked, True
    candidates = payout_candidates(kinds, merchant.allowed_channels)
    default = settings.payout_default_channel or settings.default_channel
    if default in candidates:
        return default, False
    if candidates:
        return candidates[0], False
    if merchant.allowed_channels is not None:
        raise PaymentMethodNotAllowed("channel", default, list(merchant.allowed_channels))
    raise InvalidRequest("channel", f"no known channel can pay out; known: {sorted(kinds)}")


async def _source(ctx: Services, merchant: MerchantRecord, req: CreatePayout) -> Source:
    async with ctx.pool.acquire() as conn:
        if req.source == "customer":
            if req.customer_id is None:
                raise InvalidRequest("customer_id", "customer_id is required for a customer payout")
            customer = await get_customer(conn, merchant.id, req.customer_id)
            if customer is None:
                raise NotFound("customer", req.customer_id, "customer_id")
            if customer.currency != req.currency:
                raise PaymentCurrencyMismatch(customer.currency, req.currency, "currency")
            return Source("customer", customer.id, customer.id, customer.wallet_account_id, "customer_frozen",
                          AccountKind.CUSTOMER)
        if req.customer_id is not None:
            raise InvalidRequest("customer_id", "a merchant payout pays out the merchant's own balance: "
                                                "leave customer_id out")
        available = await find_account(conn, merchant.id, "merchant_available", req.currency)
    if available is None:
        raise PayoutSourceMissing(merchant.id, req.currency)
    return Source("merchant", merchant.id, None, available.id, "merchant_frozen", AccountKind.MERCHANT)


async def open_frozen_account(conn: Conn, owner_id: str, frozen_role: str, currency: str,
                              kind: AccountKind) -> AccountId:
    """The owner's frozen account for ``currency``. Open it on its own (committed) before the freeze: a hundred
    concurrent first payouts of one owner must not queue behind one uncommitted insert of the same unique
    (owner, role, currency)."""
    return await ensure_account(conn, owner_id, frozen_role, currency, kind, False, OverdraftRule(), new_id(ACCOUNT))


async def freeze_payout(tx: BookingTransaction, row: NewPayout, now: datetime) -> PayoutRecord:
    """Write a pending payout and freeze its amount (PAYOUT_FREEZE, source -> frozen) in the caller's booking
    transaction: the worker takes it from there. The source's overdraft rule bounds the freeze (InsufficientFunds);
    DuplicateOrder for a used merchant_payout_no. Every payout is made here, whoever asks for it."""
    record = await insert_payout(tx.conn, row)
    await tx.post(build_entry("PAYOUT_FREEZE", row.out_payout_no, now.date(), row.currency,
                              {"source": row.source_account_id, "frozen": row.frozen_account_id},
                              {"amount": row.amount}, ref=record.id))
    return record


async def create_payout(ctx: Services, booker: Booker, merchant: MerchantRecord, req: CreatePayout,
                        slot: IdemSlot | None, now: datetime) -> Outcome:
    """Freeze and record a payout (201 pending); raises a domain error with nothing frozen otherwise."""
    if req.currency not in ctx.settings.currencies:
        raise UnsupportedCurrency(req.currency)
    check_amount(ctx.settings, req.currency, req.amount)
    dest: Destination = check_destination(req.destination.kind, req.destination.number,
                                          req.destination.holder_name, req.destination.bank_code)
    channel, chosen = payout_channel(ctx.settings, ctx.known_channels, merchant, req.channel)
    source = await _source(ctx, merchant, req)
    async with ctx.pool.acquire() as conn:
        frozen = await open_frozen_account(conn, source.owner_id, source.frozen_role, req.currency,
                                           source.account_kind)
    # Limits and risk rules last, right before the freeze (LimitExceeded / RiskDeclined: 402, nothing frozen);
    # the usage they counted is given back when the freeze does not happen (insufficient funds, duplicate).
    payout_id = new_id(PAYOUT)
    admission = await ctx.gate.admit(
        Attempt("payout", "payout", merchant.id, source.customer_id, req.amount, req.currency, dest.number,
                movement_id=payout_id))
    txn_no = ctx.txn_nos.next(now)
    risk = None if admission is None else msgspec.json.encode(admission.record()).decode()
    row = NewPayout(payout_id, merchant.id, req.merchant_payout_no, source.kind, source.customer_id,
                    source.account_id, frozen, req.amount, req.currency, channel, dest.kind, dest.number,
                    dest.holder_name, dest.bank_code, req.description, chosen, txn_no, risk, now)
    # The usage is given back when the freeze fails before its last step; a failure at or after COMMIT keeps it.
    async with Booking(admission) as booking:
        async with booker.transaction() as tx:
            if admission is not None:
                await admission.claim(tx.conn)  # AdmissionReleased: the orphan sweep gave it back, do not freeze
            record = await freeze_payout(tx, row, now)
            body = msgspec.json.encode(payout_view(record))
            if slot is not None:  # the response commits with the freeze: a retry replays it, never freezes twice
                await save_idempotent_response(tx.conn, slot.merchant_id, slot.key, 201, body)
            booking.reached_last_step()
    return Outcome(201, body, slot is not None)


async def read_payout(ctx: Services, merchant: MerchantRecord, payout_id: str) -> bytes:
    async with ctx.pool.acquire() as conn:
        record = await get_payout(conn, merchant.id, payout_id)
    if record is None:
        raise NotFound("payout", payout_id)
    return msgspec.json.encode(payout_view(record))
