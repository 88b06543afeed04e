"""The desk's decisions: check a proposal before anything is written, record it, and book it only when a second
operator approves.

Approval is one booking transaction (engine/booking.py, the path every entry takes: split-aware, hot legs
reserved in the buffer and enqueued after commit, the day-end fence taken by the entry's trigger): the
compare-and-set of the proposal to ``approved`` with the entry's transaction number, the entry, for a reversal
the link to its original (unique per original), the reconciliation difference it resolves, and the audit row.
Any refusal on the way (insufficient funds, a closed account, a second approval) rolls all of it back and
leaves the proposal as it was. The entry's ``ref`` is the proposal id, so statements lead back to it.

Expiry: every API process expires what is overdue every PAYENGINE_DESK_EXPIRY_INTERVAL_S (``expiry_loop``), and
so does every desk action before it acts (reopening the differences those proposals would have resolved); an
approval's compare-and-set refuses an expired proposal even if neither has run yet.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from accounts.errors import AccountClosed
from accounts.journal import EntryDraft, mirror_entry
from accounts.model import AccountId, Side
from accounts.rules import build_entry
from accounts.store import Conn, get_accounts
from engine.amounts import check_amount
from engine.audit.store import record as audit
from engine.desk import store
from engine.desk.codes import CODES
from engine.desk.errors import (
    AccountCurrencyMismatch,
    AccountRoleMismatch,
    AccountRolesInvalid,
    DifferenceNotResolving,
    EntryAlreadyReversed,
    EntryIsReversal,
    EntryMixesCurrencies,
    EntryNotApplied,
    FourEyesRequired,
    ProposalNotOpen,
    UnknownAdjustmentCode,
)
from engine.desk.states import SYSTEM_OPERATOR, ProposalKind, ProposalStatus
from engine.desk.store import OriginalEntry, ProposalRecord
from engine.desk.wire import Decide, ProposeAdjustment, ProposeReversal
from engine.errors import NotFound, UnsupportedCurrency
from engine.keys import ACCOUNT, ADJUSTMENT, REVERSAL, new_id
from engine.services import Services

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- proposing

async def prepare_adjustment(ctx: Services, req: ProposeAdjustment, now: datetime,
                             recon_item_id: int | None = None) -> ProposalRecord:
    """Check an adjustment against the code table and the accounts it names; writes nothing (the platform's
    own accounts in the currency are opened if missing). Raises UnknownAdjustmentCode, UnsupportedCurrency,
    AmountTooLarge, AccountRolesInvalid, NotFound (an account), AccountRoleMismatch, AccountCurrencyMismatch,
    AccountClosed."""
    code = CODES.get(req.code)
    if code is None:
        raise UnknownAdjustmentCode(req.code, CODES)
    if req.currency not in ctx.settings.currencies:
        raise UnsupportedCurrency(req.currency)
    check_amount(ctx.settings, req.currency, req.amount)
    if set(req.accounts) != code.named_roles:
        raise AccountRolesInvalid(code.code, code.named_roles, req.accounts)
    async with ctx.pool.acquire() as conn:
        found = await get_accounts(conn, list(req.accounts.values()))
        for role, account_id in req.accounts.items():
            account = found.get(AccountId(account_id))
            if account is None:
                raise NotFound("account", account_id, f"accounts.{role}")
            if account.role != role or account.parent_id is not None:
                raise AccountRoleMismatch(account_id, account.role, role)
            if account.currency.strip() != req.currency:
                raise AccountCurrencyMismatch(account_id, account.currency.strip(), req.currency, f"accounts.{role}")
            if account.status != "open":
                raise AccountClosed(account_id)
        platform = dict(await ctx.platform_accounts(req.currency))
        platform.update(await store.loss_and_suspense(conn, req.currency, lambda: new_id(ACCOUNT)))
    accounts = {**{role: str(platform[role]) for role in code.platform_roles}, **req.accounts}
    return ProposalRecord(new_id(ADJUSTMENT), ProposalKind.ADJUSTMENT, ProposalStatus.PROPOSED, code.code,
                          req.currency, req.amount, accounts, None, req.reason, req.evidence, req.operator, now,
                          _expiry(ctx, now), recon_item_id=recon_item_id)


async def prepare_reversal(ctx: Services, req: ProposeReversal, now: datetime,
                           recon_item_id: int | None = None) -> ProposalRecord:
    """Check that the entry can be reversed; writes nothing. Raises NotFound, EntryIsReversal, EntryNotApplied,
    EntryAlreadyReversed, EntryMixesCurrencies."""
    async with ctx.pool.acquire() as conn:
        original = await reversible_entry(conn, req.txn_no)
    if req.accounting_date is not None and req.accounting_date != original.accounting_date:
        raise NotFound("journal entry", f"{req.txn_no} on {req.accounting_date}", "accounting_date")
    currencies = {leg.currency for leg in original.legs}
    if len(currencies) != 1:
        raise EntryMixesCurrencies(req.txn_no)
    amount = sum(leg.amount_minor for leg in original.legs if leg.side is Side.DEBIT)
    return ProposalRecord(new_id(REVERSAL), ProposalKind.REVERSAL, ProposalStatus.PROPOSED, original.txn_code,
                          currencies.pop(), amount, {}, req.txn_no, req.reason, req.evidence, req.operator, now,
                          _expiry(ctx, now), recon_item_id=recon_item_id)


async def reversible_entry(conn: Conn, txn_no: str) -> OriginalEntry:
    """The entry, when a reversal of it may be booked now."""
    original = await store.original_entry(conn, txn_no)
    if original is None:
        raise NotFound("journal entry", txn_no, "txn_no")
    if original.is_reversal:
        raise EntryIsReversal(txn_no)
    if original.reversed_by is not None:
        raise EntryAlreadyReversed(txn_no, original.reversed_by)
    if original.buffered_legs:
        raise EntryNotApplied(txn_no)
    return original


def _expiry(ctx: Services, now: datetime) -> datetime:
    return now + timedelta(seconds=ctx.settings.desk_proposal_ttl_s)


async def record_proposal(conn: Conn, p: ProposalRecord) -> None:
    """Insert the proposal and its audit row, in the caller's transaction."""
    await store.insert_proposal(conn, p)
    await audit(conn, p.proposed_by, "propose", p.kind, p.id, _detail(p))


