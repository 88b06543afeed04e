"""Wire types of the payment and refund endpoints (msgspec Structs; requests frozen and rejecting unknown
fields). The same types validate requests and generate /openapi.json, so the contract cannot drift.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

import msgspec
from msgspec import Meta

from engine.payments.states import PaymentMethod, PaymentStatus, RefundStatus, RerouteTarget, VoucherStatus
from engine.web.wire import Amount, ChannelName, Currency, Metadata, ObjectId, Ref, Request, Text


class CreatePayment(Request, frozen=True, forbid_unknown_fields=True):
    # For /openapi.json: a wallet payment names the paying customer.
    json_schema_rules: ClassVar[dict[str, Any]] = {
        "if": {"properties": {"method": {"const": "wallet"}}, "required": ["method"]},
        "then": {"required": ["customer_id"], "properties": {"customer_id": {"type": "string"}}},
    }

    merchant_order_no: Ref
    amount: Amount
    currency: Currency
    method: PaymentMethod
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


class ListPaymentsQuery(Request, frozen=True, forbid_unknown_fields=True):
    merchant_order_no: Ref | None = None
    status: PaymentStatus | None = None
    limit: Annotated[int, Meta(ge=1, le=100)] = 10
    starting_after: ObjectId | None = None


class GetPaymentQuery(Request, frozen=True, forbid_unknown_fields=True):
    sync: bool = False


class Voucher(msgspec.Struct, frozen=True):
    id: str
    status: VoucherStatus
    channel: str
    pay_url: str | None
    qr_code: str | None
    expires_at: datetime


class Payment(msgspec.Struct, frozen=True):
    id: str
    merchant_order_no: str
    amount: int
    currency: str
    method: PaymentMethod
    customer_id: str | None
    status: PaymentStatus
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
    status: RefundStatus
    reason: str | None
    txn_no: str
    created_at: datetime
    object: Literal["refund"] = "refund"
    # A refund the channel refused, resolved by our operators: sent to the customer's wallet, to a bank payout
    # (payout_id), or handled by hand (manual: no money moved by the engine).
    rerouted_to: RerouteTarget | None = None
    payout_id: str | None = None
