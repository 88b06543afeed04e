"""Making a payout final: the status change, its ledger entry and its webhook event in one transaction.

Success books PAYOUT_SETTLE (frozen -> channel receivable: the money left through the channel); failure books
PAYOUT_UNFREEZE (frozen -> back to the source). The compare-and-set on the open status makes a second finisher
(a worker whose lease ran out, a concurrent query) book nothing.

The worker finishes payouts on the channel's word; an operator finishes a held one (holds.py) through the same
function, which then matches only the held payout, clears its hold and records the resolution with the booking.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Protocol

import asyncpg
import msgspec

from accounts.model import AccountId
from accounts.rules import build_entry
from engine.booking import Booker
from engine.controls.usage_release import ReleaseAdmission, release_now
from engine.payouts.metrics import PAYOUTS_FINISHED
from engine.payouts.store import PayoutRecord, Resolution, finish_payout, record_resolution
from engine.payouts.views import payout_view
from engine.txn_no import TxnNoGenerator
from engine.webhooks.store import insert_outbox

log = logging.getLogger(__name__)

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
                 release_usage: ReleaseAdmission | None = None, resolution: Resolution | None = None) -> bool:
    """True when this call made the payout final (and booked it); False when it was final already, or (with
    `resolution`, a person resolving a held payout) when it is not held. A resolution commits with the booking.
    A failure records the limit usage owed back with the unfreeze and gives it back after the commit through
    `release_usage` (engine/controls/usage_release.py); when that fails or is None, the release loop gives it back."""
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
    if not succeeded:
        await release_now(gw.pool, release_usage, payout.id)
    return True
