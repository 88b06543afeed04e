"""Wire types of the operators' refund routes: `GET /admin/refunds?status=failed` and
`POST /admin/refunds/{id}/reroute`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

import msgspec
from msgspec import Meta

from engine.audit.wire import OperatorName
from engine.payments.states import AutoRefundStatus, RerouteTarget
from engine.payments.wire import Refund
from engine.payouts.wire import DestinationIn, OperatorNote
from engine.web.wire import ChannelName, ObjectId, Request


class FailedRefundsQuery(Request, frozen=True, forbid_unknown_fields=True):
    status: Annotated[Literal["failed"], Meta(extra_json_schema={"const": "failed"})]  # what waits for a person
    merchant_id: ObjectId | None = None
    limit: Annotated[int, Meta(ge=1, le=100)] = 20
    starting_after: ObjectId | None = None


class RerouteRefund(Request, frozen=True, forbid_unknown_fields=True):
    """wallet: credit the customer's wallet (the payment must name a customer with one). bank: pay it out to the
    destination (a bank payout, through the payouts domain). manual: an operator takes it over by hand; no money
    moves here. Each is final, made once, recorded with who and why."""

    # For /openapi.json: a bank re-route names where the money goes.
    json_schema_rules: ClassVar[dict[str, Any]] = {
        "if": {"properties": {"to": {"const": "bank"}}, "required": ["to"]},
        "then": {"required": ["destination"]},
    }

    to: RerouteTarget
    operator: OperatorName
    reason: OperatorNote
    destination: DestinationIn | None = None  # bank only
    channel: ChannelName | None = None  # bank only: the payout channel (default: as for merchant payouts)


class AdminRefund(msgspec.Struct, frozen=True):
    refund: Refund  # what the merchant sees
    merchant_id: str
    merchant_order_no: str
    currency: str
    customer_id: str | None
    wallet_available: bool  # the payment's customer has a wallet in its currency: `to: wallet` is possible
    failure_code: str | None  # why the channel refused it
    updated_at: datetime  # while failed: when it failed
    resolved_by: str | None
    resolution_note: str | None
    resolved_at: datetime | None


class AdminRefundList(msgspec.Struct, frozen=True):
    data: list[AdminRefund]
    has_more: bool


class AutoRefund(msgspec.Struct, frozen=True):
    """An exception's auto-refund: money a channel collected for a payment we had closed, given back."""

    exception_id: str
    merchant_id: str
    payment_id: str
    merchant_order_no: str
    amount: int
    currency: str
    refund_status: AutoRefundStatus
    customer_id: str | None
    wallet_available: bool
    rerouted_to: RerouteTarget | None
    payout_id: str | None
    resolved_by: str | None
    resolution: str | None
    detail: str
    updated_at: datetime
