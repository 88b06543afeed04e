"""The HTTP app of an API process: middlewares in their order and every route of the route table.

Its Services come from engine/bootstrap.py (one cleanup context); nothing here opens a connection.
"""

from __future__ import annotations

from aiohttp import web

from engine.gateway.sync_voucher import sync_voucher_middleware
from engine.http.middleware import auth_middleware, error_middleware, metrics_middleware
from engine.http.openapi import openapi_handler
from engine.http.paths import path_params_middleware
from engine.http.ratelimit import ratelimit_middleware
from engine.http.routes import add_routes
from engine.settings import Settings

BODY_SIZE_MAX = 64 * 1024


def build_http_app(settings: Settings) -> web.Application:
    middlewares = [metrics_middleware, error_middleware, path_params_middleware, auth_middleware,
                   ratelimit_middleware]
    if settings.voucher_sync:  # the benchmark's synchronous voucher mode (engine/gateway/sync_voucher.py)
        middlewares.append(sync_voucher_middleware)
    app = web.Application(client_max_size=BODY_SIZE_MAX, middlewares=middlewares)
    add_routes(app, bench_noop=settings.bench_noop)
    app.router.add_get("/openapi.json", openapi_handler)
    return app