async def propose(ctx: Services, p: ProposalRecord) -> ProposalRecord:
    async with ctx.pool.acquire() as conn, conn.transaction():
        await record_proposal(conn, p)
    return p


def _detail(p: ProposalRecord) -> dict[str, Any]:
    return {"code": p.code, "amount": p.amount, "currency": p.currency, "accounts": p.accounts,
            "original_txn_no": p.original_txn_no, "reason": p.reason, "evidence": p.evidence,
            "recon_item_id": p.recon_item_id, "expires_at": p.expires_at.isoformat()}


# ---------------------------------------------------------------- deciding

async def find(ctx: Services, kind: ProposalKind, proposal_id: str, now: datetime) -> ProposalRecord:
    await expire_due(ctx, now)
    async with ctx.pool.acquire() as conn:
        found = await store.get_proposal(conn, kind, proposal_id)
    if found is None:
        raise NotFound(str(kind), proposal_id)
    return found


async def approve(ctx: Services, kind: ProposalKind, proposal_id: str, req: Decide, now: datetime) -> ProposalRecord:
    """Book the proposal (see the module's docstring). Raises NotFound, FourEyesRequired (403), ProposalNotOpen /
    ProposalExpired (409: decided, or expired: nothing booked), the reversal's refusals, or the ledger's
    (InsufficientFunds 402, AccountClosed 409); then nothing was written."""
    p = await find(ctx, kind, proposal_id, now)
    if p.status is not ProposalStatus.PROPOSED:
        raise ProposalNotOpen(p.id, p.status)
    if p.proposed_by == req.operator:
        raise FourEyesRequired(p.id, req.operator)
    txn_no = ctx.txn_nos.next(now)
    original = None
    if p.kind is ProposalKind.REVERSAL:
        assert p.original_txn_no is not None
        async with ctx.pool.acquire() as conn:
            original = await reversible_entry(conn, p.original_txn_no)
        entry: EntryDraft = mirror_entry(original.legs, txn_no, now.date(), p.id)
    else:
        accounts = {role: AccountId(account_id) for role, account_id in p.accounts.items()}
        entry = build_entry(p.code, txn_no, now.date(), p.currency, accounts, {"amount": p.amount}, ref=p.id)
    async with ctx.booker.transaction() as tx:
        decided = await store.decide(tx.conn, kind, p.id, ProposalStatus.APPROVED, req.operator, req.note, now,
                                     txn_no)
        if original is not None:
            await store.link_reversal(tx.conn, original.txn_no, txn_no, p.id)
        await tx.post(entry)
        if decided.recon_item_id is not None and not await store.close_linked_item(
                tx.conn, decided.recon_item_id, req.operator, now):
            raise DifferenceNotResolving(decided.recon_item_id)
        await audit(tx.conn, req.operator, "approve", kind, p.id, {"txn_no": txn_no, "note": req.note,
                                                                   "recon_item_id": decided.recon_item_id})
    log.info("desk proposal booked", extra={"proposal_id": p.id, "kind": str(kind), "txn_no": txn_no,
                                            "txn_code": entry.txn_code, "operator": req.operator})
    return decided


