"""Held payouts for operators: list them, show one, resolve one. Used by the admin API (admin.py) and the CLI
(cli.py) alike, so both follow the same rules.

A payout is held when the channel's word cannot be booked as it stands (amount_mismatch: it reports another
amount or currency than ours, shown whole as reported_amount/reported_currency), or when it was never sent and no
channel could ever take it (no_channel: e.g. the merchant may no longer use any channel that pays out): its
amount stays frozen and no worker takes it (worker.py, decision.Hold). A person resolves it:

- retry: clear the hold and make it due: a worker asks the channel again (the channel corrected its report), or
  routes the payout again (the configuration was fixed).
- fail: the channel confirmed nothing was paid, or nothing was ever sent: the payout fails as on the channel's
  word (outcome.finish: PAYOUT_UNFREEZE, payout.failed, its limit usage given back).
- succeed: the channel confirmed it paid our amount: the payout settles as on the channel's word
  (outcome.finish: PAYOUT_SETTLE, payout.succeeded). Refused for a payout never sent (PayoutNeverSent, 409):
  no channel can have paid it.

Each is one compare-and-set on the hold, in the transaction that books the change and records the resolution
(a transitions row with the reason and who), so of two concurrent resolves exactly one wins; the other, and any
resolve of a payout that is not held, raises PayoutNotHeld (409).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from accounts.model import AccountId
from accounts.store import Conn
from engine.booking import Booker
from engine.controls.usage_release import ReleaseAdmission
from engine.errors import NotFound
from engine.payouts import wire as pw
from engine.payouts.destination import mask_digits
from engine.payouts.errors import PayoutNeverSent, PayoutNotHeld
from engine.payouts.outcome import Books, finish
from engine.payouts.store import (
    Resolution,
    held_payouts,
    payout_by_id,
    payout_for_admin,
    record_resolution,
    release_hold,
)
from engine.payouts.views import admin_payout_view, held_payout_view
from engine.txn_no import TxnNoGenerator

log = logging.getLogger(__name__)

FAILED_BY_OPERATOR = "failed_by_operator"  # the failure code the merchant sees
_FAILED_MESSAGE = "the channel confirmed to our operators that nothing was paid"
_NEVER_SENT_MESSAGE = "no channel could take the payout and nothing was sent; our operators failed it"


@dataclass(frozen=True)
class PlatformBooks:
    """Books (outcome.py) for a process without a gateway context: the admin API and the CLI."""

    pool: asyncpg.Pool
    booker: Booker
    txn_nos: TxnNoGenerator
    accounts: Callable[[str], Awaitable[dict[str, AccountId]]]

    async def platform_accounts(self, currency: str) -> dict[str, AccountId]:
        return await self.accounts(currency)


def actor(operator: str | None, via: str) -> str:
    """Who resolved, as recorded: the operator's name when given (the admin token names nobody), and the tool."""
    return f"{operator or 'unnamed'} via {via}"


async def list_held(conn: Conn, merchant_id: str | None, starting_after: str | None,
                    limit: int) -> pw.HeldPayoutList:
    rows = await held_payouts(conn, merchant_id, starting_after, limit + 1)
    return pw.HeldPayoutList([held_payout_view(p, note) for p, note in rows[:limit]], len(rows) > limit)


async def show(conn: Conn, payout_id: str) -> pw.AdminPayout:
    """Any merchant's payout with its internals; NotFound (404) when there is none."""
    found = await payout_for_admin(conn, payout_id)
    if found is None:
        raise NotFound("payout", payout_id)
    return admin_payout_view(*found)


async def resolve(books: Books, payout_id: str, action: str, reason: str, who: str, now: datetime,
                  release_usage: ReleaseAdmission | None = None) -> None:
    """Resolve a held payout (module docstring). Raises NotFound (404), PayoutNotHeld (409: not held, or
    another resolve won) and PayoutNeverSent (409: succeed for a payout never sent); nothing is booked or
    recorded then. Run it shielded: a fail gives the limit usage back after its commit."""
    assert action in ("retry", "fail", "succeed"), action
    async with books.pool.acquire() as conn:
        payout = await payout_by_id(conn, payout_id)
    if payout is None:
        raise NotFound("payout", payout_id)
    if payout.hold_reason is None:
        raise PayoutNotHeld(payout.id, payout.status, action)
    never_sent = payout.status == "pending"  # held before any send (no_channel); store.finish_payout agrees
    if action == "succeed" and never_sent:
        raise PayoutNeverSent(payout.id, payout.hold_reason)
    note = mask_digits(reason.strip())  # a card number typed into the note stays out of the trail and the logs
    resolution = Resolution(action, note, who)
    if action == "retry":
        async with books.pool.acquire() as conn, conn.transaction():
            after = await release_hold(conn, payout.id, now)
            if after is not None:
                await record_resolution(conn, payout, after, resolution, now)
        won = after is not None
    else:
        won = await finish(books, payout, action == "succeed", None, FAILED_BY_OPERATOR,
                           _NEVER_SENT_MESSAGE if never_sent else _FAILED_MESSAGE, now, release_usage, resolution)
    if not won:
        async with books.pool.acquire() as conn:
            current = await payout_by_id(conn, payout.id)
        raise PayoutNotHeld(payout.id, payout.status if current is None else current.status, action)
    log.info("held payout resolved by an operator",
             extra={"payout_id": payout.id, "merchant_id": payout.merchant_id, "action": action,
                    "hold_reason": payout.hold_reason, "from_status": payout.status, "actor": who,
                    "note": note, "amount": payout.amount, "currency": payout.currency,
                    "reported_amount_minor": payout.reported_amount_minor,
                    "reported_currency": payout.reported_currency, "channel": payout.channel})
