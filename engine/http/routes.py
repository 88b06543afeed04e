"""The route table: registration and the OpenAPI document both come from ``ROUTES``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from engine.controls import handlers as controls_admin
from engine.controls import wire as controls_wire
from engine.ledger_admin import trial_balance as admin
from engine.merchants import handlers as merchant_handlers
from engine.merchants import wire as merchant_wire
from engine.payments import handlers, wire
from engine.payouts import admin as payout_admin
from engine.payouts import handlers as payout_handlers
from engine.payouts import wire as payout_wire
from engine.transfers import handlers as transfer_handlers
from engine.transfers import wire as transfer_wire
from engine.webhooks import handlers as webhook_handlers

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class RouteSpec:
    method: str
    path: str
    handler: Handler
    summary: str
    response: type | None
    status: int = 200
    body: type | None = None
    query: type | None = None
    errors: tuple[int, ...] = field(default=(400, 401, 404))
    auth: str = "merchant"  # merchant | admin | none


_POST_ERRORS = (400, 401, 402, 404, 409, 413, 422)
_CONTROL_WRITE_ERRORS = (400, 401, 413, 422)  # 422: a malformed limit or rule definition

# Limits and risk rules (engine/controls/handlers.py). The writes change what every merchant's payments meet:
# tests/api/test_openapi_fuzz.py fuzzes them only against a private server of their own.
_CONTROL_ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("GET", "/admin/limits", controls_admin.get_global_limits, "The global default limits",
              controls_wire.LimitSetView, errors=(401,), auth="admin"),
    RouteSpec("PUT", "/admin/limits", controls_admin.put_global_limits,
              "Replace the global default limits (applied at once)", controls_wire.LimitSetView, 200,
              controls_wire.PutLimits, errors=_CONTROL_WRITE_ERRORS, auth="admin"),
    RouteSpec("GET", "/admin/merchants/{id}/limits", controls_admin.get_merchant_limits,
              "A merchant's limit overrides and its effective limits", controls_wire.MerchantLimitsView,
              errors=(401, 404), auth="admin"),
    RouteSpec("PUT", "/admin/merchants/{id}/limits", controls_admin.put_merchant_limits,
              "Replace a merchant's limit overrides", controls_wire.MerchantLimitsView, 200, controls_wire.PutLimits,
              errors=(*_CONTROL_WRITE_ERRORS, 404), auth="admin"),
    RouteSpec("GET", "/admin/risk/rules", controls_admin.list_rules, "Every risk rule", controls_wire.RiskRuleList,
              errors=(401,), auth="admin"),
    RouteSpec("POST", "/admin/risk/rules", controls_admin.create_rule,
              "Create a risk rule (velocity, amount_anomaly, blocklist)", controls_wire.RiskRuleView, 201,
              controls_wire.RiskRuleSpec, errors=_CONTROL_WRITE_ERRORS, auth="admin"),
    RouteSpec("GET", "/admin/risk/rules/{id}", controls_admin.get_rule, "One risk rule", controls_wire.RiskRuleView,
              errors=(401, 404), auth="admin"),
    RouteSpec("PUT", "/admin/risk/rules/{id}", controls_admin.update_rule, "Replace a risk rule's definition",
              controls_wire.RiskRuleView, 200, controls_wire.RiskRuleSpec, errors=(*_CONTROL_WRITE_ERRORS, 404),
              auth="admin"),
    RouteSpec("DELETE", "/admin/risk/rules/{id}", controls_admin.delete_rule, "Delete a risk rule",
              controls_wire.Deleted, errors=(401, 404), auth="admin"),
    RouteSpec("POST", "/admin/risk/blocklist", controls_admin.add_blocked,
              "Block a customer or instrument (only its keyed hash is stored)", controls_wire.BlocklistView, 201,
              controls_wire.BlocklistEntry, errors=_CONTROL_WRITE_ERRORS, auth="admin"),
    RouteSpec("DELETE", "/admin/risk/blocklist", controls_admin.remove_blocked, "Unblock a customer or instrument",
              controls_wire.BlocklistView, 200, controls_wire.BlocklistEntry,
              errors=(*_CONTROL_WRITE_ERRORS, 404), auth="admin"),
    RouteSpec("GET", "/admin/payments/{id}/controls", controls_admin.get_payment_controls,
              "The risk decisions and limits recorded with a payment", controls_wire.PaymentControlsView,
              errors=(401, 404), auth="admin"),
    RouteSpec("GET", "/admin/transfers/{id}/controls", controls_admin.get_transfer_controls,
              "The risk decisions and limits recorded with a transfer", controls_wire.TransferControlsView,
              errors=(401, 404), auth="admin"),
    RouteSpec("GET", "/admin/payouts/{id}/controls", controls_admin.get_payout_controls,
              "The risk decisions and limits recorded with a payout", controls_wire.PayoutControlsView,
              errors=(401, 404), auth="admin"),
)

# Payouts held for a person (engine/payouts/admin.py): the channel's word could not be booked as it stands.
_PAYOUT_ADMIN_ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("GET", "/admin/payouts", payout_admin.list_held_payouts,
              "Held payouts (held=true), newest first, any merchant", payout_wire.HeldPayoutList,
              query=payout_wire.AdminPayoutsQuery, errors=(400, 401), auth="admin"),
    RouteSpec("GET", "/admin/payouts/{id}", payout_admin.get_payout,
              "A payout with its internals: hold, channel, attempts, last error (masked), limits/risk record, "
              "transitions", payout_wire.AdminPayout, query=wire.NoQuery, auth="admin"),
    RouteSpec("POST", "/admin/payouts/{id}/resolve", payout_admin.resolve_payout,
              "Resolve a held payout: retry (ask the channel again), fail (nothing was paid: unfrozen) or succeed "
              "(our amount was paid: settled); 409 illegal_transition when it is not held",
              payout_wire.AdminPayout, 200, payout_wire.ResolvePayout, errors=(400, 401, 404, 409, 413),
              auth="admin"),
)

ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("POST", "/v1/customers", handlers.create_customer, "Create a customer with a wallet account",
              wire.Customer, 201, wire.CreateCustomer, errors=_POST_ERRORS),
    RouteSpec("GET", "/v1/customers/{id}", handlers.get_customer, "A customer with its wallet balance",
              wire.Customer, query=wire.NoQuery),
    RouteSpec("POST", "/v1/customers/{id}/topups", handlers.create_topup, "Credit a customer's wallet",
              wire.Topup, 201, wire.CreateTopup, errors=_POST_ERRORS),
    RouteSpec("POST", "/v1/payments", handlers.create_payment, "Create a payment (wallet: synchronous debit)",
              wire.Payment, 201, wire.CreatePayment, errors=_POST_ERRORS),
    RouteSpec("GET", "/v1/payments", handlers.list_payments_handler, "List payments, newest first",
              wire.PaymentList, query=wire.ListPaymentsQuery),
    RouteSpec("GET", "/v1/payments/{id}", handlers.get_payment_handler, "One payment", wire.Payment,
              query=wire.GetPaymentQuery),
    RouteSpec("POST", "/v1/payments/{id}/close", handlers.close_payment, "Close an unpaid payment",
              wire.Payment, 200, wire.ClosePayment, errors=_POST_ERRORS),
    RouteSpec("POST", "/v1/payments/{id}/refunds", handlers.create_refund, "Refund a payment (partly or fully)",
              wire.Refund, 201, wire.CreateRefund, errors=_POST_ERRORS),
    RouteSpec("GET", "/v1/refunds/{id}", handlers.get_refund_handler, "One refund", wire.Refund,
              query=wire.NoQuery),
    RouteSpec("POST", "/v1/payouts", payout_handlers.create_payout,
              "Pay out to a bank card (customer wallet) or bank account (merchant available); amount frozen now",
              payout_wire.Payout, 201, payout_wire.CreatePayout, errors=(*_POST_ERRORS, 403, 424, 503)),
    RouteSpec("GET", "/v1/payouts/{id}", payout_handlers.get_payout, "One payout", payout_wire.Payout,
              query=wire.NoQuery),
    RouteSpec("POST", "/v1/transfers", transfer_handlers.create_transfer,
              "Transfer to a customer's wallet from another customer's wallet or the merchant's available balance",
              transfer_wire.Transfer, 201, transfer_wire.CreateTransfer, errors=_POST_ERRORS),
    RouteSpec("GET", "/v1/transfers", transfer_handlers.list_transfers_handler, "List transfers, newest first",
              transfer_wire.TransferList, query=transfer_wire.ListTransfersQuery),
    RouteSpec("GET", "/v1/transfers/{id}", transfer_handlers.get_transfer_handler, "One transfer",
              transfer_wire.Transfer, query=wire.NoQuery),
    RouteSpec("GET", "/v1/accounts", handlers.list_accounts, "The merchant's accounts with balances",
              wire.AccountList, query=wire.NoQuery),
    RouteSpec("GET", "/v1/accounts/{id}", handlers.get_account, "One account with balance", wire.Account,
              query=wire.NoQuery),
    RouteSpec("GET", "/v1/accounts/{id}/statement", handlers.account_statement,
              "Applied legs in sequence order with running balance", wire.Statement, query=wire.StatementQuery),
    RouteSpec("GET", "/v1/events", webhook_handlers.list_events_handler, "Webhook events, newest first",
              wire.EventList, query=wire.ListEventsQuery),
    RouteSpec("POST", "/v1/events/{id}/resend", webhook_handlers.resend_event_handler,
              "Deliver a webhook event again (fresh retry window)", wire.Event, 200, wire.ResendEvent,
              errors=_POST_ERRORS),
    RouteSpec("POST", "/admin/merchants", merchant_handlers.create_merchant,
              "Onboard a merchant: profile, template accounts, primary key (its secret shown once)",
              merchant_wire.MerchantOnboarded, 201, merchant_wire.OnboardMerchant, errors=(400, 401, 409, 413, 422),
              auth="admin"),
    RouteSpec("GET", "/admin/merchants/{id}", merchant_handlers.get_merchant, "A merchant's profile, accounts and keys",
              merchant_wire.Merchant, query=wire.NoQuery, auth="admin"),
    RouteSpec("PATCH", "/admin/merchants/{id}", merchant_handlers.update_merchant,
              "Change name, fee plan, settlement cycle, webhook URL, allowed methods and channels",
              merchant_wire.Merchant, 200, merchant_wire.UpdateMerchant, errors=(400, 401, 404, 413, 422),
              auth="admin"),
    RouteSpec("POST", "/admin/merchants/{id}/suspend", merchant_handlers.suspend_merchant,
              "Suspend a merchant (its requests get 403; nothing is lost)", merchant_wire.Merchant, 200,
              merchant_wire.NoBody, errors=(400, 401, 404, 409, 413), auth="admin"),
    RouteSpec("POST", "/admin/merchants/{id}/resume", merchant_handlers.resume_merchant,
              "Resume a suspended merchant", merchant_wire.Merchant, 200, merchant_wire.NoBody,
              errors=(400, 401, 404, 409, 413), auth="admin"),
    RouteSpec("POST", "/admin/merchants/{id}/keys", merchant_handlers.rotate_key,
              "Rotate the API key: a new primary (secret shown once); the old one verifies for rollover_s",
              merchant_wire.KeyIssued, 201, merchant_wire.RotateKey, errors=(400, 401, 404, 413), auth="admin"),
    RouteSpec("POST", "/admin/merchants/{id}/keys/{key_id}/revoke", merchant_handlers.revoke_key,
              "Revoke a rolling API key now", merchant_wire.ApiKeyView, 200, merchant_wire.NoBody,
              errors=(400, 401, 404, 409, 413), auth="admin"),
    RouteSpec("POST", "/admin/merchants/{id}/webhook-secret/rotate", merchant_handlers.rotate_webhook_secret,
              "Rotate the webhook secret (shown once); the old one also signs for overlap_s",
              merchant_wire.WebhookSecretIssued, 201, merchant_wire.RotateWebhookSecret,
              errors=(400, 401, 404, 413), auth="admin"),
    RouteSpec("POST", "/admin/fee-plans", merchant_handlers.create_fee_plan,
              "Create a named fee plan: basis points and/or a fixed fee, deducted at booking or invoiced",
              merchant_wire.FeePlan, 201, merchant_wire.CreateFeePlan, errors=(400, 401, 409, 413), auth="admin"),
    RouteSpec("GET", "/admin/fee-plans", merchant_handlers.list_fee_plans, "Every fee plan",
              merchant_wire.FeePlanList, query=wire.NoQuery, errors=(400, 401), auth="admin"),
    RouteSpec("GET", "/admin/fee-plans/{name}", merchant_handlers.get_fee_plan, "One fee plan",
              merchant_wire.FeePlan, query=wire.NoQuery, auth="admin"),
    RouteSpec("PUT", "/admin/fee-plans/{name}", merchant_handlers.update_fee_plan,
              "Replace a fee plan's terms (its merchants' later payments are priced by them)", merchant_wire.FeePlan,
              200, merchant_wire.UpdateFeePlan, errors=(400, 401, 404, 413), auth="admin"),
    RouteSpec("POST", "/admin/merchants/{id}/fee-invoices", merchant_handlers.issue_fee_invoice,
              "Invoice the merchant's invoiced fees owed and not billed yet (409 nothing_to_invoice when none)",
              merchant_wire.FeeInvoice, 201, merchant_wire.IssueFeeInvoice, errors=(400, 401, 404, 409, 413),
              auth="admin"),
    RouteSpec("GET", "/admin/merchants/{id}/fee-invoices", merchant_handlers.list_fee_invoices,
              "The merchant's fee invoices, newest first, with fees owed and not billed yet per currency",
              merchant_wire.FeeInvoiceList, query=wire.NoQuery, auth="admin"),
    RouteSpec("GET", "/admin/fee-invoices/{id}", merchant_handlers.get_fee_invoice, "One fee invoice",
              merchant_wire.FeeInvoice, query=wire.NoQuery, auth="admin"),
    RouteSpec("POST", "/admin/fee-invoices/{id}/pay", merchant_handlers.pay_fee_invoice,
              "Book an open invoice's payment: from the merchant's available balance or its transfer to our bank",
              merchant_wire.FeeInvoice, 200, merchant_wire.PayFeeInvoice, errors=(400, 401, 402, 404, 409, 413),
              auth="admin"),
    RouteSpec("GET", "/admin/trial-balance", admin.trial_balance_handler, "Trial balance", None,
              errors=(401,), auth="admin"),
    *_CONTROL_ROUTES,
    *_PAYOUT_ADMIN_ROUTES,
)


def add_routes(app: web.Application) -> None:
    for spec in ROUTES:
        app.router.add_route(spec.method, spec.path, spec.handler)
