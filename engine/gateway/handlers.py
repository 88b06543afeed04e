"""Operator endpoints of the gateway (admin token checked by the API's middleware for /admin/*).

GET  /admin/exceptions?status=open|resolved&kind=&payment_id=&limit=   newest first
POST /admin/exceptions/{id}/resolve {"resolution": "..."}              open -> resolved
GET  /admin/gateway                                                    breaker phase and quality per channel
"""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime
from typing import Annotated, Literal

import msgspec
from aiohttp import web
from msgspec import Meta

from engine.gateway.store import ExceptionRecord, list_exceptions, resolve_exception
from engine.services import services_of

LIST_LIMIT_MAX = 500


class ExceptionQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    status: Literal["open", "resolved"] | None = None
    kind: Annotated[str, Meta(max_length=64)] | None = None
    payment_id: Annotated[str, Meta(max_length=64)] | None = None
    limit: Annotated[int, Meta(ge=1, le=LIST_LIMIT_MAX)] = 100


class Resolve(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    resolution: Annotated[str, Meta(min_length=1, max_length=500)]


def _bad_request(message: str) -> web.Response:
    body = {"error": {"type": "invalid_request_error", "code": "invalid_parameter", "message": message}}
    return web.Response(status=400, body=msgspec.json.encode(body), content_type="application/json")


def _json(obj: object, status: int = 200) -> web.Response:
    return web.Response(status=status, body=msgspec.json.encode(obj), content_type="application/json")


def _view(record: ExceptionRecord) -> dict[str, object]:
    return dataclasses.asdict(record)


async def list_exceptions_handler(request: web.Request) -> web.Response:
    try:
        query = msgspec.convert(dict(request.query), ExceptionQuery, strict=False)
    except msgspec.ValidationError as error:
        return _bad_request(str(error))
    gw = services_of(request).gateway
    async with gw.pool.acquire() as conn:
        found = await list_exceptions(conn, query.status, query.kind, query.payment_id, query.limit)
    return _json({"data": [_view(r) for r in found]})


async def resolve_exception_handler(request: web.Request) -> web.Response:
    try:
        body = msgspec.json.decode(await request.read(), type=Resolve)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        return _bad_request(str(error))
    gw = services_of(request).gateway
    async with gw.pool.acquire() as conn:
        resolved = await resolve_exception(conn, request.match_info["id"], body.resolution, datetime.now(UTC))
    if not resolved:
        return _json({"error": {"type": "invalid_request_error", "code": "not_found",
                                "message": "no open exception with that id"}}, 404)
    return _json({"id": request.match_info["id"], "status": "resolved"})


async def gateway_status_handler(request: web.Request) -> web.Response:
    gw = services_of(request).gateway
    health = gw.health.snapshot(time.monotonic())
    return _json({"channels": {name: health.get(name, {"breaker": "closed", "samples": 0}) for name in gw.channels}})


def add_admin_routes(app: web.Application) -> None:
    app.router.add_get("/admin/exceptions", list_exceptions_handler)
    app.router.add_post("/admin/exceptions/{id}/resolve", resolve_exception_handler)
    app.router.add_get("/admin/gateway", gateway_status_handler)
