"""Wire types: every HTTP body and query the API accepts or returns, as msgspec Structs.

The same types validate requests and generate /openapi.json, so the published contract and the
checks cannot drift apart. Requests are frozen and reject unknown fields. Strings that reach
PostgreSQL exclude NUL (text columns cannot hold it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from accounts.money import AMOUNT_MAX_MINOR

Amount = Annotated[int, Meta(ge=1, le=AMOUNT_MAX_MINOR, description="positive integer in minor units")]
Currency = Annotated[str, Meta(pattern="^[A-Z]{3}$", description="ISO 4217 code")]
Ref = Annotated[str, Meta(min_length=1, max_length=64, pattern="^[A-Za-z0-9_.:-]+$")]
ObjectId = Annotated[str, Meta(min_length=1, max_length=64, pattern="^[A-Za-z0-9_]+$")]
Text = Annotated[str, Meta(max_length=500, pattern="^[^\\x00]*$")]
MetaKey = Annotated[str, Meta(min_length=1, max_length=40, pattern="^[A-Za-z0-9_.-]+$")]
Metadata = Annotated[dict[MetaKey, Text], Meta(max_length=50)]
ChannelName = Annotated[str, Meta(pattern="^[a-z0-9_-]{1,32}$")]
PaymentStatusName = Literal["pending_voucher", "awaiting_payment", "succeeded", "failed", "closed"]


class Request(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    pass


class CreateCustomer(Request, frozen=True, forbid_unknown_fields=True):
    external_id: Ref
    currency: Currency


class CreateTopup(Request, frozen=True, forbid_unknown_fields=True):
    amount: Amount
    topup_no: Ref


class CreatePayment(Request, frozen=True, forbid_unknown_fields=True):
    merchant_order_no: Ref
    amount: Amount
    currency: Currency
    method: Literal["wallet", "channel"]
    customer_id: ObjectId | None = None
    channel: ChannelName | None = None
    expires_in_s: Annotated[int, Meta(ge=60, le=86400)] | None = None
    description: Text | None = None
    metadata: Metadata = msgspec.field(default_factory=dict)


class ClosePayment(Request, frozen=True, forbid_unknown_fields=True):
    pass


class CreateRefund(Request, frozen=True, forbid_unknown_fields=True):
    amount: Amount
    merchant_refund_no: Ref
    reason: Text | None = None


class CreateMerchant(Request, frozen=True, forbid_unknown_fields=True):
    name: Annotated[str, Meta(min_length=1, max_length=100, pattern="^[^\\x00]*$")]
    currencies: Annotated[list[Currency], Meta(min_length=1, max_length=20)]
    fee_bps: Annotated[int, Meta(ge=0, le=10000)] = 0
    fee_fixed: Annotated[int, Meta(ge=0, le=AMOUNT_MAX_MINOR)] = 0
    hot: bool = False
    id: ObjectId | None = None
    webhook_url: Annotated[str, Meta(max_length=2000, pattern="^https?://[^\\s\\x00]+$")] | None = None


class ListPaymentsQuery(Request, frozen=True, forbid_unknown_fields=True):
    merchant_order_no: Ref | None = None
    status: PaymentStatusName | None = None
    limit: Annotated[int, Meta(ge=1, le=100)] = 10
    starting_after: ObjectId | None = None


class GetPaymentQuery(Request, frozen=True, forbid_unknown_fields=True):
    sync: bool = False


class StatementQuery(Request, frozen=True, forbid_unknown_fields=True):
    limit: Annotated[int, Meta(ge=1, le=500)] = 100
    starting_after: Annotated[int, Meta(ge=0, le=AMOUNT_MAX_MINOR)] | None = None


class NoQuery(Request, frozen=True, forbid_unknown_fields=True):
    pass


EventTypeName = Annotated[str, Meta(min_length=3, max_length=64, pattern="^[a-z_]+\\.[a-z_]+$")]


class ListEventsQuery(Request, frozen=True, forbid_unknown_fields=True):
    type: EventTypeName | None = None
    limit: Annotated[int, Meta(ge=1, le=100)] = 10
    starting_after: ObjectId | None = None


class ResendEvent(Request, frozen=True, forbid_unknown_fields=True):
    pass


# ---------------------------------------------------------------- responses

class Voucher(msgspec.Struct, frozen=True):
    id: str
    status: Literal["pending", "ready", "failed", "expired"]
    channel: str
    pay_url: str | None
    qr_code: str | None
    expires_at: datetime


class Payment(msgspec.Struct, frozen=True):
    id: str
    merchant_order_no: str
    amount: int
    currency: str
    method: Literal["wallet", "channel"]
    customer_id: str | None
    status: PaymentStatusName
    amount_refunded: int
    fee: int
    txn_no: str
    voucher: Voucher | None
    expires_at: datetime
    description: str | None
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime
    object: Literal["payment"] = "payment"


class PaymentList(msgspec.Struct, frozen=True):
    data: list[Payment]
    has_more: bool
    object: Literal["list"] = "list"


class Refund(msgspec.Struct, frozen=True):
    id: str
    payment_id: str
    merchant_refund_no: str
    amount: int
    status: Literal["pending", "succeeded", "failed"]
    reason: str | None
    txn_no: str
    created_at: datetime
    object: Literal["refund"] = "refund"


class Customer(msgspec.Struct, frozen=True):
    id: str
    external_id: str
    currency: str
    wallet_account_id: str
    balance: int  # spendable
    created_at: datetime
    frozen: int = 0  # held for payouts in flight: not spendable, still the customer's
    object: Literal["customer"] = "customer"


class Topup(msgspec.Struct, frozen=True):
    id: str
    customer_id: str
    topup_no: str
    amount: int
    txn_no: str
    balance: int
    created_at: datetime
    object: Literal["topup"] = "topup"


class SubAccount(msgspec.Struct, frozen=True):
    id: str
    sub_index: int
    balance: int
    pending: int


class Account(msgspec.Struct, frozen=True):
    id: str
    role: str
    currency: str
    hot: bool
    balance: int  # applied (for a split account: the sum over its sub-accounts)
    pending: int  # buffered legs not yet applied (0 for accounts that are not hot)
    projected: int  # balance + pending
    available: int  # balance - frozen
    sub_accounts: list[SubAccount]
    object: Literal["account"] = "account"


class AccountList(msgspec.Struct, frozen=True):
    data: list[Account]
    has_more: bool = False
    object: Literal["list"] = "list"


class StatementLine(msgspec.Struct, frozen=True):
    seq: int
    txn_no: str
    txn_code: str
    side: Literal["D", "C"]
    amount: int
    delta: int
    balance_after: int
    accounting_date: str
    applied_at: datetime


class Statement(msgspec.Struct, frozen=True):
    account_id: str
    data: list[StatementLine]
    has_more: bool
    object: Literal["list"] = "list"


class Event(msgspec.Struct, frozen=True):
    """A webhook event as the merchant can list it; ``data`` is the object exactly as delivered."""

    id: str
    type: str
    created_at: datetime
    data: dict[str, Any]
    delivery_status: Literal["pending", "delivered", "dead"]
    attempts: int  # in the current delivery window (a re-send starts a new one)
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    last_error: str | None
    object: Literal["event"] = "event"


class EventList(msgspec.Struct, frozen=True):
    data: list[Event]
    has_more: bool
    object: Literal["list"] = "list"


class MerchantCreated(msgspec.Struct, frozen=True):
    id: str
    name: str
    secret: str
    currencies: list[str]
    fee_bps: int
    fee_fixed: int
    webhook_url: str | None = None
    webhook_secret: str | None = None  # signs Payengine-Signature; shown once, like the API secret
    object: Literal["merchant"] = "merchant"


class ErrorDetail(msgspec.Struct, frozen=True):
    type: Literal["invalid_request_error", "authentication_error", "permission_error", "idempotency_error",
                  "payment_error", "conflict_error", "rate_limit_error", "channel_error", "api_error"]
    code: str
    message: str
    param: str | None = None
    existing_id: str | None = None


class ErrorBody(msgspec.Struct, frozen=True):
    error: ErrorDetail
