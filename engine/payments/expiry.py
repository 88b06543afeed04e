"""Order expiry: an unpaid payment closes at its ``expires_at``.

Two paths lead to the same close:
- **Delay queue** (precise): when a channel payment is created its id goes into a Redis sorted set
  scored by the deadline; a poller atomically pops what is due (one Lua script: range + remove) and
  closes it. Several processes may poll; a popped member belongs to the process that popped it.
- **Sweep** (safety net): Redis is not the record. A deadline Redis lost (restart without persistence,
  eviction, a ZADD that failed, a process that died after popping) is found by a bounded scan of the
  partial index ``payments_unpaid_expiry`` in PostgreSQL, every ``expiry_sweep_interval_s``.

The close itself is the payment's compare-and-set transition (unpaid -> closed, voucher expired) with
its ``payment.closed`` outbox event and, for channel payments, a ``close_order`` job that closes the
order at the channel, all in one transaction. Whoever gets there first (queue, sweep, the merchant's
close, the gateway janitor, or a success) wins; the others change nothing. The winner then gives back the
limit usage the payment counted (owed from the commit on: engine/controls/usage_release.py retries what fails).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import asyncpg
import redis.asyncio as aioredis
from prometheus_client import Counter
from redis.exceptions import RedisError

from engine.controls.usage_release import ReleaseAdmission
from engine.keys import expiry_member, expiry_queue_key, parse_expiry_member
from engine.payments import closing
from engine.settings import Settings

log = logging.getLogger(__name__)

SWEEP_ROUNDS_MAX = 50  # batches per sweep; the next sweep continues
REDIS_TIMEOUT_S = 1.0

EXPIRED = Counter("payengine_expiry_closed_total", "Unpaid payments closed at their deadline, by path", ["path"])
QUEUE_FAILURES = Counter("payengine_expiry_queue_failures_total", "Delay-queue Redis calls that failed", ["op"])

# Pop up to ARGV[2] members scored <= ARGV[1]: read and remove in one step, so two pollers never
# take the same payment.
_POP_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #due > 0 then redis.call('ZREM', KEYS[1], unpack(due)) end
return due
"""


class ExpiryQueue:
    """The Redis side: schedule a deadline, pop the due ones. Never the record (see the sweep)."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._pop = redis.register_script(_POP_DUE)

    async def schedule(self, merchant_id: str, payment_id: str, expires_at: datetime) -> bool:
        """Add a deadline; False (logged, counted) when Redis is unavailable — the sweep will close it."""
        try:
            await asyncio.wait_for(self.redis.zadd(expiry_queue_key(), {expiry_member(merchant_id, payment_id):
                                                                        expires_at.timestamp()}), REDIS_TIMEOUT_S)
            return True
        except (RedisError, OSError, TimeoutError):
            QUEUE_FAILURES.labels("schedule").inc()
            log.warning("expiry delay queue unavailable; the sweep will close this payment",
                        extra={"payment_id": payment_id})
            return False

    async def pop_due(self, now: datetime, limit: int) -> list[tuple[str, str]]:
        """(merchant id, payment id) of deadlines <= now, removed from the queue."""
        raw = await asyncio.wait_for(self._pop(keys=[expiry_queue_key()], args=[now.timestamp(), limit]),
                                     REDIS_TIMEOUT_S)
        return [parse_expiry_member(m.decode() if isinstance(m, bytes) else str(m)) for m in raw]


# Asks the payment's channel for its real status before a close (a payer may have paid just before the
# deadline with the notify still on its way); a success found is applied, so the close then finds
# the payment paid and leaves it alone instead of closing it and auto-refunding the payer.
AskChannel = Callable[[str], Awaitable[object]]


async def close_expired(pool: asyncpg.Pool, merchant_id: str, payment_id: str, now: datetime,
                        ask_channel: AskChannel | None = None, release_usage: ReleaseAdmission | None = None) -> bool:
    """Close the payment if it is still unpaid and past its deadline (payments/closing.py), after one last
    question to the channel, and give its limit usage back through ``release_usage`` (None: the release loop
    does, later); True if this call closed it."""
    if ask_channel is not None:
        await ask_channel(payment_id)
    closed = await closing.close_payment(pool, merchant_id, payment_id, closing.EXPIRED, now, release_usage,
                                         only_if_due=True)
    return closed is not None


async def sweep_expired(pool: asyncpg.Pool, now: datetime, batch_max: int,
                        ask_channel: AskChannel | None = None, release_usage: ReleaseAdmission | None = None) -> int:
    """Close unpaid payments past their deadline that the queue did not (bounded); returns how many."""
    closed = 0
    after: datetime | None = None
    for _ in range(SWEEP_ROUNDS_MAX):
        async with pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT id, merchant_id, expires_at FROM payments"
                " WHERE status IN ('pending_voucher', 'awaiting_payment') AND expires_at <= $1"
                " AND ($2::timestamptz IS NULL OR expires_at >= $2) ORDER BY expires_at LIMIT $3",
                now, after, batch_max)
        for r in rows:
            if await close_expired(pool, r["merchant_id"], r["id"], now, ask_channel, release_usage):
                closed += 1
        if len(rows) < batch_max:
            break
        after = rows[-1]["expires_at"]  # a payment we could not close does not stall the scan
    if closed:
        EXPIRED.labels("sweep").inc(closed)
        log.info("expiry sweep closed payments", extra={"closed": closed})
    return closed


class ExpiryWorker:
    def __init__(self, pool: asyncpg.Pool, queue: ExpiryQueue, settings: Settings,
                 ask_channel: AskChannel | None = None, release_usage: ReleaseAdmission | None = None) -> None:
        self.pool = pool
        self.queue = queue
        self.settings = settings
        self.ask_channel = ask_channel
        self.release_usage = release_usage

    async def drain_queue(self, now: datetime) -> int:
        """Close what the delay queue says is due (one bounded batch); returns how many closed."""
        due = await self.queue.pop_due(now, self.settings.expiry_batch_max)
        closed = 0
        for merchant_id, payment_id in due:
            if await close_expired(self.pool, merchant_id, payment_id, now, self.ask_channel, self.release_usage):
                closed += 1
        if closed:
            EXPIRED.labels("queue").inc(closed)
        return len(due)

    async def run(self) -> None:
        poll_s = self.settings.expiry_poll_interval_ms / 1000
        next_sweep = time.monotonic() + self.settings.expiry_sweep_interval_s
        while True:
            popped = 0
            try:
                popped = await self.drain_queue(datetime.now(UTC))
            except (RedisError, OSError, TimeoutError):
                QUEUE_FAILURES.labels("pop").inc()
                log.warning("expiry delay queue unavailable; relying on the sweep", exc_info=True)
            except (asyncpg.PostgresError, asyncpg.InterfaceError):
                log.warning("closing expired payments failed; the sweep will retry", exc_info=True)
            if time.monotonic() >= next_sweep:
                next_sweep = time.monotonic() + self.settings.expiry_sweep_interval_s
                try:
                    await sweep_expired(self.pool, datetime.now(UTC), self.settings.expiry_batch_max,
                                        self.ask_channel, self.release_usage)
                except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                    log.warning("expiry sweep failed; will retry", exc_info=True)
            if popped < self.settings.expiry_batch_max:
                await asyncio.sleep(poll_s)
