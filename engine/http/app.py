"""The merchant HTTP API: ``setup_api(app)`` adds its middlewares, routes and shared context."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from channels.registry import adapter_classes
from engine.background import background
from engine.bootstrap import DATABASE_URL, POOL, SETTINGS, TXN_NOS
from engine.customers.store import delete_expired_idempotency_keys
from engine.http.auth import MerchantDirectory
from engine.http.middleware import auth_middleware, error_middleware, metrics_middleware
from engine.http.openapi import openapi_handler
from engine.http.ratelimit import ratelimit_ctx, ratelimit_middleware
from engine.http.routes import add_routes
from engine.merchants.invalidation import ChangeListener
from engine.services import API, ApiContext

log = logging.getLogger(__name__)

IDEMPOTENCY_CLEANUP_INTERVAL_S = 300.0
IDEMPOTENCY_CLEANUP_BATCH_MAX = 10_000


async def _idempotency_cleanup(ctx: ApiContext) -> None:
    """Keys older than the retention go, in bounded batches, every few minutes."""
    while True:
        await asyncio.sleep(IDEMPOTENCY_CLEANUP_INTERVAL_S)
        try:
            async with ctx.pool.acquire() as conn:
                await delete_expired_idempotency_keys(conn, ctx.settings.idempotency_retention_s,
                                                      IDEMPOTENCY_CLEANUP_BATCH_MAX)
        except Exception:  # the loop must survive a database blip
            log.warning("idempotency cleanup failed; will retry", exc_info=True)


async def _api_context(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    ctx = ApiContext(settings, app[POOL], app[TXN_NOS],
                     MerchantDirectory(app[POOL], settings.api_secret_key, settings.merchant_cache_s),
                     # Configured channel names (PAYENGINE_CHANNELS) when there are any, else the adapter kinds.
                     frozenset(spec.name for spec in settings.channels) or frozenset(adapter_classes()))
    for currency in settings.currencies:
        await ctx.platform_accounts(currency)
    app[API] = ctx
    # Merchant changes made by any process (admin API, CLI) drop the merchant from this auth cache at once.
    changes = ChangeListener(app[DATABASE_URL], ctx.merchants.forget)
    await changes.start()
    try:
        async with background(("idempotency-cleanup", _idempotency_cleanup(ctx))):
            yield
    finally:
        await changes.stop()


async def metrics_handler(request: web.Request) -> web.Response:
    response = web.Response(body=generate_latest())
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


async def noop_handler(request: web.Request) -> web.Response:
    """The benchmark's ceiling: same stack and middlewares, no work."""
    await request.read()
    return web.Response(body=b'{"ok":true}', content_type="application/json")


def setup_api(app: web.Application) -> None:
    from engine.payments.expiry import expiry_ctx  # here: it imports this package
    from engine.webhooks.wiring import setup_webhooks

    app.middlewares.extend([metrics_middleware, error_middleware, auth_middleware, ratelimit_middleware])
    app.cleanup_ctx.extend([_api_context, ratelimit_ctx, expiry_ctx])
    setup_webhooks(app)
    add_routes(app)
    app.router.add_get("/openapi.json", openapi_handler)
    app.router.add_get("/metrics", metrics_handler)
    if app[SETTINGS].bench_noop:
        app.router.add_post("/bench/noop", noop_handler)
