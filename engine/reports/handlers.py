"""`GET /admin/reports/day?date=`: the day report as JSON (the page form: `payengine report day --out`)."""

from __future__ import annotations

from aiohttp import web

from engine.reports import wire
from engine.reports.flow import build_day_report
from engine.services import services_of
from engine.web.decoding import decode_query
from engine.web.idempotency import ok_json
from engine.web.request import now_utc
from engine.web.route import RouteSpec


async def day_report(request: web.Request) -> web.Response:
    q = decode_query(request.query, wire.DayReportQuery)
    return ok_json(await build_day_report(services_of(request).pool, q.date, now_utc()))


ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("GET", "/admin/reports/day", day_report,
              "One day's report: its day-end, reconciliation runs (live counts), settlement batches (totals per "
              "currency) and the exceptions open now", wire.DayReport, query=wire.DayReportQuery,
              errors=(400, 401), auth="admin"),
)
