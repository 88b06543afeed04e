"""Admin endpoints of merchant operations: decode, call engine/merchants/flow.py, encode.

Answers that carry a secret are marked ``Cache-Control: no-store``; the secret is in that body only.
Every change forgets the merchant in this process's auth cache at once (other processes re-read it
within PAYENGINE_MERCHANT_CACHE_S).
"""

from __future__ import annotations

from aiohttp import web

from engine.merchants import fee_invoices, fee_plans, wire
from engine.merchants import flow as service
from engine.merchants import wire as merchant_wire
from engine.services import Services, services_of
from engine.web import wire as web_wire
from engine.web.decoding import decode_body, decode_query
from engine.web.idempotency import ok_json
from engine.web.request import RAW_BODY, now_utc
from engine.web.route import RouteSpec
from engine.web.wire import NoQuery

NO_STORE = {"Cache-Control": "no-store"}


def ops_config(ctx: Services) -> service.OpsConfig:
    s = ctx.settings
    return service.OpsConfig(s.api_secret_key, frozenset(s.currencies), ctx.known_channels, s.hot_internal_accounts)



def _ok(obj: object, status: int = 200, secret: bool = False) -> web.Response:
    return ok_json(obj, status, NO_STORE if secret else None)


async def create_merchant(request: web.Request) -> web.Response:
    ctx = services_of(request)
    req = decode_body(request[RAW_BODY], wire.OnboardMerchant)
    async with ctx.pool.acquire() as conn:
        created = await service.onboard(conn, ops_config(ctx), req, now_utc())
    for currency in created.currencies:  # warm the platform account cache the payment flows read
        await ctx.platform_accounts(currency)
    return _ok(created, 201, secret=True)


async def get_merchant(request: web.Request) -> web.Response:
    decode_query(request.query, NoQuery)
    async with services_of(request).pool.acquire() as conn:
        return _ok(await service.show(conn, request.match_info["id"], now_utc()))


async def update_merchant(request: web.Request) -> web.Response:
    ctx, merchant_id = services_of(request), request.match_info["id"]
    req = decode_body(request[RAW_BODY], wire.UpdateMerchant)
    async with ctx.pool.acquire() as conn:
        view = await service.update(conn, ops_config(ctx), merchant_id, req, now_utc())
    ctx.merchants.forget(merchant_id)
    return _ok(view, secret=view.webhook_secret is not None)


async def _set_status(request: web.Request, to_status: str) -> web.Response:
    ctx, merchant_id = services_of(request), request.match_info["id"]
    decode_body(request[RAW_BODY], wire.NoBody)
    async with ctx.pool.acquire() as conn:
        view = await service.set_status(conn, merchant_id, to_status, now_utc())
    ctx.merchants.forget(merchant_id)
    return _ok(view)


async def suspend_merchant(request: web.Request) -> web.Response:
    return await _set_status(request, "suspended")


async def resume_merchant(request: web.Request) -> web.Response:
    return await _set_status(request, "active")


async def rotate_key(request: web.Request) -> web.Response:
    ctx, merchant_id = services_of(request), request.match_info["id"]
    req = decode_body(request[RAW_BODY], wire.RotateKey)
    async with ctx.pool.acquire() as conn:
        issued = await service.rotate_key(conn, ops_config(ctx), merchant_id, req.rollover_s, now_utc())
    ctx.merchants.forget(merchant_id)
    return _ok(issued, 201, secret=True)


async def revoke_key(request: web.Request) -> web.Response:
    ctx, merchant_id = services_of(request), request.match_info["id"]
    decode_body(request[RAW_BODY], wire.NoBody)
    async with ctx.pool.acquire() as conn:
        key = await service.revoke_key(conn, merchant_id, request.match_info["key_id"], now_utc())
    ctx.merchants.forget(merchant_id)
    return _ok(key)


async def rotate_webhook_secret(request: web.Request) -> web.Response:
    ctx, merchant_id = services_of(request), request.match_info["id"]
    req = decode_body(request[RAW_BODY], wire.RotateWebhookSecret)
    async with ctx.pool.acquire() as conn:
        issued = await service.rotate_webhook_secret(conn, ops_config(ctx), merchant_id, req.overlap_s, now_utc())
    return _ok(issued, 201, secret=True)


async def create_fee_plan(request: web.Request) -> web.Response:
    req = decode_body(request[RAW_BODY], wire.CreateFeePlan)
    async with services_of(request).pool.acquire() as conn:
        return _ok(await fee_plans.create_plan(conn, req, now_utc()), 201)


async def update_fee_plan(request: web.Request) -> web.Response:
    ctx, name = services_of(request), request.match_info["name"]
    req = decode_body(request[RAW_BODY], wire.UpdateFeePlan)
    async with ctx.pool.acquire() as conn:
        plan = await fee_plans.update_plan(conn, name, req, now_utc())
    # Other processes forget the plan's merchants on the NOTIFY the update sent; this one now.
    ctx.merchants.forget_all()
    return _ok(plan)


async def get_fee_plan(request: web.Request) -> web.Response:
    decode_query(request.query, NoQuery)
    async with services_of(request).pool.acquire() as conn:
        return _ok(await fee_plans.show_plan(conn, request.match_info["name"]))


async def list_fee_plans(request: web.Request) -> web.Response:
    decode_query(request.query, NoQuery)
    async with services_of(request).pool.acquire() as conn:
        return _ok(await fee_plans.list_plans(conn))


