"""Hot-account modes: buffered booking, split sub-accounts, and both together.

They use the buffer's and the split code's public pieces the way ``payengine serve`` does: the
merchant-side accounts are split with ``accounts.split_store.resize`` (booked through a Booker, so
any sweep is an ordinary entry) and/or flagged hot in PostgreSQL; the booker gets the Redis hot-leg
sink; flushers (``buffer.runner.FlushRunner``) run in this process, as ``serve`` runs them by
default, restricted to this mode's accounts. A mode whose code is missing reports itself unavailable.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg

from bench.load import Sampler
from bench.modes import BenchContext
from bench.servers import open_redis
from bench.workload import WorkloadAccounts
from engine.booking import Booker

if TYPE_CHECKING:
    from buffer.flush_thread import FlusherThread
    from buffer.runner import FlushRunner
    from engine.payments.batcher import PaymentBatcher

OWN_TIMEOUT_S = 10.0
REPO = Path(__file__).resolve().parent.parent


def _missing(*modules: str) -> str | None:
    for name in modules:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            return f"{name} has not landed in this checkout"
    return None


class HotMode:
    """``parts`` sub-accounts per merchant-side account (1 = not split), buffered or synchronous."""

    def __init__(self, parts: int, buffered: bool) -> None:
        self.parts = parts
        self.buffered = buffered
        base = f"split-{parts}" if parts > 1 else ""
        self.name = "+".join(p for p in ("buffered" if buffered else "", base) if p)
        self.shared = True
        self.family: list[str] = []  # every account id the flushers own (parents and subs)
        self._runner: FlushRunner | None = None
        self._thread: FlusherThread | None = None
        self._redis_depth: Sampler | None = None
        self._proc: asyncio.subprocess.Process | None = None

    def unavailable(self) -> str | None:
        needs = (("buffer.sink", "buffer.runner", "buffer.tuning") if self.buffered else ()) + \
            (("accounts.split_store",) if self.parts > 1 else ())
        return _missing(*needs)

    async def prepare(self, ctx: BenchContext, accounts: WorkloadAccounts) -> None:
        if self.parts > 1:
            from accounts.split_store import resize

            booker = Booker(ctx.pool)
            for account_id in accounts.shared_ids:
                now = datetime.now(UTC)
                async with booker.transaction() as tx:
                    await resize(tx.conn, tx.post, account_id, self.parts, ctx.txn_nos.next(now), now.date())
        async with ctx.pool.acquire() as conn:
            if self.buffered:
                await conn.execute("UPDATE accounts SET hot = true WHERE id = ANY($1::text[])"
                                   " OR parent_id = ANY($1::text[])", accounts.shared_ids)
            rows = await conn.fetch("SELECT id FROM accounts WHERE id = ANY($1::text[]) OR parent_id = ANY($1::text[])"
                                    " ORDER BY id", accounts.shared_ids)
        self.family = [r["id"] for r in rows]

    async def start(self, ctx: BenchContext, accounts: WorkloadAccounts) -> Booker:
        if not self.buffered:
            return Booker(ctx.pool)
        from buffer.flush_thread import FlusherThread
        from buffer.keys import account_keys
        from buffer.runner import FlushRunner
        from buffer.sink import RedisHotLegSink
        from buffer.tuning import BufferTuning, LiveTuning

        # The stored live tuning (buffer_settings) wins over these defaults, so flush-sweep can set it.
        tuning = LiveTuning(ctx.pool, BufferTuning())
        sink = RedisHotLegSink(ctx.pool, ctx.redis, tuning)
        if ctx.flushers == "process":
            await self._start_flusher_process(ctx)
        else:
            if ctx.flushers == "thread":  # PAYENGINE_BUFFER_FLUSHER_THREAD=1: a thread with its own event loop
                self._thread = FlusherThread(ctx.database_url, lambda: open_redis(ctx.redis_url), BufferTuning(),
                                             only_accounts=self.family, name=f"bench-flushers-{self.name}")
                self._thread.start()
                flushers: FlusherThread | FlushRunner = self._thread
            else:  # as `payengine serve` runs them by default: on this event loop
                self._runner = FlushRunner(ctx.database_url, ctx.redis, tuning, only_accounts=self.family)
                self._runner.start(f"bench-flushers-{self.name}")
                flushers = self._runner
            # Load starts once the flushers own every account, so a window measures flushing, not start-up.
            deadline = time.monotonic() + OWN_TIMEOUT_S
            while time.monotonic() < deadline:
                if set(self.family) <= flushers.owned:
                    break
                await asyncio.sleep(0.02)
        queues = [account_keys(a).queue for a in self.family]

        async def redis_depth() -> float:
            async with ctx.redis.pipeline(transaction=False) as pipe:
                for key in queues:
                    pipe.zcard(key)
                return float(sum(await pipe.execute()))

        self._redis_depth = redis_depth
        return Booker(ctx.pool, sink)

    async def _start_flusher_process(self, ctx: BenchContext) -> None:
        """Flushers as their own process (the ``payengine flush`` shape): a second interpreter, so on a
        multi-core machine flushing does not share the payers' event loop."""
        from buffer.store import flush_lock_key

        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "buffer.flush_main", "--database-url", ctx.database_url,
            "--redis-url", ctx.redis_url, "--accounts", ",".join(self.family),
            cwd=REPO, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        keys = [flush_lock_key(a) for a in self.family]
        deadline = time.monotonic() + OWN_TIMEOUT_S
        while time.monotonic() < deadline:  # owned = its advisory locks are granted
            held = await ctx.pool.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1"
                " AND ((classid::bigint << 32) | objid::bigint) = ANY($1::bigint[])", keys)
            if held >= len(keys):
                break
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.stop()
        if self._thread is not None:
            await self._thread.stop()
        if self._proc is not None:
            self._proc.terminate()
            await self._proc.wait()
        self._runner = None
        self._thread = self._redis_depth = self._proc = None

    def samplers(self) -> dict[str, Sampler]:
        return {"redis_depth": self._redis_depth} if self._redis_depth is not None else {}


