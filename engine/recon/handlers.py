"""Admin routes of reconciliation (admin token checked by the API's middleware for /admin/*).

    POST /admin/reconciliations {"channel", "date"}    reconcile one channel's statement of a date
    POST /admin/reconciliations/reruns {"channel", "date", "operator"}   re-reconcile it: a new run supersedes
                                                       the live one (engine/recon/supersede.py)
    GET  /admin/reconciliations?channel=&date=&status=&superseded=&limit=   runs, with live counts
    GET  /admin/reconciliations/{id}                   counts per outcome (live), summary, exceptions
    POST /admin/reconciliations/items/{id}/resolve     close a difference: adjust, reverse or explain

A run is shielded: a client that hangs up does not cut it in half.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from aiohttp import web

from channels.errors import ChannelError
from engine.errors import NotFound
from engine.recon import views, wire
from engine.recon.flow import reconcile
from engine.recon.rerun import rerun
from engine.recon.resolution import resolve
from engine.services import services_of
from engine.web.decoding import decode_body, decode_query
from engine.web.errors import ApiError
from engine.web.idempotency import ok_json
from engine.web.request import RAW_BODY
from engine.web.route import RouteSpec

ITEM_ID_MAX = 2**63 - 1  # recon_items.id is a bigint


async def _view(request: web.Request, run_id: str) -> wire.ReconView:
    async with services_of(request).pool.acquire() as conn:
        return await views.run_view(conn, run_id)


async def post_reconciliation(request: web.Request) -> web.Response:
    req = decode_body(request[RAW_BODY], wire.ReconRequest)
    try:
        run = await asyncio.shield(reconcile(services_of(request).gateway, req.channel, req.date))
    except ChannelError as exc:  # the run stays 'running'; the next call fetches the file again
        raise ApiError(503, "channel_error", "statement_unavailable", str(exc)) from exc
    # A refused statement (another channel's or day's file) is a finished run, answered as such.
    return ok_json(await _view(request, run.id), 422 if run.status == "refused" else 201)


async def post_rerun(request: web.Request) -> web.Response:
    req = decode_body(request[RAW_BODY], wire.RerunRequest)
    try:
        run = await asyncio.shield(rerun(services_of(request).gateway, req.channel, req.date, req.operator))
    except ChannelError as exc:  # nothing written: the live run stays as it was
        raise ApiError(503, "channel_error", "statement_unavailable", str(exc)) from exc
    return ok_json(await _view(request, run.id), 201)


async def list_reconciliations(request: web.Request) -> web.Response:
    query = decode_query(request.query, wire.RunsQuery)
    async with services_of(request).pool.acquire() as conn:
        return ok_json(await views.run_list(conn, query))


async def get_reconciliation(request: web.Request) -> web.Response:
    return ok_json(await _view(request, request.match_info["id"]))


async def post_resolve_item(request: web.Request) -> web.Response:
    req = decode_body(request[RAW_BODY], wire.ItemResolve)
    raw_id = request.match_info["id"]
    if not (raw_id.isascii() and raw_id.isdigit() and int(raw_id) <= ITEM_ID_MAX):
        raise NotFound("reconciliation item", raw_id)
    return ok_json(await resolve(services_of(request), int(raw_id), req, datetime.now(UTC)))


# The POSTs book and change what every merchant settles: tests/api/test_openapi_fuzz.py fuzzes them
# only against a private server of their own.
ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("POST", "/admin/reconciliations", post_reconciliation,
              "Reconcile one channel's statement of a closed date (once; a repeat returns the live run). "
              "422 with the run when the statement is refused", wire.ReconView, 201, wire.ReconRequest,
              errors=(400, 401, 409, 413, 422, 503), auth="admin"),
    RouteSpec("POST", "/admin/reconciliations/reruns", post_rerun,
              "Re-reconcile a reconciled date against the channel's statement as served now: a new run supersedes "
              "the live one (both kept); open items close (resolution 'superseded'), those still differing "
              "carry into it. Refused (nothing written) when the date was never reconciled or the file is wrong",
              wire.ReconView, 201, wire.RerunRequest, errors=(400, 401, 404, 409, 413, 422, 503), auth="admin"),
    RouteSpec("GET", "/admin/reconciliations", list_reconciliations,
              "Reconciliation runs, newest date first, with live counts; filter by channel, date, status, "
              "superseded", wire.RunList, query=wire.RunsQuery, errors=(400, 401), auth="admin"),
    RouteSpec("GET", "/admin/reconciliations/{id}", get_reconciliation,
              "A reconciliation run: counts per outcome, summary, open exception items", wire.ReconView,
              errors=(401, 404), auth="admin"),
    RouteSpec("POST", "/admin/reconciliations/items/{id}/resolve", post_resolve_item,
              "Close an open difference by what happens to its money: adjust or reverse (a desk proposal; it "
              "closes when a second operator approves) or explain (no money moves)", wire.ItemResolved, 200,
              wire.ItemResolve, errors=(400, 401, 404, 409, 413, 422), auth="admin"),
)
