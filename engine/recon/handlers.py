"""Admin routes of reconciliation (admin token checked by the API's middleware for /admin/*).

    POST /admin/reconciliations {"channel", "date"}    reconcile one channel's statement of a date
    GET  /admin/reconciliations/{id}                   counts per outcome, summary, exceptions
    POST /admin/reconciliations/items/{id}/resolve     close a difference: adjust, reverse or explain

A run is shielded: a client that hangs up does not cut it in half.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from aiohttp import web

from channels.errors import ChannelError
from engine.errors import NotFound
from engine.recon import store, wire
from engine.recon.flow import reconcile
from engine.recon.resolution import resolve
from engine.services import services_of
from engine.web.decoding import decode_body
from engine.web.errors import ApiError
from engine.web.idempotency import ok_json
from engine.web.request import RAW_BODY
from engine.web.route import RouteSpec

EXCEPTIONS_LISTED_MAX = 1000
ITEM_ID_MAX = 2**63 - 1  # recon_items.id is a bigint



async def _view(request: web.Request, run_id: str) -> wire.ReconView:
    async with services_of(request).pool.acquire() as conn:
        run = await store.get_run(conn, run_id)
        if run is None:
            raise NotFound("reconciliation", run_id)
        counts = await store.item_counts(conn, run_id)
        exceptions = await store.items_of(conn, run_id, True, EXCEPTIONS_LISTED_MAX)
    return wire.ReconView(run.id, run.channel, run.statement_date, run.status, run.error, run.started_at,
                          run.finished_at, {outcome: sum(states.values()) for outcome, states in counts.items()},
                          counts, run.summary, run.malformed or [], exceptions)


async def post_reconciliation(request: web.Request) -> web.Response:
    req = decode_body(request[RAW_BODY], wire.ReconRequest)
    try:
        run = await asyncio.shield(reconcile(services_of(request).gateway, req.channel, req.date))
    except ChannelError as exc:  # the run stays 'running'; the next call fetches the file again
        raise ApiError(503, "channel_error", "statement_unavailable", str(exc)) from exc
    # A refused statement (another channel's or day's file) is a finished run, answered as such.
    return ok_json(await _view(request, run.id), 422 if run.status == "refused" else 201)


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
              "Reconcile one channel's statement of a closed date (once; a rerun returns the run). "
              "422 with the run when the statement is refused", wire.ReconView, 201, wire.ReconRequest,
              errors=(400, 401, 409, 413, 422, 503), auth="admin"),
    RouteSpec("GET", "/admin/reconciliations/{id}", get_reconciliation,
              "A reconciliation run: counts per outcome, summary, open exception items", wire.ReconView,
              errors=(401, 404), auth="admin"),
    RouteSpec("POST", "/admin/reconciliations/items/{id}/resolve", post_resolve_item,
              "Close an open difference by what happens to its money: adjust or reverse (a desk proposal; it "
              "closes when a second operator approves) or explain (no money moves)", wire.ItemResolved, 200,
              wire.ItemResolve, errors=(400, 401, 404, 409, 413, 422), auth="admin"),
)
