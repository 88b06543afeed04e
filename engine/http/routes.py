"""The route table: every domain's ``ROUTES``, registered here; /openapi.json is built from the same table."""

from __future__ import annotations

import msgspec
from aiohttp import web

from engine.audit import handlers as audit
from engine.controls import handlers as controls
from engine.customers import handlers as customers
from engine.dayend import handlers as dayend
from engine.desk import handlers as desk
from engine.gateway import handlers as gateway
from engine.gateway.notify import notify_handler
from engine.http.health import healthz, metrics_handler, readyz
from engine.ledger_admin import handlers as ledger_admin
from engine.merchants import handlers as merchants
from engine.payments import handlers as payments
from engine.payouts import handlers as payouts
from engine.recon import handlers as recon
from engine.reports import handlers as reports
from engine.reroutes import handlers as reroutes
from engine.settlement import handlers as settlement
from engine.transfers import handlers as transfers
from engine.web.route import RouteSpec
from engine.webhooks import handlers as webhooks


class Health(msgspec.Struct, frozen=True):
    status: str  # ok | ready | degraded | unavailable
    problems: dict[str, str] | None = None


# The probes, the metrics and the channels' callbacks: no credentials (a channel signs its notify with its
# own key, checked by its adapter), documented so a load balancer, Prometheus and a channel know them.
OPEN_ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("GET", "/healthz", healthz, "Liveness: the process answers", Health, errors=(), auth="none"),
    RouteSpec("GET", "/readyz", readyz, "Readiness: 503 only when PostgreSQL is unreachable; Redis away is 200 "
              "degraded", Health, errors=(503,), auth="none"),
    RouteSpec("GET", "/metrics", metrics_handler, "Prometheus metrics (text exposition format)", None, errors=(),
              auth="none"),
    RouteSpec("POST", "/channels/{channel}/notify", notify_handler,
              "A channel's payment callback, in that channel's own signed format (answered in its format)", None,
              errors=(404,), auth="none"),
)

ROUTES: tuple[RouteSpec, ...] = (
    *OPEN_ROUTES,
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
    *audit.ROUTES,
    *desk.ROUTES,
    *reroutes.ROUTES,
    *reports.ROUTES,
)


def add_routes(app: web.Application, bench_noop: bool = False) -> None:
    for spec in ROUTES:
        app.router.add_route(spec.method, spec.path, spec.handler)
    if bench_noop:
        app.router.add_post("/bench/noop", noop_handler)


async def noop_handler(request: web.Request) -> web.Response:
    """The benchmark's ceiling: same stack and middlewares, no work."""
    await request.read()
    return web.Response(body=b'{"ok":true}', content_type="application/json")
