"""The gate's place in the app: built once per process after the pool, Redis and the API context."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
from aiohttp import web

from engine.background import background
from engine.bootstrap import GATE, POOL, REDIS, SETTINGS
from engine.controls import store
from engine.controls.errors import ControlsUnavailable
from engine.controls.gate import ControlGate
from engine.controls.metrics import USAGE_ORPHAN_SWEEP_FAILURES
from engine.controls.orphans import reset_owed, sweep_orphans
from engine.dayend.handlers import CALENDAR
from engine.services import API

log = logging.getLogger(__name__)

PRUNE_INTERVAL_S = 3600.0
PRUNE_BATCH_MAX = 10_000
PRUNE_BATCHES_MAX = 100


def _accounting_date(app: web.Application) -> date:
    """The open accounting date: the day notion of daily limits (UTC date before the calendar runs)."""
    calendar = app.get(CALENDAR)
    return calendar.current() if calendar is not None else datetime.now(UTC).date()


async def _prune_usage(app: web.Application) -> None:
    """Usage rows past every window (a month) and the history (HISTORY_DAYS) go, in bounded batches."""
    while True:
        await asyncio.sleep(PRUNE_INTERVAL_S)
        before = _accounting_date(app) - timedelta(days=store.HISTORY_DAYS + 31)
        try:
            async with app[POOL].acquire() as conn:
                for _ in range(PRUNE_BATCHES_MAX):  # bounded; what is left goes next time
                    if await store.delete_old_usage(conn, before, PRUNE_BATCH_MAX) < PRUNE_BATCH_MAX:
                        break
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):  # the loop survives a database blip
            log.warning("pruning limit usage failed; will retry", exc_info=True)


async def _every(interval_s: float, what: str, step: Callable[[], Awaitable[object]]) -> None:
    """Run ``step`` every ``interval_s``; a database or Redis blip is counted and logged, and the loop goes on."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            await step()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, ControlsUnavailable):
            USAGE_ORPHAN_SWEEP_FAILURES.inc()
            log.warning("%s failed; will retry", what, exc_info=True)


def _sweep_orphans(app: web.Application) -> Coroutine[Any, Any, None]:
    """Give back usage of admissions that never booked (orphans.py), every CONTROLS_ORPHAN_SWEEP_INTERVAL_S."""
    settings = app[SETTINGS]
    return _every(settings.controls_orphan_sweep_interval_s, "limit usage orphan sweep",
                  lambda: sweep_orphans(app[POOL], settings.controls_orphan_grace_s))


def _reset_owed(app: web.Application, gate: ControlGate) -> Coroutine[Any, Any, None]:
    """Drop and rebuild the counters of released usage Redis may still count (a give-back it did not answer,
    a retried release), every CONTROLS_RESET_INTERVAL_S: until then a customer is over-counted in Redis."""
    return _every(app[SETTINGS].controls_reset_interval_s, "limit counter resets",
                  lambda: reset_owed(app[POOL], gate.counters))


async def _controls_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    gate = ControlGate(app[POOL], app[REDIS], today=lambda: _accounting_date(app),
                       blocklist_secret=settings.api_secret_key, config_ttl_s=settings.controls_cache_ms / 1000)
    app[GATE] = gate
    api = app.get(API)
    if api is not None:
        api.gate = gate
    async with background(("controls-prune-usage", _prune_usage(app)),
                          ("controls-sweep-orphans", _sweep_orphans(app)),
                          ("controls-reset-owed", _reset_owed(app, gate))):
        yield


def setup_controls(app: web.Application) -> None:
    """The gate's context (after the API's and the calendar's). Its admin endpoints are in the API's route
    table (engine/http/routes.py): they rely on the API's auth middleware for the admin token."""
    app.cleanup_ctx.append(_controls_ctx)
