"""Admin operations on accounts: split/resize, hot-account candidates, and the background tasks that
tidy split families and sample hot accounts. (HTTP: handlers.py; CLI: engine/cli/accounts.py.)

``split_account`` is the one entry point for a resize (HTTP and CLI both use it): one booking
transaction, so a resize is all or nothing and hot subs' sweep legs reach the buffer after commit.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import asyncpg

from accounts import hot_store, split_store
from accounts.errors import LedgerError, SplitConflict
from accounts.model import AccountId
from accounts.split_store import SplitView
from engine.background import BackgroundJob
from engine.booking import Booker
from engine.settings import Settings
from engine.txn_no import TxnNoGenerator

log = logging.getLogger(__name__)

NextTxnNo = Callable[[], str]


async def split_account(booker: Booker, next_txn_no: NextTxnNo, account_id: str, into: int,
                        hot_activation_s: float = split_store.HOT_SUB_ACTIVATION_S) -> SplitView:
    """Split ``account_id`` into ``into`` subs (or resize an existing split). Raises InvalidSplitCount,
    SplitConflict, UnknownAccount, AccountClosed, NotSplittable; on any error nothing changed."""
    async with booker.transaction() as tx:
        view = await split_store.resize(tx.conn, tx.post, account_id, into, next_txn_no(), _today(),
                                        hot_activation_s)
    booker.splits.invalidate()  # this process routes by the new layout at once; others within the TTL
    await _refresh_hot_view(booker)
    return view


async def _refresh_hot_view(booker: Booker) -> None:
    """Make this process's buffer sink see the new hot subs now. Its view of hot accounts is a cache
    refreshed in the background after a booking finds it stale, so after a quiet spell it can be
    older than the subs' activation delay; a debit on a hot sub it does not know would not be
    reserved. Other processes rely on the activation delay (see HOT_SUB_ACTIVATION_S)."""
    hot = getattr(booker.sink, "hot", None)
    refresh = getattr(hot, "refresh", None)
    if refresh is not None:
        await refresh()


async def tidy_account(booker: Booker, next_txn_no: NextTxnNo, account_id: str, grace_s: float,
                       rebalance_low_minor: int = 0) -> list[AccountId]:
    """Sweep stale-routed residue into active subs, close retired empty subs, optionally rebalance."""
    async with booker.transaction() as tx:
        closed = await split_store.tidy(tx.conn, tx.post, account_id, next_txn_no(), _today(), grace_s)
        if rebalance_low_minor > 0:
            await split_store.rebalance(tx.conn, tx.post, account_id, next_txn_no(), _today(), rebalance_low_minor)
    if closed:
        booker.splits.invalidate()
    return closed


def _today() -> Any:
    return datetime.now(UTC).date()


@dataclass(frozen=True, slots=True)
class Candidate:
    account_id: AccountId
    legs_per_s: float
    lock_waiters_avg: float
    hot: bool
    sub_count: int
    # Safe to flag hot while live: no debits to race the buffer's cache of hot accounts (a debit on a
    # freshly flagged account is not reserved until every process has re-read the flags).
    promotable: bool


class HotSampler:
    """Samples the journal's high-water mark and row-lock waiters every interval; keeps one window."""

    def __init__(self, window_s: int, interval_s: int) -> None:
        self.window_s = window_s
        self.interval_s = interval_s
        size = window_s // interval_s + 2  # bounded: one window of samples
        self._marks: collections.deque[tuple[float, int]] = collections.deque(maxlen=size)
        self._waiters: collections.deque[dict[AccountId, int]] = collections.deque(maxlen=size)

    async def sample(self, conn: Any) -> None:
        self._marks.append((time.monotonic(), await hot_store.max_leg_id(conn)))
        self._waiters.append(await hot_store.row_lock_waiters(conn))

    async def candidates(self, conn: Any, limit: int = 20) -> list[Candidate]:
        if not self._marks:
            await self.sample(conn)
        since_t, since_id = self._marks[0]
        elapsed = max(time.monotonic() - since_t, float(self.interval_s))
        waits: collections.Counter[AccountId] = collections.Counter()
        for sample in self._waiters:
            waits.update(sample)
        samples = max(len(self._waiters), 1)
        return [
            Candidate(c.account_id, c.legs / elapsed, waits[c.account_id] / samples, c.hot, c.sub_count,
                      c.debit_legs == 0 or c.unlimited_overdraft)
            for c in await hot_store.leg_counts_since(conn, since_id, limit)
        ]


def suggest(c: Candidate, threshold: float) -> Literal["buffer", "split"] | None:
    """What to do with a busy candidate: buffer it (flag it hot), split it (hot, not split yet), or nothing."""
    if c.legs_per_s < threshold and c.lock_waiters_avg < 1:
        return None
    if not c.hot:
        return "buffer"
    return "split" if c.sub_count == 0 else None


def account_loops(pool: asyncpg.Pool, booker: Booker, txn_nos: TxnNoGenerator, settings: Settings,
                  sampler: HotSampler) -> list[BackgroundJob]:
    """Sampling hot-account candidates (and promoting them when asked) and tidying split families."""
    return [("hot-sampler", _sample_loop(pool, settings, sampler)),
            ("split-tidy", _tidy_loop(pool, booker, txn_nos, settings))]


async def _sample_loop(pool: asyncpg.Pool, settings: Settings, sampler: HotSampler) -> None:
    while True:
        try:
            async with pool.acquire() as conn:
                await sampler.sample(conn)
                if settings.hot_auto_promote:
                    for c in await sampler.candidates(conn):
                        if not c.hot and c.promotable and c.legs_per_s >= settings.hot_promote_legs_per_s:
                            await split_store.set_family_hot(conn, c.account_id, True)
                            log.warning("account promoted to hot", extra={"account_id": c.account_id,
                                                                         "legs_per_s": round(c.legs_per_s)})
        except (OSError, asyncpg.PostgresError):
            log.warning("hot-account sampling failed; will retry", exc_info=True)
        await asyncio.sleep(settings.hot_sample_interval_s)


async def _tidy_loop(pool: asyncpg.Pool, booker: Booker, txn_nos: TxnNoGenerator, settings: Settings) -> None:
    while True:
        await asyncio.sleep(settings.split_tidy_interval_s)
        try:
            async with pool.acquire() as conn:
                parents = await split_store.split_parents(conn)
            for parent in parents:
                with contextlib.suppress(SplitConflict):  # a resize is running; next round
                    await tidy_account(booker, lambda: txn_nos.next(datetime.now(UTC)), parent,
                                       settings.split_close_grace_s, settings.split_rebalance_low_minor)
        except (OSError, asyncpg.PostgresError, LedgerError):
            log.warning("split tidy failed; will retry", exc_info=True)
