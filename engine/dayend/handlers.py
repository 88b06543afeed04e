"""Admin routes of the accounting day: day-end (reconciliations: engine/recon/handlers.py, settlements:
engine/settlement/handlers.py).

    POST /admin/day-end {"date"?}                      close the open date (or the named one)
    GET  /admin/day-end/{date}                         that day's run and report

A run is shielded: a client that hangs up does not cut a day-end in half.
"""

from __future__ import annotations

import asyncio
import hmac
from datetime import date
from typing import Any

import msgspec
import orjson
from aiohttp import web

from engine.dayend import store as dayend_store
from engine.dayend.flow import DayEndError, day_end_options, run_day_end
from engine.services import services_of


class DayEndRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    date: date | None = None


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def _error(status: int, type_: str, code: str, message: str, param: str | None = None) -> web.Response:
    return _json({"error": {"type": type_, "code": code, "message": message, "param": param}}, status)


def _authorized(request: web.Request) -> bool:
    given = request.headers.get("Authorization", "")
    return hmac.compare_digest(given.encode(), f"Bearer {services_of(request).settings.admin_token}".encode())


async def _body(request: web.Request, type_: type[Any]) -> Any:
    raw = await request.read()
    return msgspec.json.decode(raw or b"{}", type=type_)


def _guard(handler: Any) -> Any:
    """Admin token and body decoding errors, the same for every route here."""
    async def wrapped(request: web.Request) -> web.StreamResponse:
        if not _authorized(request):
            return _error(401, "authentication_error", "invalid_admin_token", "admin bearer token required")
        try:
            response: web.StreamResponse = await handler(request)
        except msgspec.ValidationError as exc:
            return _error(400, "invalid_request_error", "invalid_body", str(exc))
        except msgspec.DecodeError as exc:
            return _error(400, "invalid_request_error", "invalid_json", str(exc))
        return response
    return wrapped


def _day_end_json(row: dayend_store.DayEndRow) -> dict[str, Any]:
    return {"accounting_date": row.accounting_date.isoformat(), "status": row.status, "step": row.step,
            "attempts": row.attempts, "started_at": row.started_at.isoformat(),
            "finished_at": row.finished_at.isoformat() if row.finished_at else None, "error": row.error,
            "report": row.report}


async def post_day_end(request: web.Request) -> web.Response:
    req = await _body(request, DayEndRequest)
    svc = services_of(request)
    try:
        row = await asyncio.shield(run_day_end(svc.pool, req.date, day_end_options(svc.settings), svc.calendar))
    except DayEndError as exc:
        return _error(409, "conflict_error", getattr(exc, "code", "day_end_error"), str(exc))
    return _json(_day_end_json(row), 200 if row.status == "done" else 422)


async def get_day_end(request: web.Request) -> web.Response:
    try:
        day = date.fromisoformat(request.match_info["date"])
    except ValueError:
        return _error(400, "invalid_request_error", "invalid_date", "date must be YYYY-MM-DD", "date")
    async with services_of(request).pool.acquire() as conn:
        row = await dayend_store.get_day_end(conn, day)
    if row is None:
        return _error(404, "invalid_request_error", "not_found", f"no day-end for {day}")
    return _json(_day_end_json(row))


def setup_accounting_admin(app: web.Application) -> None:
    routes = [
        ("POST", "/admin/day-end", post_day_end), ("GET", "/admin/day-end/{date}", get_day_end),
    ]
    for method, path, handler in routes:
        app.router.add_route(method, path, _guard(handler))
