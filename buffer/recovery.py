"""The recovery sweep: put back what Redis lost, and free reservations whose transaction died.

Run by the account's owning flusher (it holds the account's advisory lock), so no batch of this
account can commit between reading PostgreSQL and writing Redis: a leg read as 'buffered' here is
still buffered when it is re-enqueued. The enqueue script skips legs Redis already holds, so a
sweep racing the normal after-commit enqueue adds nothing twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from buffer import metrics
from buffer.keys import account_keys
from buffer.scripts import Scripts
from buffer.state import leg_args, now_ms, pg_legs
from buffer.store import BufferedLeg, buffered_legs_older_than, count_buffered_older_than

log = logging.getLogger(__name__)

GRACE_MS = 2000  # a leg younger than this may still be on its way from the booking path
SWEEP_LEGS_MAX = 5000  # per account per sweep; the next sweep continues
RESERVATION_TTL_MS = 60_000  # longer than any booking transaction may run (command timeout 30 s)


@dataclass(frozen=True, slots=True)
class SweepOutcome:
    reenqueued: int
    reservations_expired: int


async def recover_account(conn: Any, redis: aioredis.Redis, scripts: Scripts, account_id: str,
                          grace_ms: int = GRACE_MS, reservation_ttl_ms: int = RESERVATION_TTL_MS) -> SweepOutcome:
    """Re-enqueue this account's legs still buffered in PostgreSQL that Redis does not hold (journal
    order), and release its reservations older than ``reservation_ttl_ms``. Caller owns the account.

    A released reservation whose transaction did commit is not lost money: its legs are in
    PostgreSQL and this same sweep enqueues them as pending.
    """
    keys = list(account_keys(account_id).all())
    added = 0
    legs: list[BufferedLeg] = []
    # Cheap test first: when Redis queues at least as many legs as PostgreSQL holds buffered past the
    # grace, nothing is missing (a miss hidden behind a stale, already-applied member lasts until that
    # member's next flush, then the next sweep sees it). Only a shortfall pays for reading and
    # re-sending the legs, so a long backlog does not cost a re-send of it every sweep.
    buffered = await count_buffered_older_than(conn, account_id, grace_ms)
    if buffered and int(await redis.zcard(keys[1])) < buffered:
        legs = await buffered_legs_older_than(conn, account_id, grace_ms, SWEEP_LEGS_MAX)
    if legs:
        now = now_ms()
        result = await scripts.enqueue(keys=keys, args=[now, 0, *leg_args(pg_legs(legs, now))], client=redis)
        added = int(result[0])
    expired = int(await scripts.expire_reservations(keys=keys, args=[now_ms(), reservation_ttl_ms], client=redis))
    if added:
        metrics.RECOVERED.labels(account_id).inc(added)
        log.warning("recovery re-enqueued legs", extra={"account_id": account_id, "legs": added})
    if expired:
        log.warning("expired reservations released", extra={"account_id": account_id, "count": expired})
    return SweepOutcome(added, expired)
