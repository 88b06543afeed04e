"""The recovery sweep: put back what Redis lost, and free reservations whose transaction died.

Run by the account's owning flusher (it holds the account's advisory lock), so no batch of this
account can commit between reading PostgreSQL and writing Redis: a leg read as 'buffered' here is
still buffered when it is re-enqueued. The enqueue script skips legs Redis already holds, so a
sweep racing the normal after-commit enqueue adds nothing twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from buffer import metrics
from buffer.keys import account_keys
from buffer.scripts import Scripts, run_scripts
from buffer.state import leg_args, now_ms, pg_legs
from buffer.store import buffered_legs_older_than, count_buffered_older_than

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
    """`recover_accounts` for one account."""
    return (await recover_accounts(conn, redis, scripts, [account_id], grace_ms, reservation_ttl_ms))[account_id]


async def recover_accounts(conn: Any, redis: aioredis.Redis, scripts: Scripts, account_ids: Sequence[str],
                           grace_ms: int = GRACE_MS,
                           reservation_ttl_ms: int = RESERVATION_TTL_MS) -> dict[str, SweepOutcome]:
    """Re-enqueue these accounts' legs still buffered in PostgreSQL that Redis does not hold (journal
    order), and release their reservations older than ``reservation_ttl_ms``. Caller owns the accounts.

    Three round trips however many accounts (a split account's 16 subs are 16 accounts, and the owning
    flusher does not flush while it sweeps): the buffered counts in one query, the queue lengths in one
    pipeline, the reservation expiry in one pipeline. Only an account short of legs pays for more.
    A released reservation whose transaction did commit is not lost money: its legs are in
    PostgreSQL and this same sweep enqueues them as pending (before the release, so that no moment
    sees the debit neither reserved nor queued).
    """
    keys = {a: list(account_keys(a).all()) for a in account_ids}
    # Cheap test first: when Redis queues at least as many legs as PostgreSQL holds buffered past the
    # grace, nothing is missing (a miss hidden behind a stale, already-applied member lasts until that
    # member's next flush, then the next sweep sees it). Only a shortfall pays for reading and
    # re-sending the legs, so a long backlog does not cost a re-send of it every sweep.
    buffered = await count_buffered_older_than(conn, account_ids, grace_ms)
    counted = [a for a in account_ids if buffered.get(a)]
    queued = await _queue_lengths(redis, [keys[a][1] for a in counted])
    added: dict[str, int] = {}
    for account_id, depth in zip(counted, queued, strict=True):
        if depth >= buffered[account_id]:
            continue
        legs = await buffered_legs_older_than(conn, account_id, grace_ms, SWEEP_LEGS_MAX)
        if legs:
            now = now_ms()
            result = await scripts.enqueue(keys=keys[account_id], args=[now, 0, *leg_args(pg_legs(legs, now))],
                                           client=redis)
            added[account_id] = int(result[0])
    expired = await run_scripts(redis, [(scripts.expire_reservations, keys[a], [now_ms(), reservation_ttl_ms])
                                        for a in account_ids])
    out: dict[str, SweepOutcome] = {}
    for account_id, released in zip(account_ids, expired, strict=True):
        outcome = out[account_id] = SweepOutcome(added.get(account_id, 0), int(released))
        if outcome.reenqueued:
            metrics.RECOVERED.labels(account_id).inc(outcome.reenqueued)
            log.warning("recovery re-enqueued legs", extra={"account_id": account_id, "legs": outcome.reenqueued})
        if outcome.reservations_expired:
            log.warning("expired reservations released",
                        extra={"account_id": account_id, "count": outcome.reservations_expired})
    return out


async def _queue_lengths(redis: Any, queue_keys: Sequence[str]) -> list[int]:
    """ZCARD of each key in one round trip (on a cluster, concurrently, each to its key's node)."""
    if not queue_keys:
        return []
    if isinstance(redis, RedisCluster):
        return [int(n) for n in await asyncio.gather(*(redis.zcard(k) for k in queue_keys))]
    async with redis.pipeline(transaction=False) as pipe:
        for key in queue_keys:
            pipe.zcard(key)
        return [int(n) for n in await pipe.execute()]
