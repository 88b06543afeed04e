"""Admin operations on accounts: split/resize, split views, hot-account candidates, and the
background tasks that tidy split families and sample hot accounts.

``split_account`` is the one entry point for a resize (HTTP and CLI both use it): one booking
transaction, so a resize is all or nothing and hot subs' sweep legs reach the buffer after commit.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hmac
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec
import orjson
from aiohttp import web

from accounts import hot_store, split_store
from accounts.errors import (
    AccountClosed,
    InsufficientFunds,
    InvalidSplitCount,
    LedgerError,
    NotSplittable,
    SplitConflict,
    UnknownAccount,
)
from accounts.model import AccountId
from accounts.split_store import SplitView
from engine.background import BackgroundJob
from engine.booking import Booker
from engine.services import services_of
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


class SplitRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    into: int


# Domain error -> (HTTP status, error type). Anything not listed is a bug and answers 500.
_ERROR_STATUS: dict[type[LedgerError], tuple[int, str]] = {
    InvalidSplitCount: (400, "invalid_request_error"),
    UnknownAccount: (404, "invalid_request_error"),
    AccountClosed: (409, "conflict_error"),
    NotSplittable: (409, "conflict_error"),
    SplitConflict: (409, "conflict_error"),
    InsufficientFunds: (409, "conflict_error"),
}


def error_response(status: int, type_: str, code: str, message: str, param: str | None = None) -> web.Response:
    body = {"error": {"type": type_, "code": code, "message": message, "param": param}}
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def _authorized(request: web.Request) -> bool:
    token = services_of(request).settings.admin_token
    given = request.headers.get("Authorization", "")
    return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())


def _view_json(view: SplitView) -> dict[str, Any]:
    return {
        "id": view.parent_id, "currency": view.currency, "balance": view.balance_minor,
        "pending": view.pending_minor, "own_balance": view.own_balance_minor, "sub_count": view.sub_count,
        "sub_accounts": [
            {"id": s.id, "index": s.index, "balance": s.balance_minor, "pending": s.pending_minor,
             "status": s.status, "active": s.active, "hot": s.hot}
            for s in view.subs
        ],
    }


async def post_split(request: web.Request) -> web.Response:
    if not _authorized(request):
        return error_response(401, "authentication_error", "invalid_admin_token", "admin bearer token required")
    try:
        body = msgspec.json.decode(await request.read(), type=SplitRequest)
    except msgspec.ValidationError as exc:
        return error_response(400, "invalid_request_error", "invalid_body", str(exc), "into")
    except msgspec.DecodeError as exc:
        return error_response(400, "invalid_request_error", "invalid_json", str(exc))
    svc = services_of(request)
    txn_nos = svc.txn_nos
    try:
        view = await asyncio.shield(split_account(svc.booker, lambda: txn_nos.next(datetime.now(UTC)),
                                                  request.match_info["id"], body.into))
    except LedgerError as exc:
        status, type_ = _ERROR_STATUS.get(type(exc), (500, "api_error"))
        return error_response(status, type_, exc.code, str(exc), "into" if isinstance(exc, InvalidSplitCount) else None)
    return web.Response(body=orjson.dumps(_view_json(view)), content_type="application/json")


async def get_split(request: web.Request) -> web.Response:
    if not _authorized(request):
        return error_response(401, "authentication_error", "invalid_admin_token", "admin bearer token required")
    async with services_of(request).pool.acquire() as conn:
        try:
            view = await split_store.split_view(conn, request.match_info["id"])
        except UnknownAccount as exc:
            return error_response(404, "invalid_request_error", exc.code, str(exc))
    return web.Response(body=orjson.dumps(_view_json(view)), content_type="application/json")


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


async def get_hot_candidates(request: web.Request) -> web.Response:
    if not _authorized(request):
        return error_response(401, "authentication_error", "invalid_admin_token", "admin bearer token required")
    settings = services_of(request).settings
    async with services_of(request).pool.acquire() as conn:
        found = await services_of(request).hot_sampler.candidates(conn)
    data = [
        {"account_id": c.account_id, "legs_per_s": round(c.legs_per_s, 2),
         "lock_waiters_avg": round(c.lock_waiters_avg, 3), "hot": c.hot, "sub_count": c.sub_count,
         "suggest": _suggest(c, settings.hot_promote_legs_per_s)}
        for c in found
    ]
    return web.Response(body=orjson.dumps({"window_s": settings.hot_window_s, "data": data}),
                        content_type="application/json")


def _suggest(c: Candidate, threshold: float) -> str | None:
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


def setup_admin_accounts(app: web.Application) -> None:
    app.router.add_post("/admin/accounts/{id}/split", post_split)
    app.router.add_get("/admin/accounts/hot-candidates", get_hot_candidates)
    app.router.add_get("/admin/accounts/{id}/split", get_split)


async def split_from_cli(database_url: str, lease_s: int, system: int, environment: int, shard: int,
                         account_id: str, into: int) -> SplitView:
    """``payengine accounts split``: migrate, lease a node id for transaction numbers, resize, release."""
    from engine.migrate import migrate
    from engine.txn_no import NodeLease, TxnNoGenerator

    conn = await asyncpg.connect(database_url)
    try:
        await migrate(conn)
        lease = await NodeLease.acquire(conn, lease_s)
        try:
            txn_nos = TxnNoGenerator(system, environment, shard, lease.node_id)
            pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
            try:
                return await split_account(Booker(pool), lambda: txn_nos.next(datetime.now(UTC)), account_id, into)
            finally:
                await pool.close()
        finally:
            await lease.release(conn)
    finally:
        await conn.close()