async def issue_fee_invoice(request: web.Request) -> web.Response:
    req = decode_body(request[RAW_BODY], wire.IssueFeeInvoice)
    async with services_of(request).pool.acquire() as conn:
        return _ok(await fee_invoices.issue(conn, request.match_info["id"], req.currency, now_utc()), 201)


async def list_fee_invoices(request: web.Request) -> web.Response:
    decode_query(request.query, NoQuery)
    async with services_of(request).pool.acquire() as conn:
        return _ok(await fee_invoices.list_for(conn, request.match_info["id"]))


async def get_fee_invoice(request: web.Request) -> web.Response:
    decode_query(request.query, NoQuery)
    async with services_of(request).pool.acquire() as conn:
        return _ok(await fee_invoices.show(conn, request.match_info["id"]))


async def pay_fee_invoice(request: web.Request) -> web.Response:
    req = decode_body(request[RAW_BODY], wire.PayFeeInvoice)
    ctx = services_of(request)
    return _ok(await fee_invoices.pay(ctx.booker, ctx.txn_nos, request.match_info["id"], req, now_utc()))


ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("POST", "/admin/merchants", create_merchant,
              "Onboard a merchant: profile, template accounts, primary key (its secret shown once)",
              merchant_wire.MerchantOnboarded, 201, merchant_wire.OnboardMerchant, errors=(400, 401, 409, 413, 422),
              auth="admin"),
    RouteSpec("GET", "/admin/merchants/{id}", get_merchant, "A merchant's profile, accounts and keys",
              merchant_wire.Merchant, query=web_wire.NoQuery, auth="admin"),
    RouteSpec("PATCH", "/admin/merchants/{id}", update_merchant,
              "Change name, fee plan, settlement cycle, webhook URL, allowed methods and channels",
              merchant_wire.Merchant, 200, merchant_wire.UpdateMerchant, errors=(400, 401, 404, 413, 422),
              auth="admin"),
    RouteSpec("POST", "/admin/merchants/{id}/suspend", suspend_merchant,
              "Suspend a merchant (its requests get 403; nothing is lost)", merchant_wire.Merchant, 200,
              merchant_wire.NoBody, errors=(400, 401, 404, 409, 413), auth="admin"),
    RouteSpec("POST", "/admin/merchants/{id}/resume", resume_merchant,
              "Resume a suspended merchant", merchant_wire.Merchant, 200, merchant_wire.NoBody,
              errors=(400, 401, 404, 409, 413), auth="admin"),
    RouteSpec("POST", "/admin/merchants/{id}/keys", rotate_key,
              "Rotate the API key: a new primary (secret shown once); the old one verifies for rollover_s",
              merchant_wire.KeyIssued, 201, merchant_wire.RotateKey, errors=(400, 401, 404, 413), auth="admin"),
    RouteSpec("POST", "/admin/merchants/{id}/keys/{key_id}/revoke", revoke_key,
              "Revoke a rolling API key now", merchant_wire.ApiKeyView, 200, merchant_wire.NoBody,
              errors=(400, 401, 404, 409, 413), auth="admin"),
    RouteSpec("POST", "/admin/merchants/{id}/webhook-secret/rotate", rotate_webhook_secret,
              "Rotate the webhook secret (shown once); the old one also signs for overlap_s",
              merchant_wire.WebhookSecretIssued, 201, merchant_wire.RotateWebhookSecret,
              errors=(400, 401, 404, 413), auth="admin"),
    RouteSpec("POST", "/admin/fee-plans", create_fee_plan,
              "Create a named fee plan: basis points and/or a fixed fee, deducted at booking or invoiced",
              merchant_wire.FeePlan, 201, merchant_wire.CreateFeePlan, errors=(400, 401, 409, 413), auth="admin"),
    RouteSpec("GET", "/admin/fee-plans", list_fee_plans, "Every fee plan",
              merchant_wire.FeePlanList, query=web_wire.NoQuery, errors=(400, 401), auth="admin"),
    RouteSpec("GET", "/admin/fee-plans/{name}", get_fee_plan, "One fee plan",
              merchant_wire.FeePlan, query=web_wire.NoQuery, auth="admin"),
    RouteSpec("PUT", "/admin/fee-plans/{name}", update_fee_plan,
              "Replace a fee plan's terms (its merchants' later payments are priced by them)", merchant_wire.FeePlan,
              200, merchant_wire.UpdateFeePlan, errors=(400, 401, 404, 413), auth="admin"),
    RouteSpec("POST", "/admin/merchants/{id}/fee-invoices", issue_fee_invoice,
              "Invoice the merchant's invoiced fees owed and not billed yet (409 nothing_to_invoice when none)",
              merchant_wire.FeeInvoice, 201, merchant_wire.IssueFeeInvoice, errors=(400, 401, 404, 409, 413),
              auth="admin"),
    RouteSpec("GET", "/admin/merchants/{id}/fee-invoices", list_fee_invoices,
              "The merchant's fee invoices, newest first, with fees owed and not billed yet per currency",
              merchant_wire.FeeInvoiceList, query=web_wire.NoQuery, auth="admin"),
    RouteSpec("GET", "/admin/fee-invoices/{id}", get_fee_invoice, "One fee invoice",
              merchant_wire.FeeInvoice, query=web_wire.NoQuery, auth="admin"),
    RouteSpec("POST", "/admin/fee-invoices/{id}/pay", pay_fee_invoice,
              "Book an open invoice's payment: from the merchant's available balance or its transfer to our bank",
              merchant_wire.FeeInvoice, 200, merchant_wire.PayFeeInvoice, errors=(400, 401, 402, 404, 409, 413),
              auth="admin"),
)
