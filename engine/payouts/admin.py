"""Admin endpoints of held payouts (bearer admin token, checked by the API's auth middleware):

    GET  /admin/payouts?held=true[&merchant_id=&limit=&starting_after=]   held payouts, newest first
    GET  /admin/payouts/{id}                                             one payout with its internals
    POST /admin/payouts/{id}/resolve  {"action", "reason", "operator"?}  retry | fail | succeed a held one

Decode, call holds.py, encode. The limits/risk record alone: GET /admin/payouts/{id}/controls
(engine/controls/handlers.py, with payments and transfers).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import msgspec
from aiohttp import web

from engine.bootstrap import BOOKER
from engine.controls.usage_release import release_by_gate
from engine.errors import InvalidRequest
from engine.http.middleware import RAW_BODY
from engine.payments.wire import NoQuery
from engine.payouts import holds
from engine.payouts import wire as pw
from engine.services import API
from engine.web.decoding import decode_body, decode_query
from engine.web.idempotency import json_response


async def list_held_payouts(request: web.Request) -> web.Response:
    query = decode_query(request.query, pw.AdminPayoutsQuery)
    if not query.held:
        raise InvalidRequest("held", "only held payouts are listed here: held=true")
    async with request.app[API].pool.acquire() as conn:
        found = await holds.list_held(conn, query.merchant_id, query.starting_after, query.limit)
    return json_response(200, msgspec.json.encode(found))


async def get_payout(request: web.Request) -> web.Response:
    decode_query(request.query, NoQuery)
    async with request.app[API].pool.acquire() as conn:
        view = await holds.show(conn, request.match_info["id"])
    return json_response(200, msgspec.json.encode(view))


async def resolve_payout(request: web.Request) -> web.Response:
    req = decode_body(request[RAW_BODY], pw.ResolvePayout)
    ctx, payout_id = request.app[API], request.match_info["id"]
    books = holds.PlatformBooks(ctx.pool, request.app[BOOKER], ctx.txn_nos, ctx.platform_accounts)
    # Shielded: a client that hangs up cannot cut the booking from the usage given back after it.
    await asyncio.shield(holds.resolve(books, payout_id, req.action, req.reason, holds.actor(req.operator, "admin-api"),
                                       datetime.now(UTC), release_by_gate(request.app)))
    async with ctx.pool.acquire() as conn:
        view = await holds.show(conn, payout_id)
    return json_response(200, msgspec.json.encode(view))
