"""Flusher workers: discover hot accounts, own each through a PostgreSQL advisory lock, flush them.

``flusher_concurrency`` workers run per process, each with its own PostgreSQL connection. A worker
owns an account while its connection holds ``pg_try_advisory_lock`` on the account's key, so across
all processes one account has one flusher; if the connection dies the lock goes with it, and so
does any batch it had not committed (a lock-less connection can never commit a flush). Accounts
locked elsewhere are retried every discovery round. Workers re-read the live tuning each loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Sequence

import asyncpg
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from buffer import metrics
from buffer.flusher import PG_GONE, AfterCommit, FlushStats, flush_accounts
from buffer.gauges import forget_accounts
from buffer.recovery import GRACE_MS, MissingLegs, recover_accounts
from buffer.scripts import Scripts
from buffer.store import flush_lock_key, hot_accounts
from buffer.tuning import LiveTuning

log = logging.getLogger(__name__)

DISCOVER_S = 1.0
SWEEP_S = 1.0
RECONNECT_S = 0.2
APPLICATION_NAME = "payengine-flusher"


class Worker:
    """One PostgreSQL connection and the accounts it owns."""

    def __init__(self, runner: FlushRunner, index: int) -> None:
        self.runner = runner
        self.index = index
        self.wanted: set[str] = set()
        self.owned: set[str] = set()
        self.conn: asyncpg.Connection | None = None
        self._stats: dict[str, FlushStats] = {}
        self._missing = MissingLegs()
        self._swept_at = 0.0
        self._claimed_at = 0.0
        self._tried: set[str] = set()

    async def _connect(self) -> asyncpg.Connection:
        conn = await asyncpg.connect(self.runner.database_url, timeout=10, command_timeout=30,
                                     server_settings={"application_name": f"{APPLICATION_NAME}:{os.getpid()}"})
        assert conn is not None
        return conn

    async def _claim(self) -> None:
        """Lock wanted accounts not yet owned; unlock owned ones no longer wanted."""
        assert self.conn is not None
        for account_id in sorted(self.wanted - self.owned):
            if self.runner.standby_wait_ms:
                # Standby: queue for the lock, so the instant its holder dies this worker has it.
                try:
                    async with self.conn.transaction():
                        await self.conn.execute(f"SET LOCAL lock_timeout = {int(self.runner.standby_wait_ms)}")
                        await self.conn.execute("SELECT pg_advisory_lock($1)", flush_lock_key(account_id))
                    self.owned.add(account_id)
                except asyncpg.LockNotAvailableError:
                    pass
            elif await self.conn.fetchval("SELECT pg_try_advisory_lock($1)", flush_lock_key(account_id)):
                self.owned.add(account_id)
        for account_id in sorted(self.owned - self.wanted):
            await self.conn.execute("SELECT pg_advisory_unlock($1)", flush_lock_key(account_id))
            self.owned.discard(account_id)
            forget_accounts([account_id])
        self._claimed_at = time.monotonic()
        self._tried = set(self.wanted)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                if self.conn is None or self.conn.is_closed():
                    self.owned.clear()  # a new session holds no locks
                    self.conn = await self._connect()
                    await self._claim()
                await self._round(stop)
            except PG_GONE as exc:
                log.warning("flusher lost postgresql; reconnecting", extra={"error": type(exc).__name__})
                await self._drop_connection()
                await _sleep(stop, RECONNECT_S)
            except (RedisError, TimeoutError) as exc:
                log.warning("flusher lost redis; retrying", extra={"error": type(exc).__name__})
                await _sleep(stop, RECONNECT_S)
            except Exception:
                # A flusher must outlive surprises (redis-py's cluster client can fail with its own
                # internal errors while a master is down): start over after a pause so a bug cannot spin
                # (nothing is lost, an uncommitted batch simply stays queued). The connection, and with
                # it the accounts' locks, is kept when it is idle and healthy: letting go would hand the
                # accounts to another flusher for nothing, and put this one in its queue.
                log.exception("flusher round failed; starting over")
                if not self._connection_idle():
                    await self._drop_connection()
                await _sleep(stop, RECONNECT_S * 5)
        await self._drop_connection()

    async def _round(self, stop: asyncio.Event) -> None:
        tuning = await self.runner.tuning.current()
        standing_by = bool(self.runner.standby_wait_ms and self.wanted - self.owned)
        newly_wanted = bool(self.wanted - self._tried)  # just assigned: claim now, not at the next tick
        if standing_by or newly_wanted or time.monotonic() - self._claimed_at >= DISCOVER_S:
            await self._claim()
        assert self.conn is not None
        busy = False
        owned = sorted(self.owned)
        for account_id in owned:
            self._stats.setdefault(account_id, FlushStats())
        try:
            outcomes = await flush_accounts(self.conn, self.runner.redis, self.runner.scripts, owned,
                                            tuning.batch_size, self._stats,
                                            after_commit=self.runner.after_commit) if owned else {}
        except asyncpg.PostgresError as exc:
            if isinstance(exc, PG_GONE):
                raise
            # e.g. the overdraft CHECK of the only account: log loudly, leave the batch queued, try again.
            outcomes = {}
            for account_id in owned:
                metrics.FLUSH_ERRORS.labels(account_id, type(exc).__name__).inc()
            log.error("flush failed", extra={"accounts": owned[:5], "error": str(exc)})
        for account_id, outcome in outcomes.items():
            if outcome.error is not None:
                metrics.FLUSH_ERRORS.labels(account_id, outcome.error.split(":", 1)[0]).inc()
                log.error("flush failed", extra={"account_id": account_id, "error": outcome.error})
            busy = busy or outcome.taken >= tuning.batch_size or not outcome.loaded
        if time.monotonic() - self._swept_at >= SWEEP_S:
            if self.owned:
                await recover_accounts(self.conn, self.runner.redis, self.runner.scripts, sorted(self.owned),
                                       self._missing, grace_ms=self.runner.grace_ms)
            self._swept_at = time.monotonic()
        if not busy:
            await _sleep(stop, tuning.flush_interval_ms / 1000)

    def _connection_idle(self) -> bool:
        """Open and outside any transaction: safe to go on using (an operation it was in the middle of
        would make its next use raise InterfaceError, which drops it then)."""
        return self.conn is not None and not self.conn.is_closed() and not self.conn.is_in_transaction()

    async def _drop_connection(self) -> None:
        """Let go of the accounts and close. An idle connection unlocks them explicitly first: closing
        only asks the server to end the session, whose locks stay granted until its backend has exited,
        so the next owner (a standby, a restarted flusher) would wait for nothing."""
        idle = self._connection_idle()
        conn, self.conn = self.conn, None
        forget_accounts(sorted(self.owned))
        self.owned.clear()
        if conn is not None and not conn.is_closed():
            with contextlib.suppress(Exception):
                if idle:
                    await asyncio.wait_for(conn.execute("SELECT pg_advisory_unlock_all()"), 2)
                await asyncio.wait_for(conn.close(), 2)
            if not conn.is_closed():
                conn.terminate()


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


class FlushRunner:
    """All flusher workers of one process. ``run`` until ``stop`` is set.

    ``after_commit`` is handed to every flush (buffer.flusher.flush_accounts): the crash tests' hook."""

    def __init__(self, database_url: str, redis: aioredis.Redis, tuning: LiveTuning,
                 only_accounts: Sequence[str] | None = None, grace_ms: int = GRACE_MS,
                 standby_wait_ms: int = 0, after_commit: AfterCommit | None = None) -> None:
        self.database_url = database_url
        self.redis = redis
        self.scripts = Scripts(redis)
        self.tuning = tuning
        self.only_accounts = list(only_accounts) if only_accounts is not None else None
        self.grace_ms = grace_ms
        # > 0: wait (up to this long per try, again and again) in the lock queue of accounts another
        # process flushes, instead of trying once a second: a hot standby that takes over at once.
        self.standby_wait_ms = standby_wait_ms
        self.after_commit = after_commit
        self.workers: list[Worker] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._stops: list[asyncio.Event] = []
        self._background: tuple[asyncio.Event, asyncio.Task[None]] | None = None

    @property
    def owned(self) -> set[str]:
        return set().union(*(w.owned for w in self.workers)) if self.workers else set()

    def start(self, name: str = "buffer-flushers") -> None:
        """``run`` as a task on the current event loop until ``stop()``: how ``payengine serve``, the bench
        and the tests host flushers beside other work."""
        if self._background is not None:
            raise RuntimeError("these flushers are already running")
        stop = asyncio.Event()
        self._background = (stop, asyncio.create_task(self.run(stop), name=name))

    @property
    def ended(self) -> bool:
        """True once what ``start`` started has ended, by ``stop()`` or by an error."""
        return self._background is None or self._background[1].done()

    async def stop(self) -> None:
        """End what ``start`` started and wait for every worker; raises what ``run`` raised."""
        if self._background is None:
            return
        stop, task = self._background
        self._background = None
        stop.set()
        await task

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                try:
                    await self._discover()
                except (*PG_GONE, asyncpg.PostgresError) as exc:
                    log.warning("hot-account discovery failed", extra={"error": type(exc).__name__})
                await _sleep(stop, DISCOVER_S)
        finally:
            for event in self._stops:
                event.set()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _discover(self) -> None:
        tuning = await self.tuning.current()
        self._resize(tuning.flusher_concurrency)
        conn = await asyncpg.connect(self.database_url, timeout=10)
        try:
            hot = [a.id for a in await hot_accounts(conn, self.only_accounts)]
        finally:
            await conn.close()
        assigned = {a: w for w in self.workers for a in w.wanted}
        for w in self.workers:
            w.wanted &= set(hot)
        for account_id in hot:
            if account_id not in assigned or assigned[account_id] not in self.workers:
                min(self.workers, key=lambda w: len(w.wanted)).wanted.add(account_id)

    def _resize(self, count: int) -> None:
        """Start or stop workers to match the live flusher concurrency; a stopped worker's
        connection closes, releasing its locks, and its accounts are handed out again."""
        while len(self.workers) < count:
            worker, stop = Worker(self, len(self.workers)), asyncio.Event()
            self.workers.append(worker)
            self._stops.append(stop)
            self._tasks.append(asyncio.create_task(worker.run(stop), name=f"flusher-{worker.index}"))
        while len(self.workers) > count:
            worker = self.workers.pop()
            self._stops.pop().set()
            self._tasks.pop()  # it ends by itself after its current round
            for account_id in worker.wanted:
                min(self.workers, key=lambda w: len(w.wanted)).wanted.add(account_id)
            worker.wanted.clear()
