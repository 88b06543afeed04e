"""Transfer endpoints: decode, call the flow or the store, encode. No SQL here.

POST /v1/transfers            book a transfer (idempotent; 201, or 402 insufficient_funds with nothing booked)
GET  /v1/transfers/{id}       one transfer of this merchant
GET  /v1/transfers            newest first, filter by transfer_no or customer_id (payer or payee)
"""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
from aiohttp import web

from engine.errors import NotFound
from engine.services import services_of
from engine.transfers import flow
from engine.transfers import wire as transfer_wire
from engine.transfers.store import get_transfer, list_transfers
from engine.web import wire as web_wire
from engine.web.decoding import decode_body, decode_query
from engine.web.idempotency import json_response, run_idempotent
from engine.web.request import RAW_BODY, merchant_of
from engine.web.route import POST_ERRORS, RouteSpec


async def create_transfer(request: web.Request) -> web.Response:
    ctx, merchant, raw = services_of(request), merchant_of(request), request[RAW_BODY]
    req = decode_body(raw, transfer_wire.CreateTransfer)
    return await run_idempotent(request, ctx, merchant.id, raw, lambda slot: flow.create_transfer(
        ctx, ctx.booker, merchant, req, slot, datetime.now(UTC)), folded=True)


async def get_transfer_handler(request: web.Request) -> web.Response:
    decode_query(request.query, web_wire.NoQuery)
    ctx, merchant = services_of(request), merchant_of(request)
    transfer_id = request.match_info["id"]
    async with ctx.pool.acquire() as conn:
        transfer = await get_transfer(conn, merchant.id, transfer_id)
    if transfer is None:
        raise NotFound("transfer", transfer_id)
    return json_response(200, msgspec.json.encode(flow.transfer_view(transfer)))


async def list_transfers_handler(request: web.Request) -> web.Response:
    q = decode_query(request.query, transfer_wire.ListTransfersQuery)
    ctx, merchant = services_of(request), merchant_of(request)
    async with ctx.pool.acquire() as conn:
        page, has_more = await list_transfers(conn, merchant.id, q.transfer_no, q.customer_id, q.limit,
                                              q.starting_after)
    view = transfer_wire.TransferList([flow.transfer_view(t) for t in page], has_more)
    return json_response(200, msgspec.json.encode(view))


ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("POST", "/v1/transfers", create_transfer,
              "Transfer to a customer's wallet from another customer's wallet or the merchant's available balance",
              transfer_wire.Transfer, 201, transfer_wire.CreateTransfer, errors=POST_ERRORS),
    RouteSpec("GET", "/v1/transfers", list_transfers_handler, "List transfers, newest first",
              transfer_wire.TransferList, query=transfer_wire.ListTransfersQuery),
    RouteSpec("GET", "/v1/transfers/{id}", get_transfer_handler, "One transfer",
              transfer_wire.Transfer, query=web_wire.NoQuery),
)
