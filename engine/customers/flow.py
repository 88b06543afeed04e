"""Customers (with a wallet account), topups, and the merchant's own accounts and statements."""

from __future__ import annotations

from datetime import datetime

import msgspec

from accounts.model import Account
from accounts.rules import build_entry
from accounts.store import Conn, accounts_of_owner, get_account, pending_net
from engine.amounts import check_amount
from engine.booking import Booker
from engine.customers import wire as customer_wire
from engine.customers.store import StatementRow, get_customer, insert_customer, insert_topup, statement_rows
from engine.errors import InvalidRequest, NotFound, UnsupportedCurrency
from engine.idempotency.records import IdemSlot, Outcome
from engine.keys import ACCOUNT, CUSTOMER, TOPUP, new_id
from engine.merchants.store import MerchantRecord
from engine.services import Services


async def create_customer(ctx: Services, merchant: MerchantRecord, req: customer_wire.CreateCustomer,
                          slot: IdemSlot | None, now: datetime) -> Outcome:
    if req.currency not in ctx.settings.currencies:
        raise UnsupportedCurrency(req.currency)
    async with ctx.pool.acquire() as conn, conn.transaction():
        c = await insert_customer(conn, new_id(CUSTOMER), merchant.id, req.external_id, req.currency,
                                  new_id(ACCOUNT), now)
    view = customer_wire.Customer(c.id, c.external_id, c.currency, c.wallet_account_id, c.balance_minor, c.created_at)
    return Outcome(201, msgspec.json.encode(view), False)


async def get_customer_view(ctx: Services, merchant: MerchantRecord, customer_id: str) -> customer_wire.Customer:
    async with ctx.pool.acquire() as conn:
        c = await get_customer(conn, merchant.id, customer_id)
    if c is None:
        raise NotFound("customer", customer_id)
    return customer_wire.Customer(c.id, c.external_id, c.currency, c.wallet_account_id, c.balance_minor, c.created_at,
                         c.frozen_minor)


async def create_topup(ctx: Services, booker: Booker, merchant: MerchantRecord, customer_id: str,
                       req: customer_wire.CreateTopup, slot: IdemSlot | None, now: datetime) -> Outcome:
    """Credit the wallet from the platform's channel receivable (TOPUP), in one transaction."""
    async with ctx.pool.acquire() as conn:
        customer = await get_customer(conn, merchant.id, customer_id)
    if customer is None:
        raise NotFound("customer", customer_id)
    check_amount(ctx.settings, customer.currency, req.amount)
    platform = await ctx.platform_accounts(customer.currency)
    txn_no = ctx.txn_nos.next(now)
    topup_id = new_id(TOPUP)
    async with booker.transaction() as tx:
        await insert_topup(tx.conn, topup_id, customer.id, req.topup_no, req.amount, txn_no, now)
        posted = await tx.post(build_entry(
            "TOPUP", txn_no, now.date(), customer.currency,
            {"channel_receivable": platform["channel_receivable"], "customer_wallet": customer.wallet_account_id},
            {"amount": req.amount}, ref=topup_id))
    balance = next(leg.balance_after for leg in posted.legs if leg.account_id == customer.wallet_account_id)
    view = customer_wire.Topup(topup_id, customer.id, req.topup_no, req.amount, txn_no, balance or 0, now)
    return Outcome(201, msgspec.json.encode(view), False)


# The merchant's accounts it can draw from (payouts and cashback take their source here; see payouts/flow.py and
# transfers/): only these show an `available` figure.
DRAWABLE_ROLES = frozenset({"merchant_available"})


async def _account_view(conn: Conn, parent: Account, subs: list[Account]) -> customer_wire.Account:
    """Call inside the snapshot the accounts were read in: a flush moves a leg from pending into the
    balance in one transaction, so balance and pending read in different snapshots could miss or
    double-count it."""
    pending_of = {a.id: (await pending_net(conn, a.id) if a.hot else 0) for a in (parent, *subs)}
    balance = parent.balance_minor + sum(s.balance_minor for s in subs)
    pending = sum(pending_of.values())
    frozen = parent.frozen_minor + sum(s.frozen_minor for s in subs)
    available = balance - frozen if parent.role in DRAWABLE_ROLES else None
    return customer_wire.Account(
        parent.id, parent.role, parent.currency, parent.hot, balance, pending, balance + pending, available,
        [customer_wire.SubAccount(s.id, s.sub_index or 0, s.balance_minor, pending_of[s.id]) for s in subs])


async def list_accounts(ctx: Services, merchant: MerchantRecord) -> customer_wire.AccountList:
    async with ctx.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        owned = await accounts_of_owner(conn, merchant.id)
        return customer_wire.AccountList([await _account_view(conn, p, [a for a in owned if a.parent_id == p.id])
                                 for p in owned if p.parent_id is None])


def _owned(account: Account | None, merchant: MerchantRecord, account_id: str) -> Account:
    """The merchant's own top-level account, or NotFound (another owner's account is not revealed)."""
    if account is None or account.owner_id != merchant.id or account.parent_id is not None:
        raise NotFound("account", account_id)
    return account


async def _own_account(ctx: Services, merchant: MerchantRecord, account_id: str) -> Account:
    async with ctx.pool.acquire() as conn:
        return _owned(await get_account(conn, account_id), merchant, account_id)


async def get_account_view(ctx: Services, merchant: MerchantRecord, account_id: str) -> customer_wire.Account:
    async with ctx.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        account = _owned(await get_account(conn, account_id), merchant, account_id)
        subs = [a for a in await accounts_of_owner(conn, merchant.id) if a.parent_id == account.id]
        return await _account_view(conn, account, subs)


def _line(s: StatementRow) -> customer_wire.StatementLine:
    net = None if s.gross_minor is None or s.fee_minor is None else s.gross_minor - s.fee_minor
    return customer_wire.StatementLine(
        s.seq, s.txn_no, s.txn_code, "D" if s.side == "D" else "C", s.amount_minor, s.delta, s.balance_after,
        s.accounting_date.isoformat(), s.applied_at, s.ref, s.payment_id, s.refund_id, s.merchant_order_no,
        s.merchant_refund_no, s.gross_minor, s.fee_minor, net)


async def read_statement(conn: Conn, account_id: str, q: customer_wire.StatementQuery) -> customer_wire.Statement:
    """One page of an account's statement (any owner's: the caller checked who may read it). InvalidRequest (400)
    for a ``from`` date after the ``to`` date."""
    if q.from_date is not None and q.to_date is not None and q.from_date > q.to_date:
        raise InvalidRequest("from", f"from {q.from_date} is after to {q.to_date}")
    lines = await statement_rows(conn, account_id, q.limit + 1, q.starting_after, q.from_date, q.to_date)
    return customer_wire.Statement(account_id, [_line(s) for s in lines[: q.limit]], len(lines) > q.limit)


async def account_statement(ctx: Services, merchant: MerchantRecord, account_id: str,
                            q: customer_wire.StatementQuery) -> customer_wire.Statement:
    await _own_account(ctx, merchant, account_id)
    async with ctx.pool.acquire() as conn:
        return await read_statement(conn, account_id, q)
