"""Merchant endpoints: decode, call a flow, encode. No SQL and no connections here."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
from aiohttp import web

from engine.bootstrap import BOOKER
from engine.customers import flow as customer_flows
from engine.errors import NotFound
from engine.http.middleware import RAW_BODY, merchant_of
from engine.payments import flow as payment_flows
from engine.payments import wire
from engine.payments.states import UNPAID
from engine.payments.store import get_payment, get_refund, list_payments
from engine.payments.views import payment_view, refund_view
from engine.services import API
from engine.web.decoding import decode_body, decode_query
from engine.web.idempotency import json_response, run_idempotent


def _now() -> datetime:
    return datetime.now(UTC)


def _ok(obj: object, status: int = 200) -> web.Response:
    return json_response(status, msgspec.json.encode(obj))


async def create_customer(request: web.Request) -> web.Response:
    ctx, merchant, raw = request.app[API], merchant_of(request), request[RAW_BODY]
    req = decode_body(raw, wire.CreateCustomer)
    return await run_idempotent(request, ctx, merchant.id, raw,
                                lambda slot: customer_flows.create_customer(ctx, merchant, req, slot, _now()))


async def create_topup(request: web.Request) -> web.Response:
    ctx, merchant, raw = request.app[API], merchant_of(request), request[RAW_BODY]
    req = decode_body(raw, wire.CreateTopup)
    customer_id = request.match_info["id"]
    return await run_idempotent(request, ctx, merchant.id, raw, lambda slot: customer_flows.create_topup(
        ctx, request.app[BOOKER], merchant, customer_id, req, slot, _now()))


async def get_customer(request: web.Request) -> web.Response:
    decode_query(request.query, wire.NoQuery)
    ctx, merchant = request.app[API], merchant_of(request)
    return _ok(await customer_flows.get_customer_view(ctx, merchant, request.match_info["id"]))


async def create_payment(request: web.Request) -> web.Response:
    ctx, merchant, raw = request.app[API], merchant_of(request), request[RAW_BODY]
    req = decode_body(raw, wire.CreatePayment)
    return await run_idempotent(request, ctx, merchant.id, raw, lambda slot: payment_flows.create_payment(
        ctx, request.app[BOOKER], merchant, req, slot, _now()), folded=True)


async def get_payment_handler(request: web.Request) -> web.Response:
    q = decode_query(request.query, wire.GetPaymentQuery)
    ctx, merchant = request.app[API], merchant_of(request)
    async with ctx.pool.acquire() as conn:
        payment = await get_payment(conn, merchant.id, request.match_info["id"])
    if payment is None:
        raise NotFound("payment", request.match_info["id"])
    if q.sync and payment.method == "channel" and payment.status in UNPAID:
        # Here, not at the top: the gateway imports the API's views, so a module-level import is circular.
        from engine.gateway.notify import GATEWAY
        from engine.gateway.refresh import refresh_payment

        gateway = request.app.get(GATEWAY)
        # Ask the channel now (bounded by the gateway's call timeout; channel trouble keeps the stored
        # status as the answer). A payment it reports paid is booked exactly as a notify would book it.
        if gateway is not None and await refresh_payment(gateway, payment.id) is not None:
            async with ctx.pool.acquire() as conn:
                payment = await get_payment(conn, merchant.id, payment.id) or payment
    return _ok(payment_view(payment))


async def list_payments_handler(request: web.Request) -> web.Response:
    q = decode_query(request.query, wire.ListPaymentsQuery)
    ctx, merchant = request.app[API], merchant_of(request)
    async with ctx.pool.acquire() as conn:
        page, has_more = await list_payments(conn, merchant.id, q.merchant_order_no, q.status, q.limit,
                                             q.starting_after)
    return _ok(wire.PaymentList([payment_view(p) for p in page], has_more))


async def close_payment(request: web.Request) -> web.Response:
    ctx, merchant, raw = request.app[API], merchant_of(request), request[RAW_BODY]
    decode_body(raw, wire.ClosePayment)
    payment_id = request.match_info["id"]
    return await run_idempotent(request, ctx, merchant.id, raw, lambda slot: payment_flows.close_payment(
        ctx, merchant, payment_id, slot, _now()))


async def create_refund(request: web.Request) -> web.Response:
    ctx, merchant, raw = request.app[API], merchant_of(request), request[RAW_BODY]
    req = decode_body(raw, wire.CreateRefund)
    payment_id = request.match_info["id"]
    return await run_idempotent(request, ctx, merchant.id, raw, lambda slot: payment_flows.create_refund(
        ctx, request.app[BOOKER], merchant, payment_id, req, slot, _now()))


async def get_refund_handler(request: web.Request) -> web.Response:
    decode_query(request.query, wire.NoQuery)
    ctx, merchant = request.app[API], merchant_of(request)
    async with ctx.pool.acquire() as conn:
        refund = await get_refund(conn, merchant.id, request.match_info["id"])
    if refund is None:
        raise NotFound("refund", request.match_info["id"])
    return _ok(refund_view(refund))


async def list_accounts(request: web.Request) -> web.Response:
    decode_query(request.query, wire.NoQuery)
    return _ok(await customer_flows.list_accounts(request.app[API], merchant_of(request)))


async def get_account(request: web.Request) -> web.Response:
    decode_query(request.query, wire.NoQuery)
    return _ok(await customer_flows.get_account_view(request.app[API], merchant_of(request),
                                                     request.match_info["id"]))


async def account_statement(request: web.Request) -> web.Response:
    q = decode_query(request.query, wire.StatementQuery)
    return _ok(await customer_flows.account_statement(request.app[API], merchant_of(request),
                                                      request.match_info["id"], q))
