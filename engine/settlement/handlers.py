"""Admin routes of settlement (admin token checked by the API's middleware for /admin/*).

    POST /admin/settlements {"date", "merchant_id"?}              settle what is due on a closed date
    GET  /admin/settlements?date=&merchant_id=                    batches of a date
    GET  /admin/settlements/held?merchant_id=&limit=              payments held back, and why
    GET  /admin/settlements/{id}/payments?after=&limit=           a batch's remittance advice
    PUT  /admin/merchants/{id}/settlement-cycle {"cycle_days"}    settle the merchant D+cycle_days

A run is shielded: a client that hangs up does not cut a settlement in half.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from aiohttp import web

from engine.errors import NotFound
from engine.merchants.store import set_cycle_if_merchant
from engine.services import services_of
from engine.settlement import advice_store, store, wire
from engine.settlement.flow import settle
from engine.settlement.views import batch_view, held_list, remittance
from engine.web.decoding import decode_body, decode_query
from engine.web.idempotency import ok_json
from engine.web.request import RAW_BODY
from engine.web.route import RouteSpec


async def post_settlement(request: web.Request) -> web.Response:
    req = decode_body(request[RAW_BODY], wire.SettleRequest)
    svc = services_of(request)
    txn_nos, calendar = svc.txn_nos, svc.calendar
    result = await asyncio.shield(settle(svc.pool, svc.booker, req.date, lambda: txn_nos.next(datetime.now(UTC)),
                                         calendar.current, req.merchant_id))
    return ok_json(wire.SettlementRun(result.settle_date, result.created, result.carried,
                                  sum(b.net for b in result.batches), [batch_view(b) for b in result.batches]))


async def get_settlements(request: web.Request) -> web.Response:
    query = decode_query(request.query, wire.SettlementsQuery)
    async with services_of(request).pool.acquire() as conn:
        batches = await store.batches_of(conn, query.date, query.merchant_id)
    return ok_json(wire.BatchList(query.date, [batch_view(b) for b in batches]))


async def get_held(request: web.Request) -> web.Response:
    query = decode_query(request.query, wire.HeldQuery)
    async with services_of(request).pool.acquire() as conn:
        held = await advice_store.held_payments(conn, query.merchant_id, query.limit + 1)
    return ok_json(held_list(held, query.limit))


async def get_remittance(request: web.Request) -> web.Response:
    query = decode_query(request.query, wire.RemittanceQuery)
    batch_id = request.match_info["id"]
    async with services_of(request).pool.acquire() as conn:
        batch = await advice_store.batch_by_id(conn, batch_id)
        if batch is None:
            raise NotFound("settlement batch", batch_id)
        lines = await advice_store.remittance_lines(conn, batch_id, query.after, query.limit + 1)
    return ok_json(remittance(batch, lines, query.limit))


async def put_cycle(request: web.Request) -> web.Response:
    req = decode_body(request[RAW_BODY], wire.CycleRequest)
    merchant_id = request.match_info["id"]
    async with services_of(request).pool.acquire() as conn:
        if not await set_cycle_if_merchant(conn, merchant_id, req.cycle_days):
            raise NotFound("merchant", merchant_id)
    return ok_json(wire.CycleView(merchant_id, req.cycle_days))


# POST /admin/settlements books for every merchant due: tests/api/test_openapi_fuzz.py fuzzes it only
# against a private server of its own.
ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("POST", "/admin/settlements", post_settlement,
              "Settle what is due on a closed accounting date (a rerun settles only what is still due)",
              wire.SettlementRun, 200, wire.SettleRequest, errors=(400, 401, 409, 413), auth="admin"),
    RouteSpec("GET", "/admin/settlements", get_settlements, "The settlement batches of a date",
              wire.BatchList, query=wire.SettlementsQuery, errors=(400, 401), auth="admin"),
    RouteSpec("GET", "/admin/settlements/held", get_held,
              "Succeeded channel payments held back from settlement, with the open difference (or the missing "
              "reconciliation) that holds each", wire.HeldList, query=wire.HeldQuery, errors=(400, 401),
              auth="admin"),
    RouteSpec("GET", "/admin/settlements/{id}/payments", get_remittance,
              "A batch's remittance advice: its payments, refunds and adjustments with gross, fee, refunds and net "
              "(paged by ?after=)", wire.Remittance, query=wire.RemittanceQuery, errors=(400, 401, 404),
              auth="admin"),
    RouteSpec("PUT", "/admin/merchants/{id}/settlement-cycle", put_cycle,
              "Set a merchant's settlement cycle (days after the accounting date)", wire.CycleView, 200,
              wire.CycleRequest, errors=(400, 401, 404, 413), auth="admin"),
)
