"""Making a payout final: the status change, its ledger entry and its webhook event in one transaction.

Success books PAYOUT_SETTLE (frozen -> channel receivable: the money left through the channel); failure books
PAYOUT_UNFREEZE (frozen -> back to the source). The compare-and-set on the open status makes a second finisher
(a worker whose lease ran out, a concurrent query) book nothing.

The worker finishes payouts on the channel's word; an operator finishes a held one (holds.py) through the same
function, which then matches only the held payout, clears its hold and records the resolution with the booking.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Protocol

import asyncpg
import msgspec

from accounts.model import AccountId
from accounts.rules import build_entry
from engine.booking import Booker
from engine.gateway_store import insert_outbox
from engine.payouts.metrics import PAYOUTS_FINISHED
from engine.payouts.store import PayoutRecord, Resolution, admission_of, finish_payout, record_resolution
from engine.payouts.views import payout_view
from engine.txn_no import TxnNoGenerator

log = logging.getLogger(__name__)

# Gives a failed payout's counted limit usage back, by the gate's admission id (ControlGate.release_admission).
UsageRelease = Callable[[str], Awaitable[object]]


class Books(Protocol):
    """What booking a payout's end needs: the gateway's context has it, and so do the admin API and CLI."""

    @property
    def pool(self) -> asyncpg.Pool: ...

    @property
    def booker(self) -> Booker: ...

    @property
    def txn_nos(self) -> TxnNoGenerator: ...

    async def platform_accounts(self, currency: str) -> dict[str, AccountId]: ...


async def finish(gw: Books, payout: PayoutRecord, succeeded: bool, channel_payout_no: str | None,
                 failure_code: str | None, failure_message: str | None, now: datetime,
                 release_usage: UsageRelease | None = None, resolution: Resolution | None = None) -> bool:
    """True when this call made the payout final (and booked it); False when it was final already, or (with
    `resolution`, a person resolving a held payout) when it is not held. A resolution commits with the booking."""
    receivable = (await gw.platform_accounts(payout.currency))["channel_receivable"] if succeeded else None
    txn_no = gw.txn_nos.next(now)
    async with gw.booker.transaction() as tx:
        done = await finish_payout(tx.conn, payout.id, "succeeded" if succeeded else "failed", txn_no,
                                   channel_payout_no, None if succeeded else failure_code,
                                   None if succeeded else failure_message, now, held=resolution is not None)
        if done is None:
            return False
        if resolution is not None:
            await record_resolution(tx.conn, payout, done, resolution, now)
        if succeeded:
            assert receivable is not None
            entry = build_entry("PAYOUT_SETTLE", txn_no, now.date(), payout.currency,
                                {"frozen": payout.frozen_account_id, "channel_receivable": receivable},
                                {"amount": payout.amount}, ref=payout.id)
        else:
            entry = build_entry("PAYOUT_UNFREEZE", txn_no, now.date(), payout.currency,
                                {"frozen": payout.frozen_account_id, "source": payout.source_account_id},
                                {"amount": payout.amount}, ref=payout.id)
        await tx.post(entry)
        await insert_outbox(tx.conn, payout.merchant_id, "payout.succeeded" if succeeded else "payout.failed",
                            payout.id, msgspec.json.encode(payout_view(done)), now)
    PAYOUTS_FINISHED.labels("succeeded" if succeeded else "failed").inc()
    log.info("payout finished", extra={"payout_id": payout.id, "succeeded": succeeded, "failure": failure_code})
    if not succeeded and release_usage is not None:
        await _release(gw, payout.id, release_usage)
    return True


async def _release(gw: Books, payout_id: str, release_usage: UsageRelease) -> None:
    """After the unfreeze committed: a failed payout no longer counts against limits. Failing here (Redis down)
    leaves the usage counted, which can refuse too much but never lets a limit pass."""
    try:
        async with gw.pool.acquire() as conn:
            admission = await admission_of(conn, payout_id)
        if admission is not None:
            await release_usage(admission)
    except Exception:
        log.warning("giving a failed payout's limit usage back failed", extra={"payout_id": payout_id},
                    exc_info=True)
