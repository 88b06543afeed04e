"""The operators' routes for refunds the channel refused: list them, re-route one (a merchant's refund, or an
exception's auto-refund of a payment paid after we closed it). No SQL here."""

from __future__ import annotations

import asyncio

from aiohttp import web

from engine.reroutes import flow
from engine.reroutes import wire as rw
from engine.services import Services, services_of
from engine.web.decoding import decode_body, decode_query
from engine.web.idempotency import ok_json
from engine.web.request import RAW_BODY, now_utc
from engine.web.route import RouteSpec


def books_of(ctx: Services) -> flow.RerouteBooks:
    return flow.RerouteBooks(ctx.settings, ctx.known_channels, ctx.pool, ctx.booker, ctx.txn_nos,
                             ctx.platform_accounts)


async def list_failed_refunds(request: web.Request) -> web.Response:
    query = decode_query(request.query, rw.FailedRefundsQuery)
    async with services_of(request).pool.acquire() as conn:
        found = await flow.list_failed(conn, query.merchant_id, query.starting_after, query.limit)
    return ok_json(found)


async def reroute_refund(request: web.Request) -> web.Response:
    req = decode_body(request[RAW_BODY], rw.RerouteRefund)
    ctx = services_of(request)
    # Shielded: a client that hangs up cannot cut the booking in half.
    view = await asyncio.shield(flow.reroute(books_of(ctx), request.match_info["id"], req, now_utc()))
    return ok_json(view)


async def reroute_auto_refund(request: web.Request) -> web.Response:
    req = decode_body(request[RAW_BODY], rw.RerouteRefund)
    ctx = services_of(request)
    # Shielded, as above.
    view = await asyncio.shield(flow.reroute_auto_refund(books_of(ctx), request.match_info["id"], req, now_utc()))
    return ok_json(view)


ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("GET", "/admin/refunds", list_failed_refunds,
              "Refunds the channel refused (status=failed), waiting for an operator, the longest waiting first",
              rw.AdminRefundList, query=rw.FailedRefundsQuery, errors=(400, 401, 404), auth="admin"),
    RouteSpec("POST", "/admin/refunds/{id}/reroute", reroute_refund,
              "Resolve a failed refund: to the customer's wallet, to a bank payout, or manual (no money moves); "
              "409 when it is not failed (or another re-route won)",
              rw.AdminRefund, 200, rw.RerouteRefund, errors=(400, 401, 402, 404, 409, 413, 422), auth="admin"),
    RouteSpec("POST", "/admin/exceptions/{id}/reroute", reroute_auto_refund,
              "Resolve an exception's auto-refund the channel refused (a payment paid after we closed it) as a "
              "failed refund: wallet, bank or manual; the exception is then resolved",
              rw.AutoRefund, 200, rw.RerouteRefund, errors=(400, 401, 402, 404, 409, 413, 422), auth="admin"),
)
