"""The route table: every domain's ``ROUTES``, registered here; /openapi.json is built from the same table."""

from __future__ import annotations

from aiohttp import web

from engine.controls import handlers as controls
from engine.customers import handlers as customers
from engine.dayend import handlers as dayend
from engine.gateway import handlers as gateway
from engine.gateway.notify import notify_handler
from engine.http.health import healthz, metrics_handler, readyz
from engine.ledger_admin import handlers as ledger_admin
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
    *ledger_admin.ROUTES,
    *controls.ROUTES,
    *gateway.ROUTES,
    *dayend.ROUTES,
    *recon.ROUTES,
    *settlement.ROUTES,
)


def add_routes(app: web.Application, bench_noop: bool = False) -> None:
    for spec in ROUTES:
        app.router.add_route(spec.method, spec.path, spec.handler)
    # Outside the table: the channels' own notify protocol, the probes and the metrics (no JSON API).
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
