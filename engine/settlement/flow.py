"""Settlement run for one closed accounting date: one booking transaction per merchant and currency.

Each transaction creates the batch, claims the due payments and refunds (their ids are primary keys
of settlement_items, so nothing is settled twice) and posts one SETTLE entry for the net (pending
settlement → available). A run killed anywhere leaves whole batches or none; the rerun settles what
is still due. A (merchant, currency, date) that has its batch is skipped, so rerunning a date
changes nothing; payments that became due later (a resolved exception) go into the next date's batch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import asyncpg

from accounts.model import AccountId, AccountKind, OverdraftRule
from accounts.rules import build_entry
from engine.booking import Booker
from engine.dayend.store import get_day_end
from engine.errors import Conflicting, DomainError
from engine.keys import ACCOUNT, SETTLEMENT_BATCH, new_id
from engine.merchants.store import cycle_of, ensure_account, get_merchant
from engine.settlement import store

log = logging.getLogger(__name__)

Progress = Callable[[str, dict[str, Any]], None]


class SettlementError(DomainError):
    code = "settlement_error"


class DayNotClosed(SettlementError, Conflicting):
    code = "day_not_closed"

    def __init__(self, day: date) -> None:
        super().__init__(f"accounting date {day} is not closed; run day-end first")
        self.day = day


class SettlementRunning(SettlementError, Conflicting):
    code = "settlement_running"

    def __init__(self, day: date) -> None:
        super().__init__(f"a settlement run for {day} is in progress; wait for it")
        self.day = day


# Two-int advisory key namespace "sett"; held by one connection for the whole run.
_LOCK_NAMESPACE = 0x73657474


@dataclass(frozen=True, slots=True)
class SettlementResult:
    settle_date: date
    batches: list[store.Batch]
    created: int  # batches made by this call
    carried: list[str] = field(default_factory=list)  # merchants whose refunds exceed payments due

    def to_dict(self) -> dict[str, Any]:
        return {"settle_date": self.settle_date.isoformat(), "created": self.created, "carried": self.carried,
                "net_total": sum(b.net for b in self.batches), "batches": [b.to_dict() for b in self.batches]}


UNSETTLED_GROUPS_MAX = 10  # what a run that made no batch lists of the payments still waiting


async def unsettled(pool: asyncpg.Pool, merchant_id: str | None) -> list[store.Unsettled]:
    """The earliest-due groups of succeeded payments not settled yet (at most UNSETTLED_GROUPS_MAX)."""
    async with pool.acquire() as conn:
        return await store.unsettled(conn, merchant_id, UNSETTLED_GROUPS_MAX)


def nothing_due_notes(settle_date: date, groups: list[store.Unsettled], earlier_batches: int = 0) -> list[str]:
    """Why a settle run of ``settle_date`` made no batch, and when the payments still waiting will be due: a
    payment booked on accounting date A is due on A + its merchant's cycle (D+N, default D+1), and is settled by
    the settle run of that date, which needs that date closed (day-end); a channel payment also needs its
    channel's statement of A reconciled. ``earlier_batches``: batches of ``settle_date`` made by earlier runs."""
    head = (f"nothing new due on {settle_date} (its {earlier_batches} batches were made by an earlier run)"
            if earlier_batches else f"nothing due on {settle_date}")
    if not groups:
        return [f"{head}: no succeeded payment is waiting for settlement"]
    notes = [f"{head}: a payment booked on accounting date A is settled on A + its merchant's cycle (D+N, default"
             " D+1), by `payengine settle --date` of that date once day-end has closed it"]
    for g in groups:
        what = (f"{g.payments} {g.channel or 'wallet'} payment{'' if g.payments == 1 else 's'} of {g.merchant_id}"
                f" ({g.currency}, D+{g.cycle_days}) booked {g.booked_on}")
        if g.due_on > settle_date:
            notes.append(f"{what}: due on {g.due_on}; run `payengine settle --date {g.due_on}` after day-end has"
                         f" closed {g.due_on}")
        elif not g.reconciled:
            notes.append(f"{what}: due, waiting for reconciliation; run `payengine reconcile --channel {g.channel}"
                         f" --date {g.booked_on}`, then settle {settle_date} again (if it ran: an open difference"
                         f" holds them back, see `payengine settlement held --merchant {g.merchant_id}`)")
        else:
            notes.append(f"{what}: due, held for the next date's batch (a batch for {settle_date} was made before it"
                         " was due, or the merchant's refunds due exceed its payments)")
    if len(groups) >= UNSETTLED_GROUPS_MAX:
        notes.append(f"(the {UNSETTLED_GROUPS_MAX} earliest-due groups only)")
    return notes


