"""The Redis-backed HotLegSink: reserve hot debits before commit, enqueue hot legs after commit.

What it promises the booking path (engine.booking.HotLegSink):
- ``reserve``: for each hot account an entry debits on net (and that does not allow unlimited
  overdraft), atomically check applied + pending - reserved against the floor and reserve the
  amount. Refuses with InsufficientFunds, BufferBackpressure (account behind), or BufferUnavailable
  (Redis cannot be asked: we refuse rather than risk an overdraft).
- ``release``: give a reservation back (the transaction rolled back). Never raises; a reservation
  that cannot be released expires (recovery sweep) - holding it longer only under-states funds.
- ``enqueue``: after commit, append the buffered legs per account and turn the reservations into
  pending in the same Lua step. Bookings that commit together are sent together (buffer.coalesce:
  one script call per hot account per round trip, not per payment). Never raises: if Redis is down
  the legs stay 'buffered' in PostgreSQL and the recovery sweep enqueues them.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
import redis.asyncio as aioredis
from redis.exceptions import RedisClusterException, RedisError

from accounts.errors import InsufficientFunds, LedgerError
from accounts.journal import EntryDraft
from accounts.model import AccountId, signed_delta
from accounts.store import PostedEntry
from buffer import metrics
from buffer.backpressure import BackpressureGate
from buffer.coalesce import AccountWork, EnqueueCoalescer, Leg
from buffer.errors import BufferBackpressure, BufferUnavailable, HotBufferError
from buffer.gauges import publish_status
from buffer.hot import HotAccounts
from buffer.keys import account_keys
from buffer.scripts import Scripts, run_scripts
from buffer.state import apply_order, leg_args, load_account, now_ms
from buffer.tuning import LiveTuning

log = logging.getLogger(__name__)

REDIS_TIMEOUT_S = 2.0  # bound on any one Redis exchange on the request path
LOAD_ATTEMPTS = 3
LOAD_ACQUIRE_TIMEOUT_S = 2.0


@dataclass(frozen=True, slots=True)
class Reservation:
    id: str
    parts: tuple[tuple[AccountId, int], ...]  # (account, amount reserved)


class RedisHotLegSink:
    """``pool`` is best a small pool of the buffer's own: ``reserve`` runs while the booking
    transaction holds a booking-pool connection. Hot flags and tuning are refreshed in the background
    so the request path never waits for a connection, except to rebuild state Redis lost, which waits
    at most LOAD_ACQUIRE_TIMEOUT_S and then refuses with BufferUnavailable (retryable)."""

    def __init__(self, pool: asyncpg.Pool, redis: aioredis.Redis, tuning: LiveTuning,
                 hot: HotAccounts | None = None) -> None:
        self._pool = pool
        self._redis = redis
        self._scripts = Scripts(redis)
        self._tuning = tuning
        self.hot = hot or HotAccounts(pool)
        self.gate = BackpressureGate(redis, self._scripts)
        self._coalescer = EnqueueCoalescer(self._send)

    async def start(self) -> None:
        """Read hot accounts and tuning before the first request (optional; otherwise lazily)."""
        await self.hot.refresh()
        await self._tuning.refresh()

    async def publish_gauges(self) -> None:
        """Set the buffer gauges of every hot account from Redis (buffer/gauges.py): /metrics calls it."""
        await publish_status(self._redis, self._scripts, sorted(await self.hot.current()), self._tuning.cached)

    async def reserve(self, entry: EntryDraft) -> Reservation | None:
        hot = await self.hot.current()
        nets: dict[AccountId, int] = {}
        for leg in entry.legs:
            meta = hot.get(leg.account_id)
            if meta is not None:
                nets[leg.account_id] = nets.get(leg.account_id, 0) + signed_delta(
                    leg.side, meta.normal_side, leg.amount_minor)
        if not nets:
            return None
        tuning = await self._tuning.current()
        await self.gate.check(list(nets), tuning)
        debits: list[tuple[AccountId, int, int]] = []
        for account_id, net in nets.items():
            floor = hot[account_id].floor
            if net < 0 and floor is not None:
                debits.append((account_id, -net, floor))
        if not debits:
            return None
        reservation = Reservation(uuid.uuid4().hex, tuple((a, amount) for a, amount, _ in debits))
        try:
            await asyncio.wait_for(self._reserve_all(reservation.id, debits), REDIS_TIMEOUT_S * 2)
        except (LedgerError, HotBufferError):
            raise  # a refusal decided by the check itself; _reserve_all already gave back its parts
        except Exception as exc:
            # Any other failure means the check could not be made (redis-py's cluster client can fail
            # with library-internal errors while a master is down): refuse, retryably, never guess.
            await self.release(reservation)
            raise BufferUnavailable(debits[0][0], type(exc).__name__) from None
        return reservation

    async def _reserve_all(self, res_id: str, debits: list[tuple[AccountId, int, int]]) -> None:
        """Reserve every debit or none: on any refusal the ones already reserved are given back."""
        todo = list(debits)
        for _ in range(LOAD_ATTEMPTS):
            tuning = self._tuning.cached
            now = now_ms()
            results = await run_scripts(self._redis, [
                (self._scripts.reserve, account_keys(account_id).all(),
                 [res_id, amount, floor, now, tuning.max_depth, tuning.max_lag_ms])
                for account_id, amount, floor in todo])
            unloaded: list[tuple[AccountId, int, int]] = []
            refusal: Exception | None = None
            for (account_id, amount, floor), (status, a, b) in zip(todo, results, strict=True):
                if status == 1:
                    self.gate.observe(account_id, int(b), 0)
                elif status == -1:
                    unloaded.append((account_id, amount, floor))
                elif status == -2:
                    self.gate.observe(account_id, int(a), int(b))
                    metrics.BACKPRESSURE.labels(account_id).inc()
                    refusal = refusal or BufferBackpressure(account_id, int(a), int(b), self.gate.retry_after_s(tuning))
                else:
                    refusal = refusal or InsufficientFunds(account_id, amount)
            if refusal is not None:
                await self._release_parts(res_id, [a for a, _, _ in debits])
                raise refusal
            if not unloaded:
                return
            # Redis lost these accounts' state: rebuild it from PostgreSQL, then ask again.
            async with self._pool.acquire(timeout=LOAD_ACQUIRE_TIMEOUT_S) as conn:
                for account_id, _, _ in unloaded:
                    await load_account(conn, self._redis, self._scripts, account_id)
            todo = unloaded
        raise RedisError(f"state of {todo[0][0]} did not load")

    async def release(self, reservation: object) -> None:
        if isinstance(reservation, Reservation):
            await self._release_parts(reservation.id, [a for a, _ in reservation.parts])

    async def _release_parts(self, res_id: str, account_ids: Sequence[str]) -> None:
        try:
            calls = [(self._scripts.release, account_keys(a).all(), [res_id]) for a in account_ids]
            await asyncio.wait_for(run_scripts(self._redis, calls), REDIS_TIMEOUT_S)
        except (RedisError, RedisClusterException, OSError, TimeoutError):
            log.warning("reservation release failed; it will expire", extra={"reservation": res_id})

    async def enqueue(self, entries: Sequence[PostedEntry], reservations: Sequence[object]) -> None:
        now = now_ms()
        legs: dict[str, list[Leg]] = {}
        for entry in entries:
            for leg in entry.buffered_legs:
                legs.setdefault(leg.account_id, []).append((entry.txn_no, leg.leg_no, leg.delta, now))
        res_ids: dict[str, list[str]] = {}
        for reservation in reservations:
            if isinstance(reservation, Reservation):
                for account_id, _ in reservation.parts:
                    res_ids.setdefault(account_id, []).append(reservation.id)
        if legs or res_ids:
            await self._coalescer.submit({a: apply_order(account_legs) for a, account_legs in legs.items()}, res_ids)

    async def _send(self, work: dict[str, list[AccountWork]]) -> None:
        """One pipeline for everything waiting: per account, its chunks in order."""
        now = now_ms()
        order = [(account_id, chunk) for account_id, chunks in work.items() for chunk in chunks]
        try:
            calls = [(self._scripts.enqueue, account_keys(account_id).all(),
                      [now, len(chunk.reservation_ids), *chunk.reservation_ids, *leg_args(chunk.legs)])
                     for account_id, chunk in order]
            results = await asyncio.wait_for(run_scripts(self._redis, calls), REDIS_TIMEOUT_S)
        except Exception:
            # The entries are committed: whatever went wrong here, the bookings succeeded and the legs
            # stay 'buffered' in PostgreSQL for the recovery sweep. Raising would report a failure for
            # money that moved.
            metrics.ENQUEUE_FAILURES.inc()
            log.warning("enqueue failed; legs stay buffered for recovery",
                        extra={"txn_nos": sorted({leg[0] for _, c in order for leg in c.legs})[:5]}, exc_info=True)
            return
        for (account_id, _), (_, depth, age) in zip(order, results, strict=True):
            self.gate.observe(account_id, int(depth), int(age))