@asynccontextmanager
async def stored_tuning_put_back(pool: asyncpg.Pool) -> AsyncIterator[None]:
    """For a scenario that stores its own live tuning (``buffer_settings``, what ``payengine buffer tune``
    writes): afterwards the stored tuning is what it was, or absent again if there was none."""
    from buffer.tuning import BufferTuning, load_tuning, save_tuning

    async with pool.acquire() as conn:
        had_row = await conn.fetchval("SELECT count(*) FROM buffer_settings") > 0
        before = await load_tuning(conn, BufferTuning())
    try:
        yield
    finally:
        async with pool.acquire() as conn:
            if had_row:
                await save_tuning(conn, before)
            else:
                await conn.execute("DELETE FROM buffer_settings")


class BatchedMode(HotMode):
    """The buffered mode's accounts, flushers and sink, with every payment booked through the in-process
    batcher (engine/payments/batcher.py) as the API process runs it with PAYENGINE_BATCH_MAX set: what
    arrived while the previous batch was booking goes in one statement and one commit."""

    def __init__(self, batch_max: int = 256, linger_us: int = 0, queue_max: int = 4096, buffered: bool = True) -> None:
        super().__init__(1, buffered=buffered)
        # Unbuffered ("batched-direct"): the shared accounts are not hot, so each batch applies their legs itself,
        # one UPDATE per account per batch, in its own transaction (the decision in docs/SCALING.md).
        self.name = "batched" if buffered else "batched-direct"
        self.batch_max, self.linger_us, self.queue_max = batch_max, linger_us, queue_max
        self.batcher: PaymentBatcher | None = None
        self._task: asyncio.Task[None] | None = None

    def unavailable(self) -> str | None:
        return super().unavailable() or _missing("engine.payments.batcher")

    async def start(self, ctx: BenchContext, accounts: WorkloadAccounts) -> Booker:
        from engine.payments.batcher import PaymentBatcher

        booker = await super().start(ctx, accounts)
        self.batcher = PaymentBatcher(ctx.pool, booker.sink, booker.splits, batch_max=self.batch_max,
                                      linger_us=self.linger_us, queue_max=self.queue_max)
        self._task = asyncio.create_task(self.batcher.run(), name="bench-batcher")
        return booker

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None
        self.batcher = None
        await super().stop()


def batched_mode(buffered: bool = True) -> BatchedMode:
    return BatchedMode(buffered=buffered)


def buffered_mode() -> HotMode:
    return HotMode(1, buffered=True)


def split_mode(parts: int, buffered: bool) -> HotMode:
    return HotMode(parts, buffered)
