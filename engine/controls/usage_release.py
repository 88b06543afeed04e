"""Limit usage given back when a payment ends without money (closed, expired or failed) or a payout fails.

The control gate counts a payment's or payout's amount and count against the daily and monthly limits when it
is created (engine/controls/gate.py). A payment that then closes (merchant or deadline) or fails (no voucher)
took no money, and a failed payout (the channel's word or an operator's, PAYOUT_UNFREEZE) sent none, so that
usage goes back; a payment that succeeded keeps it, refunded or not, and so does a succeeded payout.

- The record: the statement that moves the payment to closed or failed (payment_store.transition_payment) or
  the payout to failed (payouts/store.finish_payout) also inserts its ``usage_releases`` row, keyed by the
  payment's or payout's id (the movement), naming the gate's admission (payment_store.USAGE_OWED). The release
  is owed exactly when that transition committed, and only one transition can end a payment or a payout.
- At once (``release_now``): whoever made the transition gives the usage back after the commit and deletes
  the row.
- Later (``release_owed``): a row older than the grace (the process died after the commit, or the release
  raised) is taken by a loop in every API process. The loop releases by reset: the usage row is released and
  the subjects' counters are rebuilt from PostgreSQL, so an earlier attempt that decremented Redis and died
  before its commit cannot make the usage go back twice.

Exactly once: ``ControlGate.release_admission`` locks the admission's usage row and, in one transaction,
either gives the Redis counters back and deletes the row (inline) or releases the row with a counter reset
owed (the loop; an uncounted admission); another call (inline and loop racing, a retry after a crash) waits
for the lock, then finds no live row and gives back nothing. The release keeps the attempt in the customer's
velocity log: attempts stay counted. Redis unreachable: the usage row is released (PostgreSQL no longer
counts it) and kept as a counter reset owed, which every process's owed-reset loop makes once Redis answers;
until then the counters over-count, never under.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import asyncpg
from prometheus_client import Counter

from engine.controls.store import lock_usage_owed, settle_usage_owed, usage_owed
from engine.settings import Settings

log = logging.getLogger(__name__)

# Gives an admission's counted usage back by its id (ControlGate.release_admission): True when there was
# something to give back, False when released already. Raises when it cannot; the release stays owed.
ReleaseAdmission = Callable[[str], Awaitable[bool]]

# The names predate payouts releasing here; kept so dashboards keep their series.
RELEASED = Counter("payengine_payment_usage_released_total",
                   "Limit usage given back by payments that ended without money and failed payouts, by path",
                   ["path"])
RELEASE_FAILURES = Counter("payengine_payment_usage_release_failures_total",
                           "Releases of a payment's or payout's limit usage that failed and stay owed, by path",
                           ["path"])


async def release_now(pool: asyncpg.Pool, release: ReleaseAdmission | None, movement_id: str) -> bool:
    """Give back the usage owed by a payment or payout (``movement_id``) whose ending transition just
    committed; True when usage was given back. A failure is logged and counted, never raised: the row stays
    owed and the loop retries it. Shielded, so a cancelled request cannot leave the release half done."""
    if release is None:
        return False
    try:
        return await asyncio.shield(_release_one(pool, release, movement_id))
    except Exception:
        RELEASE_FAILURES.labels("inline").inc()
        log.warning("giving limit usage back failed; the release loop retries",
                    extra={"movement_id": movement_id}, exc_info=True)
        return False


async def _release_one(pool: asyncpg.Pool, release: ReleaseAdmission, movement_id: str) -> bool:
    async with pool.acquire() as conn:
        admission = await usage_owed(conn, movement_id)
    if admission is None:  # nothing was counted for it, or the loop settled it already
        return False
    released = await release(admission)
    async with pool.acquire() as conn:
        await settle_usage_owed(conn, [movement_id])
    if released:
        RELEASED.labels("inline").inc()
    return released


async def release_owed(pool: asyncpg.Pool, release: ReleaseAdmission, grace_s: float, batch_max: int) -> int:
    """One bounded pass: give back the usage owed longer than ``grace_s`` (its process died after the
    transition, or the release failed); returns the rows settled. A row whose release fails stays owed for
    the next pass. Rows stay locked while released, so processes running this at once split the work.
    Raises asyncpg errors when the database is away (nothing settled that was not given back)."""
    settled: list[str] = []
    failed = 0
    async with pool.acquire() as conn, conn.transaction():
        for movement_id, admission in await lock_usage_owed(conn, grace_s, batch_max):
            try:
                if await release(admission):
                    RELEASED.labels("loop").inc()
            except Exception:
                failed += 1
                continue
            settled.append(movement_id)
        await settle_usage_owed(conn, settled)
    if failed:
        RELEASE_FAILURES.labels("loop").inc(failed)
        log.warning("giving owed limit usage back failed; the next pass retries", extra={"failed": failed})
    if settled:
        log.info("owed limit usage given back", extra={"movements": len(settled)})
    return len(settled)


async def release_loop(pool: asyncpg.Pool, settings: Settings, release_by_reset: ReleaseAdmission) -> None:
    """Every USAGE_RELEASE_INTERVAL_S, one ``release_owed`` pass. Releases by reset: an earlier attempt may
    have decremented the counters already."""
    while True:
        await asyncio.sleep(settings.usage_release_interval_s)
        try:
            await release_owed(pool, release_by_reset, settings.usage_release_grace_s,
                               settings.usage_release_batch_max)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):  # the loop survives a database blip
            log.warning("releasing owed limit usage failed; will retry", exc_info=True)
