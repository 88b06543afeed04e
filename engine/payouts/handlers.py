"""HTTP handlers of the payout endpoints: decode, call the flow, encode. No SQL here."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from engine.bootstrap import BOOKER
from engine.http.middleware import RAW_BODY, merchant_of
from engine.payments.wire import NoQuery
from engine.payouts import flow
from engine.payouts.wire import CreatePayout
from engine.services import API
from engine.web.decoding import decode_body, decode_query
from engine.web.idempotency import json_response, run_idempotent


async def create_payout(request: web.Request) -> web.Response:
    ctx, merchant, raw = request.app[API], merchant_of(request), request[RAW_BODY]
    req = decode_body(raw, CreatePayout)
    return await run_idempotent(request, ctx, merchant.id, raw, lambda slot: flow.create_payout(
        ctx, request.app[BOOKER], merchant, req, slot, datetime.now(UTC)))


async def get_payout(request: web.Request) -> web.Response:
    decode_query(request.query, NoQuery)
    body = await flow.read_payout(request.app[API], merchant_of(request), request.match_info["id"])
    return json_response(200, body)
