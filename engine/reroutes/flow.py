"""Resolving a refund the channel finally refused: to the customer's wallet, to a bank payout, or by hand.

What the failed refund left behind decides the money: the channel refund books REFUND_CHANNEL only on success,
and its failure gave the reservation on the payment back (gateway/store.finish_refund). So the refund's money is
still where the payment put it: the net in the merchant's pending account, the fee share in fee income. A re-route
takes it from exactly there, as the refund would have:

- wallet: REFUND_WALLET (or its _INVOICED twin) credits the customer's wallet: merchant pending (net) and fee
  income (fee share) -> the wallet. Counted as refunded on the payment again.
- bank: REFUND_TO_BANK moves the same amounts to the merchant's refunds-owed account (owed to the customer), and a
  payout from that account to the given destination is made by the payouts domain (payouts/flow.freeze_payout:
  PAYOUT_FREEZE owed -> the merchant's frozen account); its worker sends it and settles it against the channel
  receivable, so in the end the ledger moved what REFUND_CHANNEL would have. A payout that fails gives the money
  back to refunds-owed, still owed to the customer. Counted as refunded on the payment again.
- manual: no money moves, and it is not counted as refunded: the payment's refunded total stays the sum of the
  refunds whose money left the merchant. Whoever pays the customer by hand books that through the exception desk.

An exception's auto-refund (a payment paid after we had closed it: PAY_CHANNEL credited the late money, without a
fee, to the merchant's pending account) that the channel refused is resolved the same way, with a fee share of 0
(reroute_auto_refund); its exception is resolved with it, and the merchant, who never saw that refund, gets no
event.

Each is one transaction: the compare-and-set failed -> rerouted | manual (of two concurrent re-routes one wins,
the other is refused 409 and writes nothing), the payment's refunded total, the entry (booked once: the refund's
own transaction number), the payout, the merchant's webhook event (refund.rerouted | refund.manual) and the
audit row.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import msgspec

from accounts.model import AccountId, AccountKind, OverdraftRule
from accounts.rules import build_entry
from engine.audit.store import record
from engine.booking import Booker, BookingTransaction
from engine.errors import IllegalTransition, InvalidRequest, NotFound
from engine.keys import ACCOUNT, PAYOUT, new_id
from engine.merchants.pricing import DEDUCTED, fee_txn_code
from engine.merchants.store import ensure_account, get_merchant, refund_source_accounts
from engine.payments.states import (
    REFUND_OUTCOME_EVENTS,
    REROUTE_EVENTS,
    next_auto_refund_status,
    next_refund_status,
)
from engine.payments.store import get_refund
from engine.payments.views import refund_view
from engine.payouts.destination import Destination, check_destination, mask_digits
from engine.payouts.flow import freeze_payout, open_frozen_account, payout_channel
from engine.payouts.store import NewPayout
from engine.reroutes.errors import NoCustomerWallet, RefundRoomTaken
from engine.reroutes.metrics import REFUNDS_REROUTED
from engine.reroutes.store import (
    Resolution,
    auto_refund_facts,
    failed_refunds,
    refund_facts,
    resolve_auto_refund,
    resolve_refund,
)
from engine.reroutes.views import admin_refund_view, auto_refund_view
from engine.reroutes.wire import AdminRefund, AdminRefundList, AutoRefund, RerouteRefund
from engine.settings import Settings
from engine.txn_no import TxnNoGenerator
from engine.webhooks.store import insert_outbox

log = logging.getLogger(__name__)

REFUNDS_OWED_ROLE = "merchant_refunds_owed"
FROZEN_ROLE = "merchant_frozen"


@dataclass(frozen=True)
class RerouteBooks:
    """What a re-route needs of its process (the admin API's Services, or the CLI's own)."""

    settings: Settings
    known_channels: frozenset[str]
    pool: asyncpg.Pool
    booker: Booker
    txn_nos: TxnNoGenerator
    platform_accounts: Callable[[str], Awaitable[dict[str, AccountId]]]


@dataclass(frozen=True, slots=True)
class RefundMoney:
    """What a re-route moves, whichever refund it is: the money leaves the merchant's pending account (the net) and
    fee income (the fee share it gave back) as the channel refund would have taken it."""

    subject_id: str  # the refund's id, or the exception's: the entries' ref
    merchant_id: str
    payment_id: str
    currency: str
    amount: int
    fee: int
    fee_collection: str
    txn_no: str  # the refund's own number, never booked while it failed
    customer_id: str | None
    wallet_account_id: AccountId | None


@dataclass(frozen=True, slots=True)
class _BankPayout:
    destination: Destination
    channel: str
    channel_chosen: bool
    owed: AccountId
    frozen: AccountId


async def list_failed(conn: asyncpg.Connection, merchant_id: str | None, starting_after: str | None,
                      limit: int) -> AdminRefundList:
    rows = await failed_refunds(conn, merchant_id, starting_after, limit + 1)
    return AdminRefundList([admin_refund_view(f) for f in rows[:limit]], len(rows) > limit)


async def show(conn: asyncpg.Connection, refund_id: str) -> AdminRefund:
    facts = await refund_facts(conn, refund_id)
    if facts is None:
        raise NotFound("refund", refund_id)
    return admin_refund_view(facts)


async def show_auto_refund(conn: asyncpg.Connection, exception_id: str) -> AutoRefund:
    facts = await auto_refund_facts(conn, exception_id)
    if facts is None:
        raise NotFound("exception with an auto-refund", exception_id)
    return auto_refund_view(facts)


async def _bank_payout(books: RerouteBooks, money: RefundMoney, req: RerouteRefund) -> _BankPayout:
    if req.destination is None:
        raise InvalidRequest("destination", "a bank re-route names the destination (kind, number, holder_name)")
    d = req.destination
    destination = check_destination(d.kind, d.number, d.holder_name, d.bank_code)
    async with books.pool.acquire() as conn:
        merchant = await get_merchant(conn, money.merchant_id)
        assert merchant is not None, f"refund {money.subject_id} of an unknown merchant"
        channel, chosen = payout_channel(books.settings, books.known_channels, merchant, req.channel)
        # Opened committed before the booking transaction, as payouts/flow.py does for the frozen account.
        owed = await ensure_account(conn, money.merchant_id, REFUNDS_OWED_ROLE, money.currency, AccountKind.MERCHANT,
                                    False, OverdraftRule(), new_id(ACCOUNT))
        frozen = await open_frozen_account(conn, money.merchant_id, FROZEN_ROLE, money.currency,
                                           AccountKind.MERCHANT)
    return _BankPayout(destination, channel, chosen, owed, frozen)


def _check_request(money: RefundMoney, req: RerouteRefund) -> None:
    if req.to != "bank" and (req.destination is not None or req.channel is not None):
        raise InvalidRequest("destination", "destination and channel are for a bank re-route only")
    if req.to == "wallet" and money.wallet_account_id is None:
        raise NoCustomerWallet(money.subject_id, money.customer_id)


async def _refund_accounts(tx: BookingTransaction, books: RerouteBooks, money: RefundMoney,
                           credited_role: str, credited: AccountId) -> dict[str, AccountId]:
    """The accounts the refund's money leaves (as REFUND_CHANNEL would take it) and the one it goes to."""
    platform = await books.platform_accounts(money.currency)
    return {**await refund_source_accounts(tx.conn, money.merchant_id, money.currency, money.fee_collection),
            "fee_income": platform["fee_income"], credited_role: credited}