def _quiet(event: str, data: dict[str, Any]) -> None:
    log.info("settlement %s", event, extra=data)


async def _pause_if_asked(pause_at: str, where: str, progress: Progress) -> None:
    if pause_at == where:
        progress("paused", {"at": where})
        await asyncio.Event().wait()  # until the crash test kills the process


async def settle(pool: asyncpg.Pool, booker: Booker, settle_date: date, next_txn_no: Callable[[], str],
                 accounting_date: Callable[[], date], merchant_id: str | None = None, pause_at: str = "",
                 progress: Progress = _quiet) -> SettlementResult:
    """Settle everything due on ``settle_date`` (a closed accounting date).

    Raises DayNotClosed, or SettlementRunning while another run for the same date holds its lock."""
    async with pool.acquire() as lock_conn:
        key = settle_date.isoformat()
        if not await lock_conn.fetchval("SELECT pg_try_advisory_lock($1, hashtext($2))", _LOCK_NAMESPACE, key):
            raise SettlementRunning(settle_date)
        try:
            return await _settle_locked(pool, booker, settle_date, next_txn_no, accounting_date, merchant_id,
                                        pause_at, progress)
        finally:
            await lock_conn.execute("SELECT pg_advisory_unlock($1, hashtext($2))", _LOCK_NAMESPACE, key)


async def _settle_locked(pool: asyncpg.Pool, booker: Booker, settle_date: date, next_txn_no: Callable[[], str],
                         accounting_date: Callable[[], date], merchant_id: str | None, pause_at: str,
                         progress: Progress) -> SettlementResult:
    async with pool.acquire() as conn:
        closed = await get_day_end(conn, settle_date)
        if closed is None or closed.status != "done":
            raise DayNotClosed(settle_date)
        groups = await store.due_groups(conn, settle_date, merchant_id)
    created = 0
    carried: list[str] = []
    for index, (merchant, currency) in enumerate(groups):
        if index == 1:
            await _pause_if_asked(pause_at, "settle.between", progress)
        try:
            batch = await _settle_one(booker, settle_date, merchant, currency, next_txn_no, accounting_date,
                                      pause_at, progress)
        except store.NegativeNet as exc:
            carried.append(merchant)
            log.warning("settlement carried forward", extra={"merchant_id": merchant, "net": exc.net})
            continue
        if batch is not None:
            created += 1
            progress("batch", {"merchant_id": merchant, "currency": currency, "net": batch.net})
    async with pool.acquire() as conn:
        batches = await store.batches_of(conn, settle_date, merchant_id)
    return SettlementResult(settle_date, batches, created, carried)


async def _settle_one(booker: Booker, settle_date: date, merchant_id: str, currency: str,
                      next_txn_no: Callable[[], str], accounting_date: Callable[[], date], pause_at: str,
                      progress: Progress) -> store.Batch | None:
    async with booker.transaction() as tx:
        conn = tx.conn
        if await store.get_batch(conn, merchant_id, currency, settle_date) is not None:
            return None
        cycle = await cycle_of(conn, merchant_id)
        batch = await store.claim_due(conn, new_id(SETTLEMENT_BATCH), merchant_id, currency, settle_date,
                                      settle_date - timedelta(days=cycle))
        await _pause_if_asked(pause_at, "settle.uncommitted", progress)
        if batch.net > 0:
            merchant = await get_merchant(conn, merchant_id)
            assert merchant is not None and currency in merchant.pending_accounts, (merchant_id, currency)
            available = await ensure_account(conn, merchant_id, "merchant_available", currency, AccountKind.MERCHANT,
                                             False, OverdraftRule(), new_id(ACCOUNT))
            txn_no = next_txn_no()
            await tx.post(build_entry(
                "SETTLE", txn_no, accounting_date(), currency,
                {"merchant_pending": AccountId(merchant.pending_accounts[currency]), "merchant_available": available},
                {"amount": batch.net}, ref=batch.id))
            await store.set_batch_txn(conn, batch.id, txn_no)
    return batch
