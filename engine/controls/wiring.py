"""The gate's place in the app: built once per process after the pool, Redis and the API context."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

from aiohttp import web

from engine.api.context import API
from engine.app import GATE, POOL, REDIS, SETTINGS
from engine.controls.gate import ControlGate
from engine.dayend.http import CALENDAR


def _accounting_date(app: web.Application) -> date:
    """The open accounting date: the day notion of daily limits (UTC date before the calendar runs)."""
    calendar = app.get(CALENDAR)
    return calendar.current() if calendar is not None else datetime.now(UTC).date()


async def _controls_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    gate = ControlGate(app[POOL], app[REDIS], today=lambda: _accounting_date(app),
                       blocklist_secret=settings.api_secret_key, config_ttl_s=settings.controls_cache_ms / 1000)
    app[GATE] = gate
    api = app.get(API)
    if api is not None:
        api.gate = gate
    yield


def setup_controls(app: web.Application) -> None:
    """The gate's context (after the API's and the calendar's) and the controls' admin routes."""
    from engine.controls.admin import add_admin_routes  # here: it imports the API package

    app.cleanup_ctx.append(_controls_ctx)
    add_admin_routes(app)