async def reject(ctx: Services, kind: ProposalKind, proposal_id: str, req: Decide, now: datetime) -> ProposalRecord:
    """Nothing is booked; a difference the proposal would have resolved is open again. Raises as ``approve``
    does for the proposal itself."""
    await expire_due(ctx, now)
    async with ctx.pool.acquire() as conn, conn.transaction():
        decided = await store.decide(conn, kind, proposal_id, ProposalStatus.REJECTED, req.operator, req.note, now)
        if decided.recon_item_id is not None:
            await store.reopen_linked_items(conn, [decided.recon_item_id], now)
        await audit(conn, req.operator, "reject", kind, proposal_id, {"note": req.note,
                                                                     "recon_item_id": decided.recon_item_id})
    return decided


async def expire_due(ctx: Services, now: datetime) -> list[ProposalRecord]:
    """Expire every overdue proposal (nothing booked), reopen their differences, audit each; returns them."""
    return await expire_overdue(ctx.pool, now)


async def expire_overdue(pool: asyncpg.Pool, now: datetime) -> list[ProposalRecord]:
    async with pool.acquire() as conn, conn.transaction():
        expired = await store.expire_overdue(conn, now)
        items = [p.recon_item_id for p in expired if p.recon_item_id is not None]
        if items:
            await store.reopen_linked_items(conn, items, now)
        for p in expired:
            await audit(conn, SYSTEM_OPERATOR, "expire", p.kind, p.id, {"expires_at": p.expires_at.isoformat(),
                                                                       "recon_item_id": p.recon_item_id})
    return expired


async def expiry_loop(pool: asyncpg.Pool, interval_s: int) -> None:
    """Every ``interval_s``: expire what is overdue, so a difference whose proposal nobody decided opens again even
    when nobody uses the desk. Several processes may run it: each proposal expires (and is audited) once."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            expired = await expire_overdue(pool, datetime.now(UTC))
        except (OSError, asyncpg.PostgresError):
            log.warning("expiring desk proposals failed; will retry", exc_info=True)
            continue
        if expired:
            log.info("desk proposals expired", extra={"proposal_ids": [p.id for p in expired]})
