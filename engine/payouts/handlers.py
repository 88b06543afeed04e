"""HTTP handlers of the payout endpoints: decode, call the flow (or holds.py), encode. No SQL here.

The merchant's: POST /v1/payouts, GET /v1/payouts/{id}. The operators' (admin token, checked by the auth
middleware): held payouts listed, shown with their internals, and resolved (retry | fail | succeed). The
limits/risk record alone: GET /admin/payouts/{id}/controls (engine/controls/handlers.py).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import msgspec
from aiohttp import web

from engine.errors import InvalidRequest
from engine.payouts import flow, holds
from engine.payouts import wire as payout_wire
from engine.payouts.wire import CreatePayout
from engine.services import services_of
from engine.web import wire as web_wire
from engine.web.decoding import decode_body, decode_query
from engine.web.idempotency import json_response, run_idempotent
from engine.web.request import RAW_BODY, merchant_of
from engine.web.route import POST_ERRORS, RouteSpec
from engine.web.wire import NoQuery


async def create_payout(request: web.Request) -> web.Response:
    ctx, merchant, raw = services_of(request), merchant_of(request), request[RAW_BODY]
    req = decode_body(raw, CreatePayout)
    return await run_idempotent(request, ctx, merchant.id, raw, lambda slot: flow.create_payout(
        ctx, ctx.booker, merchant, req, slot, datetime.now(UTC)))


async def get_payout(request: web.Request) -> web.Response:
    decode_query(request.query, NoQuery)
    body = await flow.read_payout(services_of(request), merchant_of(request), request.match_info["id"])
    return json_response(200, body)


# ---------------------------------------------------------------- held payouts, for operators

async def list_held_payouts(request: web.Request) -> web.Response:
    query = decode_query(request.query, payout_wire.AdminPayoutsQuery)
    if not query.held:
        raise InvalidRequest("held", "only held payouts are listed here: held=true")
    async with services_of(request).pool.acquire() as conn:
        found = await holds.list_held(conn, query.merchant_id, query.starting_after, query.limit)
    return json_response(200, msgspec.json.encode(found))


async def admin_get_payout(request: web.Request) -> web.Response:
    decode_query(request.query, NoQuery)
    async with services_of(request).pool.acquire() as conn:
        view = await holds.show(conn, request.match_info["id"])
    return json_response(200, msgspec.json.encode(view))


async def resolve_payout(request: web.Request) -> web.Response:
    req = decode_body(request[RAW_BODY], payout_wire.ResolvePayout)
    ctx, payout_id = services_of(request), request.match_info["id"]
    books = holds.PlatformBooks(ctx.pool, ctx.booker, ctx.txn_nos, ctx.platform_accounts)
    # Shielded: a client that hangs up cannot cut the booking from the usage given back after it.
    await asyncio.shield(holds.resolve(books, payout_id, req.action, req.reason, holds.actor(req.operator, "admin-api"),
                                       datetime.now(UTC), ctx.release_usage))
    async with ctx.pool.acquire() as conn:
        view = await holds.show(conn, payout_id)
    return json_response(200, msgspec.json.encode(view))


ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("POST", "/v1/payouts", create_payout,
              "Pay out to a bank card (customer wallet) or bank account (merchant available); amount frozen now",
              payout_wire.Payout, 201, payout_wire.CreatePayout, errors=(*POST_ERRORS, 403, 424, 503)),
    RouteSpec("GET", "/v1/payouts/{id}", get_payout, "One payout", payout_wire.Payout,
              query=web_wire.NoQuery),
    RouteSpec("GET", "/admin/payouts", list_held_payouts,
              "Held payouts (held=true), newest first, any merchant", payout_wire.HeldPayoutList,
              query=payout_wire.AdminPayoutsQuery, errors=(400, 401), auth="admin"),
    RouteSpec("GET", "/admin/payouts/{id}", admin_get_payout,
              "A payout with its internals: hold, channel, attempts, last error (masked), limits/risk record, "
              "transitions", payout_wire.AdminPayout, query=web_wire.NoQuery, auth="admin"),
    RouteSpec("POST", "/admin/payouts/{id}/resolve", resolve_payout,
              "Resolve a held payout: retry (ask the channel again), fail (nothing was paid: unfrozen) or succeed "
              "(our amount was paid: settled); 409 illegal_transition when it is not held",
              payout_wire.AdminPayout, 200, payout_wire.ResolvePayout, errors=(400, 401, 404, 409, 413),
              auth="admin"),
)
