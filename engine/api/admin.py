"""Admin (SRE) endpoints of the merchant API: create merchants, read the trial balance."""

from __future__ import annotations

import secrets

import msgspec
from aiohttp import web

from accounts.model import AccountKind, OverdraftRule
from accounts.store import trial_balance
from engine.api import wire
from engine.api.auth import derive_secret
from engine.api.context import API, ApiContext
from engine.api.decoding import decode_body
from engine.api.idempotency import json_response
from engine.api.middleware import RAW_BODY
from engine.merchant_store import ensure_account, insert_merchant
from engine.payments.errors import DuplicateOrder, UnsupportedCurrency
from engine.payments.ids import ACCOUNT, MERCHANT, new_id
from engine.payments.pricing import Pricing
from engine.webhooks.signing import derive_webhook_secret
from engine.webhooks.store import set_webhook_endpoint

SALT_BYTES = 16


async def create_merchant(ctx: ApiContext, req: wire.CreateMerchant) -> wire.MerchantCreated:
    """A merchant with a merchant_pending account per currency (hot if asked) and its API secret."""
    for currency in req.currencies:
        if currency not in ctx.settings.currencies:
            raise UnsupportedCurrency(currency, "currencies")
    merchant_id = req.id or new_id(MERCHANT)
    salt = secrets.token_bytes(SALT_BYTES)
    async with ctx.pool.acquire() as conn, conn.transaction():
        if not await insert_merchant(conn, merchant_id, req.name, salt, Pricing(req.fee_bps, req.fee_fixed)):
            raise DuplicateOrder("id", merchant_id, merchant_id)
        webhook_salt = secrets.token_bytes(SALT_BYTES) if req.webhook_url else None
        if req.webhook_url:
            await set_webhook_endpoint(conn, merchant_id, req.webhook_url, webhook_salt)
        for currency in dict.fromkeys(req.currencies):
            await ensure_account(conn, merchant_id, "merchant_pending", currency, AccountKind.MERCHANT, req.hot,
                                 OverdraftRule(), new_id(ACCOUNT))
    for currency in req.currencies:
        await ctx.platform_accounts(currency)
    webhook_secret = derive_webhook_secret(ctx.settings.api_secret_key, merchant_id, webhook_salt) \
        if webhook_salt else None
    return wire.MerchantCreated(merchant_id, req.name, derive_secret(ctx.settings.api_secret_key, merchant_id, salt),
                                list(dict.fromkeys(req.currencies)), req.fee_bps, req.fee_fixed, req.webhook_url,
                                webhook_secret)


async def create_merchant_handler(request: web.Request) -> web.Response:
    req = decode_body(request[RAW_BODY], wire.CreateMerchant)
    created = await create_merchant(request.app[API], req)
    return json_response(201, msgspec.json.encode(created))


async def trial_balance_handler(request: web.Request) -> web.Response:
    async with request.app[API].pool.acquire() as conn:
        tb = await trial_balance(conn)
    body = {
        "holds": tb.holds, "holds_drained": tb.holds_drained, "buffered_legs": tb.buffered_legs,
        "applied": [{"currency": t.currency, "debit": t.debit_normal_minor, "credit": t.credit_normal_minor}
                    for t in tb.applied],
        "projected": [{"currency": t.currency, "debit": t.debit_normal_minor, "credit": t.credit_normal_minor}
                      for t in tb.projected],
        "mismatched_accounts": [list(m) for m in tb.mismatched_accounts],
    }
    return json_response(200, msgspec.json.encode(body))
