"""Admin endpoints of merchant operations: decode, call engine/merchants/flow.py, encode.

Answers that carry a secret are marked ``Cache-Control: no-store``; the secret is in that body only.
Every change forgets the merchant in this process's auth cache at once (other processes re-read it
within PAYENGINE_MERCHANT_CACHE_S).
"""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
from aiohttp import web

from engine.bootstrap import BOOKER
from engine.http.middleware import RAW_BODY
from engine.merchants import fee_invoices, fee_plans, wire
from engine.merchants import flow as service
from engine.payments.wire import NoQuery
from engine.services import API, ApiContext
from engine.web.decoding import decode_body, decode_query
from engine.web.idempotency import json_response

NO_STORE = {"Cache-Control": "no-store"}


def ops_config(ctx: ApiContext) -> service.OpsConfig:
    s = ctx.settings
    return service.OpsConfig(s.api_secret_key, frozenset(s.currencies), ctx.known_channels, s.hot_internal_accounts)


def _now() -> datetime:
    return datetime.now(UTC)


def _ok(obj: object, status: int = 200, secret: bool = False) -> web.Response:
    return json_response(status, msgspec.json.encode(obj), NO_STORE if secret else None)


async def create_merchant(request: web.Request) -> web.Response:
    ctx = request.app[API]
    req = decode_body(request[RAW_BODY], wire.OnboardMerchant)
    async with ctx.pool.acquire() as conn:
        created = await service.onboard(conn, ops_config(ctx), req, _now())
    for currency in created.currencies:  # warm the platform account cache the payment flows read
        await ctx.platform_accounts(currency)
    return _ok(created, 201, secret=True)


async def get_merchant(request: web.Request) -> web.Response:
    decode_query(request.query, NoQuery)
    async with request.app[API].pool.acquire() as conn:
        return _ok(await service.show(conn, request.match_info["id"], _now()))


async def update_merchant(request: web.Request) -> web.Response:
    ctx, merchant_id = request.app[API], request.match_info["id"]
    req = decode_body(request[RAW_BODY], wire.UpdateMerchant)
    async with ctx.pool.acquire() as conn:
        view = await service.update(conn, ops_config(ctx), merchant_id, req, _now())
    ctx.merchants.forget(merchant_id)
    return _ok(view, secret=view.webhook_secret is not None)


async def _set_status(request: web.Request, to_status: str) -> web.Response:
    ctx, merchant_id = request.app[API], request.match_info["id"]
    decode_body(request[RAW_BODY], wire.NoBody)
    async with ctx.pool.acquire() as conn:
        view = await service.set_status(conn, merchant_id, to_status, _now())
    ctx.merchants.forget(merchant_id)
    return _ok(view)


async def suspend_merchant(request: web.Request) -> web.Response:
    return await _set_status(request, "suspended")


async def resume_merchant(request: web.Request) -> web.Response:
    return await _set_status(request, "active")


async def rotate_key(request: web.Request) -> web.Response:
    ctx, merchant_id = request.app[API], request.match_info["id"]
    req = decode_body(request[RAW_BODY], wire.RotateKey)
    async with ctx.pool.acquire() as conn:
        issued = await service.rotate_key(conn, ops_config(ctx), merchant_id, req.rollover_s, _now())
    ctx.merchants.forget(merchant_id)
    return _ok(issued, 201, secret=True)


async def revoke_key(request: web.Request) -> web.Response:
    ctx, merchant_id = request.app[API], request.match_info["id"]
    decode_body(request[RAW_BODY], wire.NoBody)
    async with ctx.pool.acquire() as conn:
        key = await service.revoke_key(conn, merchant_id, request.match_info["key_id"], _now())
    ctx.merchants.forget(merchant_id)
    return _ok(key)


async def rotate_webhook_secret(request: web.Request) -> web.Response:
    ctx, merchant_id = request.app[API], request.match_info["id"]
    req = decode_body(request[RAW_BODY], wire.RotateWebhookSecret)
    async with ctx.pool.acquire() as conn:
        issued = await service.rotate_webhook_secret(conn, ops_config(ctx), merchant_id, req.overlap_s, _now())
    return _ok(issued, 201, secret=True)


async def create_fee_plan(request: web.Request) -> web.Response:
    req = decode_body(request[RAW_BODY], wire.CreateFeePlan)
    async with request.app[API].pool.acquire() as conn:
        return _ok(await fee_plans.create_plan(conn, req, _now()), 201)


async def update_fee_plan(request: web.Request) -> web.Response:
    ctx, name = request.app[API], request.match_info["name"]
    req = decode_body(request[RAW_BODY], wire.UpdateFeePlan)
    async with ctx.pool.acquire() as conn:
        plan = await fee_plans.update_plan(conn, name, req, _now())
    # Other processes forget the plan's merchants on the NOTIFY the update sent; this one now.
    ctx.merchants.forget_all()
    return _ok(plan)


async def get_fee_plan(request: web.Request) -> web.Response:
    decode_query(request.query, NoQuery)
    async with request.app[API].pool.acquire() as conn:
        return _ok(await fee_plans.show_plan(conn, request.match_info["name"]))


async def list_fee_plans(request: web.Request) -> web.Response:
    decode_query(request.query, NoQuery)
    async with request.app[API].pool.acquire() as conn:
        return _ok(await fee_plans.list_plans(conn))


async def issue_fee_invoice(request: web.Request) -> web.Response:
    req = decode_body(request[RAW_BODY], wire.IssueFeeInvoice)
    async with request.app[API].pool.acquire() as conn:
        return _ok(await fee_invoices.issue(conn, request.match_info["id"], req.currency, _now()), 201)


async def list_fee_invoices(request: web.Request) -> web.Response:
    decode_query(request.query, NoQuery)
    async with request.app[API].pool.acquire() as conn:
        return _ok(await fee_invoices.list_for(conn, request.match_info["id"]))


async def get_fee_invoice(request: web.Request) -> web.Response:
    decode_query(request.query, NoQuery)
    async with request.app[API].pool.acquire() as conn:
        return _ok(await fee_invoices.show(conn, request.match_info["id"]))


async def pay_fee_invoice(request: web.Request) -> web.Response:
    req = decode_body(request[RAW_BODY], wire.PayFeeInvoice)
    ctx = request.app[API]
    return _ok(await fee_invoices.pay(request.app[BOOKER], ctx.txn_nos, request.match_info["id"], req, _now()))
