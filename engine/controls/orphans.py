"""The orphan sweep: usage counted for an admission whose movement never booked is given back.

The gate commits a usage row and counts it in Redis before the booking; a failed booking gives it back
(``Admission.release``). When the process dies in between, nothing does, and the customer and merchant
stay limited by usage that never happened. This sweep finds such rows (older than a grace period, their
payment / transfer / payout absent) and marks them released in PostgreSQL with their counters' reset owed;
``reset_owed`` (a loop of its own in every process) then drops the subjects' Redis counters, which are
rebuilt from the rows that still count. A booking claims its row in its own
transaction (``Admission.claim``), so a row whose movement booked is never released, and a booking that
comes after the release does not happen.

Crash safety: the release and the counters' reset are separate steps; a row released but not yet reset
(``counters_reset_at`` NULL) is reset by the next pass of ``reset_owed``. Until then the counters over-count (a false
refusal), never under-count.

The same owed reset repairs a give-back that got no answer from Redis (a refused or failed attempt, a
failed payout's release): the gate keeps such a row released with its reset owed (``store.settle_usage``),
so the counters are dropped and rebuilt for every process, not only for the one that saw Redis fail.
"""

from __future__ import annotations

import logging

import asyncpg

from engine.controls import store
from engine.controls.counters import Counters
from engine.controls.metrics import USAGE_ORPHANS_RELEASED

log = logging.getLogger(__name__)

ORPHAN_BATCH_MAX = 1_000
ORPHAN_BATCHES_MAX = 20       # per pass; what is left goes next pass
ORPHAN_LOCK_TIMEOUT_MS = 2_000  # a booking holding a row longer than this defers the pass
RESET_SETTLE_S = 10.0  # far beyond a rebuild's read of PostgreSQL and load into Redis (see reset_owed)


async def sweep_orphans(pool: asyncpg.Pool, grace_s: float, batch_max: int = ORPHAN_BATCH_MAX) -> int:
    """One bounded pass: release orphaned usage rows older than ``grace_s``, their counters' reset owed
    (``reset_owed`` makes it); returns the rows released. Raises asyncpg errors (a booking held a row too
    long, the database is away): the next pass carries on."""
    released_total = 0
    for _ in range(ORPHAN_BATCHES_MAX):
        async with pool.acquire() as conn:
            outcome = await store.release_orphans(conn, grace_s, batch_max, ORPHAN_LOCK_TIMEOUT_MS)
        if outcome is None:  # another process is sweeping
            break
        seen, released = outcome
        for r in released:
            u = r.usage
            USAGE_ORPHANS_RELEASED.labels(u.kind).inc()
            log.warning("limit usage released: its admission never booked", extra={
                "admission": u.id, "kind": u.kind, "movement_id": u.movement_id, "merchant_id": u.merchant_id,
                "customer_id": u.customer_id, "amount": u.amount, "currency": u.currency,
                "day": u.day.isoformat(), "age_s": round(r.age_s, 1)})
        released_total += len(released)
        if seen < batch_max:
            break
    return released_total


async def reset_owed(pool: asyncpg.Pool, counters: Counters, batch_max: int = ORPHAN_BATCH_MAX,
                     settle_s: float = RESET_SETTLE_S) -> int:
    """Reset the counters of released or uncounted rows whose reset is still owed; returns how many were reset.

    A row is settled (no longer owed) only once it has been owed for ``settle_s`` before a reset: a rebuild
    that read PostgreSQL before the row was released (or inserted) can load its counters after an early
    reset's drop, and the reset after the settle time drops those too. A row released after it was read
    stays owed (``mark_reset`` compares ``released_at``). Raises ControlsUnavailable (Redis) and asyncpg
    errors; the next pass carries on."""
    async with pool.acquire() as conn:
        owed = await store.resets_owed(conn, batch_max, settle_s)
    if not owed:
        return 0
    await counters.reset([o.usage for o in owed])
    settled = [o for o in owed if o.settled]
    if settled:
        async with pool.acquire() as conn:
            await store.mark_reset(conn, settled)
    return len(owed)
