"""Merchant endpoints: decode, call a flow, encode. No SQL and no connections here."""

from __future__ import annotations

from aiohttp import web

from engine.errors import NotFound
from engine.payments import flow as payment_flows
from engine.payments import wire
from engine.payments.states import UNPAID
from engine.payments.store import get_payment, get_refund, list_payments
from engine.payments.views import payment_view, refund_view
from engine.services import services_of
from engine.web import wire as web_wire
from engine.web.decoding import decode_body, decode_query
from engine.web.idempotency import ok_json, run_idempotent
from engine.web.request import RAW_BODY, merchant_of, now_utc
from engine.web.route import POST_ERRORS, RouteSpec


async def create_payment(request: web.Request) -> web.Response:
    ctx, merchant, raw = services_of(request), merchant_of(request), request[RAW_BODY]
    req = decode_body(raw, wire.CreatePayment)
    return await run_idempotent(request, ctx, merchant.id, raw, lambda slot: payment_flows.create_payment(
        ctx, ctx.booker, merchant, req, slot, now_utc()), folded=True)


async def get_payment_handler(request: web.Request) -> web.Response:
    q = decode_query(request.query, wire.GetPaymentQuery)
    ctx, merchant = services_of(request), merchant_of(request)
    async with ctx.pool.acquire() as conn:
        payment = await get_payment(conn, merchant.id, request.match_info["id"])
    if payment is None:
        raise NotFound("payment", request.match_info["id"])
    if q.sync and payment.method == "channel" and payment.status in UNPAID:
        # Ask the channel now (bounded by the gateway's call timeout; channel trouble keeps the stored
        # status as the answer). A payment it reports paid is booked exactly as a notify would book it.
        if await ctx.refresh_payment(payment.id) is not None:
            async with ctx.pool.acquire() as conn:
                payment = await get_payment(conn, merchant.id, payment.id) or payment
    return ok_json(payment_view(payment))


async def list_payments_handler(request: web.Request) -> web.Response:
    q = decode_query(request.query, wire.ListPaymentsQuery)
    ctx, merchant = services_of(request), merchant_of(request)
    async with ctx.pool.acquire() as conn:
        page, has_more = await list_payments(conn, merchant.id, q.merchant_order_no, q.status, q.limit,
                                             q.starting_after)
    return ok_json(wire.PaymentList([payment_view(p) for p in page], has_more))


async def close_payment(request: web.Request) -> web.Response:
    ctx, merchant, raw = services_of(request), merchant_of(request), request[RAW_BODY]
    decode_body(raw, wire.ClosePayment)
    payment_id = request.match_info["id"]
    return await run_idempotent(request, ctx, merchant.id, raw, lambda slot: payment_flows.close_payment(
        ctx, merchant, payment_id, slot, now_utc()))


async def create_refund(request: web.Request) -> web.Response:
    ctx, merchant, raw = services_of(request), merchant_of(request), request[RAW_BODY]
    req = decode_body(raw, wire.CreateRefund)
    payment_id = request.match_info["id"]
    return await run_idempotent(request, ctx, merchant.id, raw, lambda slot: payment_flows.create_refund(
        ctx, ctx.booker, merchant, payment_id, req, slot, now_utc()))


async def get_refund_handler(request: web.Request) -> web.Response:
    decode_query(request.query, web_wire.NoQuery)
    ctx, merchant = services_of(request), merchant_of(request)
    async with ctx.pool.acquire() as conn:
        refund = await get_refund(conn, merchant.id, request.match_info["id"])
    if refund is None:
        raise NotFound("refund", request.match_info["id"])
    return ok_json(refund_view(refund))








ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("POST", "/v1/payments", create_payment, "Create a payment (wallet: synchronous debit)",
              wire.Payment, 201, wire.CreatePayment, errors=POST_ERRORS),
    RouteSpec("GET", "/v1/payments", list_payments_handler, "List payments, newest first",
              wire.PaymentList, query=wire.ListPaymentsQuery),
    RouteSpec("GET", "/v1/payments/{id}", get_payment_handler, "One payment", wire.Payment,
              query=wire.GetPaymentQuery),
    RouteSpec("POST", "/v1/payments/{id}/close", close_payment, "Close an unpaid payment",
              wire.Payment, 200, wire.ClosePayment, errors=POST_ERRORS),
    RouteSpec("POST", "/v1/payments/{id}/refunds", create_refund, "Refund a payment (partly or fully)",
              wire.Refund, 201, wire.CreateRefund, errors=POST_ERRORS),
    RouteSpec("GET", "/v1/refunds/{id}", get_refund_handler, "One refund", wire.Refund,
              query=web_wire.NoQuery),
)