async def _book(tx: BookingTransaction, books: RerouteBooks, money: RefundMoney, bank: _BankPayout | None,
                payout_id: str | None, now: datetime) -> None:
    amounts = {"amount": money.amount, "fee": money.fee}
    if bank is None:
        assert money.wallet_account_id is not None
        accounts = await _refund_accounts(tx, books, money, "customer_wallet", money.wallet_account_id)
        await tx.post(build_entry(fee_txn_code("REFUND_WALLET", money.fee_collection), money.txn_no, now.date(),
                                  money.currency, accounts, amounts, ref=money.subject_id))
        return
    assert payout_id is not None
    accounts = await _refund_accounts(tx, books, money, REFUNDS_OWED_ROLE, bank.owed)
    await tx.post(build_entry(fee_txn_code("REFUND_TO_BANK", money.fee_collection), money.txn_no, now.date(),
                              money.currency, accounts, amounts, ref=money.subject_id))
    d = bank.destination
    await freeze_payout(tx, NewPayout(
        payout_id, money.merchant_id, f"refund-{money.subject_id}", "merchant", None, bank.owed, bank.frozen,
        money.amount, money.currency, bank.channel, d.kind, d.number, d.holder_name, d.bank_code,
        f"refund {money.subject_id} refused by the channel, re-routed to the bank", bank.channel_chosen,
        books.txn_nos.next(now), None, now), now)


@dataclass(frozen=True, slots=True)
class _Plan:
    bank: _BankPayout | None
    resolution: Resolution


async def _plan(books: RerouteBooks, money: RefundMoney, req: RerouteRefund, status: str) -> _Plan:
    """Everything decided before the transaction: the request's checks, the payout's channel and accounts."""
    _check_request(money, req)
    bank = await _bank_payout(books, money, req) if req.to == "bank" else None
    note = mask_digits(req.reason.strip())  # a card number typed into the note stays out of the trail
    return _Plan(bank, Resolution(status, req.to, REROUTE_EVENTS[req.to].value,
                                  new_id(PAYOUT) if bank is not None else None, req.operator, note,
                                  counts_as_refunded=req.to != "manual"))


