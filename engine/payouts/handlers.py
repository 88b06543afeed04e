"""HTTP handlers of the payout endpoints: decode, call the flow, encode. No SQL here."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from engine.api.context import API
from engine.api.decoding import decode_body, decode_query
from engine.api.idempotency import json_response, run_idempotent
from engine.api.middleware import RAW_BODY, merchant_of
from engine.api.payout_wire import CreatePayout
from engine.api.wire import NoQuery
from engine.app import BOOKER
from engine.payouts import flow


async def create_payout(request: web.Request) -> web.Response:
    ctx, merchant, raw = request.app[API], merchant_of(request), request[RAW_BODY]
    req = decode_body(raw, CreatePayout)
    return await run_idempotent(request, ctx, merchant.id, raw, lambda slot: flow.create_payout(
        ctx, request.app[BOOKER], merchant, req, slot, datetime.now(UTC)))


async def get_payout(request: web.Request) -> web.Response:
    decode_query(request.query, NoQuery)
    body = await flow.read_payout(request.app[API], merchant_of(request), request.match_info["id"])
    return json_response(200, body)
