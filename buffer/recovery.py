"""The recovery sweep: put back what Redis lost, and free reservations whose transaction died.

Run by the account's owning flusher (it holds the account's advisory lock), so no batch of this
account can commit between reading PostgreSQL and writing Redis: a leg read as 'buffered' here is
still buffered when it is re-enqueued. The enqueue script skips legs Redis already holds, so a
sweep racing the normal after-commit enqueue adds nothing twice.

Lost, not late. A leg becomes visible here when its booking commits and reaches Redis a moment later,
from the booking's own after-commit enqueue; its insert time says nothing about that moment. The posting
statement stamps its legs when it starts, and under load seconds can pass before the booking commits
(the statement waiting on a customer's wallet row another payment holds, the API's event loop too busy
to resume the booking): 200-user load tests saw 2-10 s from the start of the posting statement to the
booking resuming after it, and sweeps that re-enqueued such legs 50-150 ms before the booking's own
enqueue arrived and found them queued. Nothing was lost, yet every one was counted and logged as
recovered. So the grace counts from when a sweep first saw the leg missing (``MissingLegs``), which is
after its commit: a leg is put back only when it is still buffered in PostgreSQL and still unknown to
Redis ``grace_ms`` later. Legs inserted less than ``grace_ms`` ago are not even looked at, which keeps
the sweep of a busy account cheap. Only an enqueue lagging its commit by more than the grace (Redis
slower than the sink's own timeout) can still be counted as recovered; the enqueue script then drops the
late duplicate.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from buffer import metrics
from buffer.keys import account_keys, leg_member
from buffer.scripts import Scripts, run_scripts
from buffer.state import leg_args, now_ms, pg_legs
from buffer.store import BufferedLeg, buffered_legs_older_than, count_buffered_older_than

log = logging.getLogger(__name__)

GRACE_MS = 2000  # a leg is put back once missing from Redis this long (and inserted at least this long ago)
SWEEP_LEGS_MAX = 5000  # per account per sweep; the next sweep continues
RESERVATION_TTL_MS = 60_000  # longer than any booking transaction may run (command timeout 30 s)


@dataclass(frozen=True, slots=True)
class SweepOutcome:
    reenqueued: int
    reservations_expired: int
    missing: int = 0  # legs seen missing from Redis within the grace: put back by a later sweep if still so


class MissingLegs:
    """What the sweeps of one owner saw missing from Redis: per account, leg -> when first seen so
    (monotonic ms). Holds only the accounts of the last sweep that were short of legs, at most
    ``SWEEP_LEGS_MAX`` legs each. A new owner starts empty: its first sweep only looks."""

    def __init__(self) -> None:
        self._first_ms: dict[str, dict[str, int]] = {}

    def retain(self, account_ids: Collection[str]) -> None:
        """Forget the accounts not listed: a sweep found nothing missing there (or no longer owns them)."""
        for account_id in self._first_ms.keys() - set(account_ids):
            del self._first_ms[account_id]

    def due(self, account_id: str, missing: Collection[str], now_ms: int, grace_ms: int) -> set[str]:
        """Record that ``missing`` are absent now (any other leg is not); those absent ``grace_ms`` or longer."""
        before = self._first_ms.get(account_id, {})
        first = {m: before.get(m, now_ms) for m in missing}
        due = {m for m, at in first.items() if now_ms - at >= grace_ms}
        self._first_ms[account_id] = {m: at for m, at in first.items() if m not in due}
        return due


def monotonic_ms() -> int:
    return int(time.monotonic() * 1000)


async def recover_account(conn: Any, redis: aioredis.Redis, scripts: Scripts, account_id: str,
                          missing: MissingLegs | None = None, grace_ms: int = GRACE_MS,
                          reservation_ttl_ms: int = RESERVATION_TTL_MS) -> SweepOutcome:
    """`recover_accounts` for one account. Without ``missing`` the sweep remembers nothing, so it puts
    back only with ``grace_ms=0`` (what tests and drains want: everything missing, now)."""
    return (await recover_accounts(conn, redis, scripts, [account_id],
                                   missing if missing is not None else MissingLegs(), grace_ms,
                                   reservation_ttl_ms))[account_id]


async def recover_accounts(conn: Any, redis: aioredis.Redis, scripts: Scripts, account_ids: Sequence[str],
                           missing: MissingLegs, grace_ms: int = GRACE_MS,
                           reservation_ttl_ms: int = RESERVATION_TTL_MS) -> dict[str, SweepOutcome]:
    """Re-enqueue these accounts' legs that are buffered in PostgreSQL and have been missing from Redis
    for ``grace_ms`` by ``missing``'s account (journal order), and release their reservations older than
    ``reservation_ttl_ms``. Caller owns the accounts and passes the same ``missing`` to every sweep.

    Three round trips however many accounts (a split account's 16 subs are 16 accounts, and the owning
    flusher does not flush while it sweeps): the buffered counts in one query, the queue lengths in one
    pipeline, the reservation expiry in one pipeline. Only an account short of legs pays for more.
    A released reservation whose transaction did commit is not lost money: its legs are in
    PostgreSQL and this same sweep enqueues them as pending (before the release, so that no moment
    sees the debit neither reserved nor queued); an account with legs still within their grace keeps
    its reservations until a later sweep (holding one longer only under-states funds).
    """
    keys = {a: list(account_keys(a).all()) for a in account_ids}
    # Cheap test first: when Redis queues at least as many legs as PostgreSQL holds buffered past the
    # grace, nothing is missing (a miss hidden behind a stale, already-applied member lasts until that
    # member's next flush, then the next sweep sees it). Only a shortfall pays for reading the legs and
    # asking Redis which it lacks, so a long backlog does not cost a re-send of it every sweep.
    buffered = await count_buffered_older_than(conn, account_ids, grace_ms)
    counted = [a for a in account_ids if buffered.get(a)]
    queued = await _queue_lengths(redis, [keys[a][1] for a in counted])
    short = [a for a, depth in zip(counted, queued, strict=True) if depth < buffered[a]]
    missing.retain(short)
    added: dict[str, int] = {}
    waiting: dict[str, int] = {}
    for account_id in short:
        legs = await buffered_legs_older_than(conn, account_id, grace_ms, SWEEP_LEGS_MAX)
        absent = await _absent(redis, scripts, keys[account_id], legs)
        due = missing.due(account_id, absent, monotonic_ms(), grace_ms)
        waiting[account_id] = len(absent) - len(due)
        put_back = [b for b in legs if leg_member(b.txn_no, b.leg_no) in due]
        if put_back:
            now = now_ms()
            result = await scripts.enqueue(keys=keys[account_id], args=[now, 0, *leg_args(pg_legs(put_back, now))],
                                           client=redis)
            added[account_id] = int(result[0])
    settled = [a for a in account_ids if not waiting.get(a)]
    expired = await run_scripts(redis, [(scripts.expire_reservations, keys[a], [now_ms(), reservation_ttl_ms])
                                        for a in settled])
    released = dict(zip(settled, expired, strict=True))
    out: dict[str, SweepOutcome] = {}
    for account_id in account_ids:
        outcome = out[account_id] = SweepOutcome(added.get(account_id, 0), int(released.get(account_id, 0)),
                                                 waiting.get(account_id, 0))
        if outcome.reenqueued:
            metrics.RECOVERED.labels(account_id).inc(outcome.reenqueued)
            log.warning("recovery re-enqueued legs", extra={"account_id": account_id, "legs": outcome.reenqueued})
        if outcome.missing:
            log.debug("legs missing from redis, within the grace", extra={"account_id": account_id,
                                                                          "legs": outcome.missing})
        if outcome.reservations_expired:
            log.warning("expired reservations released",
                        extra={"account_id": account_id, "count": outcome.reservations_expired})
    return out


async def _absent(redis: Any, scripts: Scripts, keys: Sequence[str], legs: Sequence[BufferedLeg]) -> list[str]:
    """The legs Redis neither queues nor has applied lately (buffer.scripts.MISSING)."""
    if not legs:
        return []
    members = [leg_member(b.txn_no, b.leg_no) for b in legs]
    return [m.decode() if isinstance(m, bytes) else str(m)
            for m in await scripts.missing(keys=list(keys), args=members, client=redis)]


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