async def _finish(tx: BookingTransaction, books: RerouteBooks, money: RefundMoney, plan: _Plan, subject_kind: str,
                  now: datetime) -> None:
    """The money (none for manual) and the audit row, in the re-route's transaction after its compare-and-set."""
    res = plan.resolution
    if res.rerouted_to != "manual":
        await _book(tx, books, money, plan.bank, res.payout_id, now)
    await record(tx.conn, res.operator, f"refund.reroute.{res.rerouted_to}", subject_kind, money.subject_id,
                 {"reason": res.note, "amount": money.amount, "currency": money.currency,
                  "payment_id": money.payment_id, "payout_id": res.payout_id,
                  "destination": plan.bank.destination.masked if plan.bank else None})


def _logged(money: RefundMoney, res: Resolution) -> None:
    REFUNDS_REROUTED.labels(res.rerouted_to).inc()
    log.info("failed refund resolved by an operator",
             extra={"subject_id": money.subject_id, "merchant_id": money.merchant_id, "to": res.rerouted_to,
                    "operator": res.operator, "amount": money.amount, "currency": money.currency,
                    "payout_id": res.payout_id})


async def reroute(books: RerouteBooks, refund_id: str, req: RerouteRefund, now: datetime) -> AdminRefund:
    """Resolve a merchant's failed refund as ``req.to`` says (module docstring). Raises NotFound (404),
    InvalidRequest (400), NoCustomerWallet or InvalidDestination (422), IllegalTransition (409: not failed, or
    another re-route won) and RefundRoomTaken (409); nothing is written then."""
    async with books.pool.acquire() as conn:
        facts = await refund_facts(conn, refund_id)
    if facts is None:
        raise NotFound("refund", refund_id)
    status = next_refund_status(facts.status, REROUTE_EVENTS[req.to])
    money = RefundMoney(facts.id, facts.merchant_id, facts.payment_id, facts.currency, facts.amount,
                        facts.fee_refunded, facts.fee_collection, facts.txn_no, facts.customer_id,
                        facts.wallet_account_id)
    plan = await _plan(books, money, req, status.value)
    async with books.booker.transaction() as tx:
        moved, counted = await resolve_refund(tx.conn, facts.id, plan.resolution, now)
        if not moved:  # another re-route won meanwhile: the refund is failed no more
            async with books.pool.acquire() as conn:
                current = await refund_facts(conn, facts.id)
            raise IllegalTransition("refund", current.status if current else "gone", REROUTE_EVENTS[req.to].value)
        if plan.resolution.counts_as_refunded and not counted:
            raise RefundRoomTaken(facts.id, facts.payment_id)
        await _finish(tx, books, money, plan, "refund", now)
        merchant_record = await get_refund(tx.conn, facts.merchant_id, facts.id)
        assert merchant_record is not None
        await insert_outbox(tx.conn, facts.merchant_id, REFUND_OUTCOME_EVENTS[status], facts.id,
                            msgspec.json.encode(refund_view(merchant_record)), now)
    _logged(money, plan.resolution)
    async with books.pool.acquire() as conn:
        return await show(conn, facts.id)


async def reroute_auto_refund(books: RerouteBooks, exception_id: str, req: RerouteRefund,
                              now: datetime) -> AutoRefund:
    """Resolve an exception's failed auto-refund (money a channel collected for a payment we had closed: PAY_CHANNEL
    credited it, without fee, to the merchant's pending account) as ``req.to`` says, and resolve the exception.
    The merchant never saw this refund: no webhook. Refusals as for ``reroute``."""
    async with books.pool.acquire() as conn:
        facts = await auto_refund_facts(conn, exception_id)
    if facts is None:
        raise NotFound("exception with an auto-refund", exception_id)
    status = next_auto_refund_status(facts.refund_status, REROUTE_EVENTS[req.to])
    money = RefundMoney(facts.id, facts.merchant_id, facts.payment_id, facts.currency, facts.amount, 0, DEDUCTED,
                        facts.refund_txn_no, facts.customer_id, facts.wallet_account_id)
    plan = await _plan(books, money, req, status.value)
    async with books.booker.transaction() as tx:
        if not await resolve_auto_refund(tx.conn, facts.id, plan.resolution, now):
            async with books.pool.acquire() as conn:
                current = await auto_refund_facts(conn, facts.id)
            raise IllegalTransition("auto-refund", current.refund_status if current else "gone",
                                    REROUTE_EVENTS[req.to].value)
        await _finish(tx, books, money, plan, "exception", now)
    _logged(money, plan.resolution)
    async with books.pool.acquire() as conn:
        return await show_auto_refund(conn, facts.id)
