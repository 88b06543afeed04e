"""Admin (SRE) endpoints of the ledger (admin token checked by the API's middleware for /admin/*).

    GET  /admin/trial-balance                  applied and projected totals per currency
    GET  /admin/buffer                         per hot account: depth, oldest age, applied/s, last batch
    GET  /admin/buffer/settings                the live flush settings
    PUT  /admin/buffer/settings                change some (every flusher re-reads within a second)
    POST /admin/accounts/{id}/split {"into"}   split an account into N sub-accounts (or resize its split)
    GET  /admin/accounts/{id}/split            the account and its sub-accounts
    GET  /admin/accounts/hot-candidates        accounts busy enough to buffer or split
    GET  /admin/accounts/{id}/statement        any account's statement (from/to accounting dates)

The work is in buffer.py (tuning, status) and accounts.py (split_account, HotSampler).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime

import msgspec
from aiohttp import web

from accounts import split_store
from accounts.errors import LedgerError
from accounts.split_store import SplitView
from accounts.store import get_account, trial_balance
from buffer.tuning import BufferTuning, TuningError, load_tuning
from engine.customers.flow import read_statement
from engine.customers.wire import Statement, StatementQuery
from engine.errors import NotFound
from engine.ledger_admin import wire
from engine.ledger_admin.accounts import split_account, suggest
from engine.ledger_admin.buffer import buffer_status, change_tuning
from engine.ledger_admin.errors import split_refusal
from engine.services import services_of
from engine.web.decoding import decode_body, decode_query
from engine.web.errors import ApiError, invalid_request
from engine.web.idempotency import ok_json
from engine.web.request import RAW_BODY
from engine.web.route import RouteSpec

# ---------------------------------------------------------------- trial balance


async def trial_balance_handler(request: web.Request) -> web.Response:
    async with services_of(request).pool.acquire() as conn:
        tb = await trial_balance(conn)
    body = {
        "holds": tb.holds, "holds_drained": tb.holds_drained, "buffered_legs": tb.buffered_legs,
        "applied": [{"currency": t.currency, "debit": t.debit_normal_minor, "credit": t.credit_normal_minor}
                    for t in tb.applied],
        "projected": [{"currency": t.currency, "debit": t.debit_normal_minor, "credit": t.credit_normal_minor}
                      for t in tb.projected],
        "mismatched_accounts": [list(m) for m in tb.mismatched_accounts],
    }
    return ok_json(body)


# ---------------------------------------------------------------- buffer


def _settings(tuning: BufferTuning) -> wire.BufferSettings:
    return msgspec.convert(tuning.to_dict(), wire.BufferSettings)


async def get_buffer(request: web.Request) -> web.Response:
    svc = services_of(request)
    rows = await buffer_status(svc.pool, svc.redis)
    return ok_json(wire.BufferView([msgspec.convert(r, wire.BufferAccountStatus) for r in rows],
                               _settings(svc.buffer_tuning.cached)))


async def get_buffer_settings(request: web.Request) -> web.Response:
    tuning = services_of(request).buffer_tuning
    async with services_of(request).pool.acquire() as conn:
        current = await load_tuning(conn, tuning.defaults)
    return ok_json(_settings(current))


async def put_buffer_settings(request: web.Request) -> web.Response:
    change = decode_body(request[RAW_BODY], wire.BufferSettingsChange)
    changes = {name: value for name, value in msgspec.structs.asdict(change).items() if value is not msgspec.UNSET}
    if not changes:
        raise invalid_request("invalid_body", "expected a JSON object of settings to change")
    svc = services_of(request)
    try:
        updated = await change_tuning(svc.pool, svc.buffer_tuning.defaults, changes)
    except TuningError as exc:
        raise invalid_request("invalid_setting", str(exc), exc.field) from None
    await svc.buffer_tuning.refresh()
    return ok_json(_settings(updated))


# ---------------------------------------------------------------- splits and hot candidates


def _split_request(raw: bytes) -> wire.SplitRequest:
    """A body of the wrong shape is ``invalid_body`` here (the split's clients and tests know that code)."""
    try:
        return decode_body(raw, wire.SplitRequest)
    except ApiError as err:
        if err.code in ("parameter_invalid", "parameter_missing", "unknown_field"):
            raise invalid_request("invalid_body", err.message, err.param) from None
        raise


@contextlib.contextmanager
def _split_refusals() -> Iterator[None]:
    """The ledger's refusals of a split, raised as the kinds the error middleware answers."""
    try:
        yield
    except LedgerError as exc:
        refusal = split_refusal(exc)
        if refusal is None:
            raise
        raise refusal from exc


def _split_view(view: SplitView) -> wire.SplitAccountView:
    return wire.SplitAccountView(
        view.parent_id, view.currency, view.balance_minor, view.pending_minor, view.own_balance_minor,
        view.sub_count, [wire.SubAccountView(s.id, s.index, s.balance_minor, s.pending_minor, s.status, s.active,
                                             s.hot) for s in view.subs])


async def post_split(request: web.Request) -> web.Response:
    req = _split_request(request[RAW_BODY])
    svc = services_of(request)
    txn_nos = svc.txn_nos
    with _split_refusals():
        # Shielded: a client that hangs up cannot cancel the resize between its commit and the cache refresh.
        view = await asyncio.shield(split_account(svc.booker, lambda: txn_nos.next(datetime.now(UTC)),
                                                  request.match_info["id"], req.into))
    return ok_json(_split_view(view))


async def get_split(request: web.Request) -> web.Response:
    async with services_of(request).pool.acquire() as conn:
        with _split_refusals():
            view = await split_store.split_view(conn, request.match_info["id"])
    return ok_json(_split_view(view))


async def get_hot_candidates(request: web.Request) -> web.Response:
    svc = services_of(request)
    async with svc.pool.acquire() as conn:
        found = await svc.hot_sampler.candidates(conn)
    threshold = svc.settings.hot_promote_legs_per_s
    return ok_json(wire.HotCandidates(svc.settings.hot_window_s, [
        wire.HotCandidate(c.account_id, round(c.legs_per_s, 2), round(c.lock_waiters_avg, 3), c.hot, c.sub_count,
                          suggest(c, threshold))
        for c in found]))


async def get_statement(request: web.Request) -> web.Response:
    """Any account's statement, in the merchant statement's shape (customers/flow.read_statement)."""
    q = decode_query(request.query, StatementQuery)
    account_id = request.match_info["id"]
    async with services_of(request).pool.acquire() as conn:
        if await get_account(conn, account_id) is None:
            raise NotFound("account", account_id)
        return ok_json(await read_statement(conn, account_id, q))


# PUT /admin/buffer/settings retunes every flusher on the server: tests/api/test_openapi_fuzz.py fuzzes it
# only against a private server of its own.
ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("GET", "/admin/trial-balance", trial_balance_handler, "Trial balance", None,
              errors=(401,), auth="admin"),
    RouteSpec("GET", "/admin/buffer", get_buffer,
              "Hot-account buffer: depth, oldest age, applied/s and last batch per hot account",
              wire.BufferView, errors=(401,), auth="admin"),
    RouteSpec("GET", "/admin/buffer/settings", get_buffer_settings, "The live flush settings",
              wire.BufferSettings, errors=(401,), auth="admin"),
    RouteSpec("PUT", "/admin/buffer/settings", put_buffer_settings,
              "Change live flush settings (every flusher re-reads them within a second)", wire.BufferSettings,
              200, wire.BufferSettingsChange, errors=(400, 401, 413), auth="admin"),
    RouteSpec("POST", "/admin/accounts/{id}/split", post_split,
              "Split an account into N sub-accounts, or resize its split (all or nothing)",
              wire.SplitAccountView, 200, wire.SplitRequest, errors=(400, 401, 404, 409, 413), auth="admin"),
    RouteSpec("GET", "/admin/accounts/hot-candidates", get_hot_candidates,
              "Accounts busy enough to buffer or split, over the sampling window", wire.HotCandidates,
              errors=(401,), auth="admin"),
    RouteSpec("GET", "/admin/accounts/{id}/statement", get_statement,
              "Any account's applied legs in sequence order, with what each was for (payment/refund, order number, "
              "gross/fee); from/to: accounting dates", Statement, query=StatementQuery, errors=(400, 401, 404),
              auth="admin"),
    RouteSpec("GET", "/admin/accounts/{id}/split", get_split, "An account and its sub-accounts",
              wire.SplitAccountView, errors=(401, 404), auth="admin"),
)
