"""The route table: every domain's ``ROUTES``, registered here; /openapi.json is built from the same table."""

from __future__ import annotations

from aiohttp import web

from engine.controls import handlers as controls
from engine.customers import handlers as customers
from engine.dayend import handlers as dayend
from engine.gateway import handlers as gateway
from engine.gateway.notify import notify_handler
from engine.http.health import healthz, metrics_handler, readyz
from engine.ledger_admin import trial_balance
from engine.ledger_admin.accounts import setup_admin_accounts
from engine.ledger_admin.buffer import setup_admin_buffer
from engine.merchants import handlers as merchants
from engine.payments import handlers as payments
from engine.payouts import handlers as payouts
from engine.recon import handlers as recon
from engine.settlement import handlers as settlement
from engine.transfers import handlers as transfers
from engine.web.route import RouteSpec
from engine.webhooks import handlers as webhooks

ROUTES: tuple[RouteSpec, ...] = (
    *customers.ROUTES,
    *payments.ROUTES,
    *payouts.ROUTES,
    *transfers.ROUTES,
    *webhooks.ROUTES,
    *merchants.ROUTES,
    *trial_balance.ROUTES,
    *controls.ROUTES,
    *gateway.ROUTES,
    *dayend.ROUTES,
    *recon.ROUTES,
    *settlement.ROUTES,
)


def add_routes(app: web.Application, bench_noop: bool = False) -> None:
    for spec in ROUTES:
        app.router.add_route(spec.method, spec.path, spec.handler)
    # Not in the table yet: their own auth and error helpers (engine/ledger_admin).
    setup_admin_buffer(app)
    setup_admin_accounts(app)
    app.router.add_post("/channels/{channel}/notify", notify_handler)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_handler)
    if bench_noop:
        app.router.add_post("/bench/noop", noop_handler)


async def noop_handler(request: web.Request) -> web.Response:
    """The benchmark's ceiling: same stack and middlewares, no work."""
    await request.read()
    return web.Response(body=b'{"ok":true}', content_type="application/json")
