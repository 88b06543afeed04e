"""Admin routes of the accounting day (admin token checked by the API's middleware for /admin/*).

    POST /admin/day-end {"date"?}      close the open date (or the named one)
    GET  /admin/day-end/{date}         that day's run and report

Reconciliations are engine/recon/handlers.py, settlements engine/settlement/handlers.py: both come after
a day-end, and this package knows nothing of them. A run is shielded: a client that hangs up does not
cut a day-end in half.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

import msgspec
from aiohttp import web

from engine.dayend import store, wire
from engine.dayend.flow import day_end_options, run_day_end
from engine.errors import InvalidRequest, NotFound
from engine.services import services_of
from engine.web.decoding import decode_body
from engine.web.idempotency import json_response
from engine.web.request import RAW_BODY
from engine.web.route import RouteSpec


def _view(row: store.DayEndRow) -> bytes:
    return msgspec.json.encode(msgspec.convert(row, wire.DayEndView, from_attributes=True))


async def post_day_end(request: web.Request) -> web.Response:
    req = decode_body(request[RAW_BODY], wire.DayEndRequest)
    svc = services_of(request)
    not_after = None if req.force else datetime.now(UTC).date()
    row = await asyncio.shield(run_day_end(svc.pool, req.date, day_end_options(svc.settings, not_after=not_after),
                                           svc.calendar))
    # A failed step is a finished run, answered as such (its error says which step and why).
    return json_response(200 if row.status == "done" else 422, _view(row))


async def get_day_end(request: web.Request) -> web.Response:
    try:
        day = date.fromisoformat(request.match_info["date"])
    except ValueError:
        raise InvalidRequest("date", "date must be YYYY-MM-DD") from None
    async with services_of(request).pool.acquire() as conn:
        row = await store.get_day_end(conn, day)
    if row is None:
        raise NotFound("day-end", day.isoformat(), "date")
    return json_response(200, _view(row))


# POST /admin/day-end closes the day for every merchant: tests/api/test_openapi_fuzz.py fuzzes it only
# against a private server of its own.
ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("POST", "/admin/day-end", post_day_end,
              "Close the open accounting date (or resume its run): switch, drain, trial balance, report. "
              "422 with the run when a step failed", wire.DayEndView, 200, wire.DayEndRequest,
              errors=(400, 401, 409, 413, 422), auth="admin"),
    RouteSpec("GET", "/admin/day-end/{date}", get_day_end, "A date's day-end run and report", wire.DayEndView,
              errors=(400, 401, 404), auth="admin"),
)
