"""Customer endpoints (customers with a wallet, topups) and the merchant's own accounts and statements:
decode, call engine/customers/flow.py, encode. No SQL and no connections here."""

from __future__ import annotations

from aiohttp import web

from engine.customers import flow as customer_flows
from engine.customers import wire as customer_wire
from engine.services import services_of
from engine.web import wire as web_wire
from engine.web.decoding import decode_body, decode_query
from engine.web.idempotency import ok_json, run_idempotent
from engine.web.request import RAW_BODY, merchant_of, now_utc
from engine.web.route import POST_ERRORS, RouteSpec


async def create_customer(request: web.Request) -> web.Response:
    ctx, merchant, raw = services_of(request), merchant_of(request), request[RAW_BODY]
    req = decode_body(raw, customer_wire.CreateCustomer)
    return await run_idempotent(request, ctx, merchant.id, raw,
                                lambda slot: customer_flows.create_customer(ctx, merchant, req, slot, now_utc()))


async def create_topup(request: web.Request) -> web.Response:
    ctx, merchant, raw = services_of(request), merchant_of(request), request[RAW_BODY]
    req = decode_body(raw, customer_wire.CreateTopup)
    customer_id = request.match_info["id"]
    return await run_idempotent(request, ctx, merchant.id, raw, lambda slot: customer_flows.create_topup(
        ctx, ctx.booker, merchant, customer_id, req, slot, now_utc()))


async def get_customer(request: web.Request) -> web.Response:
    decode_query(request.query, web_wire.NoQuery)
    ctx, merchant = services_of(request), merchant_of(request)
    return ok_json(await customer_flows.get_customer_view(ctx, merchant, request.match_info["id"]))


async def list_accounts(request: web.Request) -> web.Response:
    decode_query(request.query, web_wire.NoQuery)
    return ok_json(await customer_flows.list_accounts(services_of(request), merchant_of(request)))


async def get_account(request: web.Request) -> web.Response:
    decode_query(request.query, web_wire.NoQuery)
    return ok_json(await customer_flows.get_account_view(services_of(request), merchant_of(request),
                                                     request.match_info["id"]))


async def account_statement(request: web.Request) -> web.Response:
    q = decode_query(request.query, customer_wire.StatementQuery)
    return ok_json(await customer_flows.account_statement(services_of(request), merchant_of(request),
                                                      request.match_info["id"], q))


ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("POST", "/v1/customers", create_customer, "Create a customer with a wallet account",
              customer_wire.Customer, 201, customer_wire.CreateCustomer, errors=POST_ERRORS),
    RouteSpec("GET", "/v1/customers/{id}", get_customer, "A customer with its wallet balance",
              customer_wire.Customer, query=web_wire.NoQuery),
    RouteSpec("POST", "/v1/customers/{id}/topups", create_topup, "Credit a customer's wallet",
              customer_wire.Topup, 201, customer_wire.CreateTopup, errors=POST_ERRORS),
    RouteSpec("GET", "/v1/accounts", list_accounts, "The merchant's accounts with balances",
              customer_wire.AccountList, query=web_wire.NoQuery),
    RouteSpec("GET", "/v1/accounts/{id}", get_account, "One account with balance", customer_wire.Account,
              query=web_wire.NoQuery),
    RouteSpec("GET", "/v1/accounts/{id}/statement", account_statement,
              "Applied legs in sequence order with running balance and what each was for (payment/refund id, order "
              "number, gross/fee); from/to: accounting dates", customer_wire.Statement,
              query=customer_wire.StatementQuery),
)
