"""Operator endpoints of the gateway (admin token checked by the API's middleware for /admin/*).

GET  /admin/exceptions?status=open|resolved&kind=&payment_id=&limit=   newest first
POST /admin/exceptions/{id}/resolve {"resolution": "..."}              open -> resolved
GET  /admin/gateway                                                    breaker phase and quality per channel
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import msgspec
from aiohttp import web

from engine.errors import NotFound
from engine.gateway import wire
from engine.gateway.store import list_exceptions, resolve_exception
from engine.services import services_of
from engine.web.decoding import decode_body, decode_query
from engine.web.idempotency import ok_json
from engine.web.request import RAW_BODY
from engine.web.route import RouteSpec


async def list_exceptions_handler(request: web.Request) -> web.Response:
    query = decode_query(request.query, wire.ExceptionQuery)
    gw = services_of(request).gateway
    async with gw.pool.acquire() as conn:
        found = await list_exceptions(conn, query.status, query.kind, query.payment_id, query.limit)
    return ok_json(wire.ExceptionList([msgspec.convert(r, wire.ExceptionView, from_attributes=True) for r in found]))


async def resolve_exception_handler(request: web.Request) -> web.Response:
    body = decode_body(request[RAW_BODY], wire.ExceptionResolve)
    exception_id = request.match_info["id"]
    gw = services_of(request).gateway
    async with gw.pool.acquire() as conn:
        resolved = await resolve_exception(conn, exception_id, body.resolution, datetime.now(UTC))
    if not resolved:
        raise NotFound("open exception", exception_id)
    return ok_json(wire.ExceptionResolved(exception_id, "resolved"))


async def gateway_status_handler(request: web.Request) -> web.Response:
    gw = services_of(request).gateway
    health = gw.health.snapshot(time.monotonic())
    channels = {name: msgspec.convert(health.get(name, {"breaker": "closed", "samples": 0}), wire.ChannelHealthView)
                for name in gw.channels}
    return ok_json(wire.GatewayStatus(channels))


ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("GET", "/admin/exceptions", list_exceptions_handler,
              "Exception records (bad channel answers, unknown orders, amount mismatches), newest first",
              wire.ExceptionList, query=wire.ExceptionQuery, errors=(400, 401), auth="admin"),
    RouteSpec("POST", "/admin/exceptions/{id}/resolve", resolve_exception_handler,
              "Mark an open exception record resolved", wire.ExceptionResolved, 200, wire.ExceptionResolve,
              errors=(400, 401, 404, 413), auth="admin"),
    RouteSpec("GET", "/admin/gateway", gateway_status_handler,
              "Breaker phase and measured quality of every configured channel", wire.GatewayStatus,
              errors=(401,), auth="admin"),
)
