"""State machines of payments, vouchers and refunds as explicit tables of (state, event) -> state.

The store persists a transition with compare-and-set (``UPDATE ... WHERE status = expected``) and
records it; anything not in a table is an IllegalTransition, never a silent no-op.
"""

from __future__ import annotations

import enum
from typing import Literal

from engine.errors import IllegalTransition

PaymentMethod = Literal["wallet", "channel"]  # a customer's wallet, debited at once, or a channel's voucher

# The transitions table's from_status of an object's first transition (the tables below key it as None):
# a status no object is ever in, so it is not one of the enums.
NEW = "created"


class PaymentStatus(enum.StrEnum):
    PENDING_VOUCHER = "pending_voucher"
    AWAITING_PAYMENT = "awaiting_payment"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CLOSED = "closed"


class PaymentEvent(enum.StrEnum):
    WALLET_DEBITED = "wallet_debited"
    CHANNEL_ORDER_CREATED = "channel_order_created"
    VOUCHER_READY = "voucher_ready"
    VOUCHER_FAILED = "voucher_failed"
    PAID = "paid"
    PAYMENT_FAILED = "payment_failed"
    CLOSE = "close"
    EXPIRE = "expire"


P, PE = PaymentStatus, PaymentEvent
PAYMENT_TRANSITIONS: dict[tuple[PaymentStatus | None, PaymentEvent], PaymentStatus] = {
    (None, PE.WALLET_DEBITED): P.SUCCEEDED,
    (None, PE.CHANNEL_ORDER_CREATED): P.PENDING_VOUCHER,
    (P.PENDING_VOUCHER, PE.VOUCHER_READY): P.AWAITING_PAYMENT,
    (P.PENDING_VOUCHER, PE.VOUCHER_FAILED): P.FAILED,
    # A channel may report the payment before we saw the voucher come back.
    (P.PENDING_VOUCHER, PE.PAID): P.SUCCEEDED,
    (P.AWAITING_PAYMENT, PE.PAID): P.SUCCEEDED,
    (P.AWAITING_PAYMENT, PE.PAYMENT_FAILED): P.FAILED,
    (P.PENDING_VOUCHER, PE.CLOSE): P.CLOSED,
    (P.AWAITING_PAYMENT, PE.CLOSE): P.CLOSED,
    (P.PENDING_VOUCHER, PE.EXPIRE): P.CLOSED,
    (P.AWAITING_PAYMENT, PE.EXPIRE): P.CLOSED,
}

UNPAID = frozenset({P.PENDING_VOUCHER, P.AWAITING_PAYMENT})
FINAL = frozenset({P.SUCCEEDED, P.FAILED, P.CLOSED})
# Final without money: the payment's limit usage, counted when it was created, is owed back.
ENDED_WITHOUT_MONEY = frozenset({P.FAILED, P.CLOSED})


class VoucherStatus(enum.StrEnum):
    PENDING = "pending"
    READY = "ready"
    FAILED = "failed"
    EXPIRED = "expired"


class VoucherEvent(enum.StrEnum):
    CHANNEL_VOUCHER_CREATED = "channel_voucher_created"
    CHANNEL_REJECTED = "channel_rejected"
    PAYMENT_CLOSED = "payment_closed"


V, VE = VoucherStatus, VoucherEvent
VOUCHER_TRANSITIONS: dict[tuple[VoucherStatus, VoucherEvent], VoucherStatus] = {
    (V.PENDING, VE.CHANNEL_VOUCHER_CREATED): V.READY,
    (V.PENDING, VE.CHANNEL_REJECTED): V.FAILED,
    (V.PENDING, VE.PAYMENT_CLOSED): V.EXPIRED,
    (V.READY, VE.PAYMENT_CLOSED): V.EXPIRED,
}


class RefundStatus(enum.StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # the channel refused it: waits for an operator (engine/reroutes/)
    REROUTED = "rerouted"  # an operator sent the money another way: the customer's wallet or a bank payout
    MANUAL = "manual"  # an operator took it over by hand: no money moved here


class RefundEvent(enum.StrEnum):
    WALLET_CREDITED = "wallet_credited"
    CHANNEL_REFUND_REQUESTED = "channel_refund_requested"
    CHANNEL_REFUND_SUCCEEDED = "channel_refund_succeeded"
    CHANNEL_REFUND_FAILED = "channel_refund_failed"
    REROUTED_TO_WALLET = "rerouted_to_wallet"
    REROUTED_TO_BANK = "rerouted_to_bank"
    MARKED_MANUAL = "marked_manual"


R, RE = RefundStatus, RefundEvent
REFUND_TRANSITIONS: dict[tuple[RefundStatus | None, RefundEvent], RefundStatus] = {
    (None, RE.WALLET_CREDITED): R.SUCCEEDED,
    (None, RE.CHANNEL_REFUND_REQUESTED): R.PENDING,
    (R.PENDING, RE.CHANNEL_REFUND_SUCCEEDED): R.SUCCEEDED,
    (R.PENDING, RE.CHANNEL_REFUND_FAILED): R.FAILED,
    (R.FAILED, RE.REROUTED_TO_WALLET): R.REROUTED,
    (R.FAILED, RE.REROUTED_TO_BANK): R.REROUTED,
    (R.FAILED, RE.MARKED_MANUAL): R.MANUAL,
}

class AutoRefundStatus(enum.StrEnum):
    """The refund of money a channel collected for a payment we had closed (an exception's auto-refund)."""

    REQUESTED = "requested"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # the channel refused it: waits for an operator (engine/reroutes/)
    REROUTED = "rerouted"
    MANUAL = "manual"


A = AutoRefundStatus
AUTO_REFUND_TRANSITIONS: dict[tuple[AutoRefundStatus, RefundEvent], AutoRefundStatus] = {
    (A.REQUESTED, RE.CHANNEL_REFUND_SUCCEEDED): A.SUCCEEDED,
    (A.REQUESTED, RE.CHANNEL_REFUND_FAILED): A.FAILED,
    (A.FAILED, RE.REROUTED_TO_WALLET): A.REROUTED,
    (A.FAILED, RE.REROUTED_TO_BANK): A.REROUTED,
    (A.FAILED, RE.MARKED_MANUAL): A.MANUAL,
}

# Where an operator sends a failed refund, and the event that records it.
RerouteTarget = Literal["wallet", "bank", "manual"]
REROUTE_EVENTS: dict[str, RefundEvent] = {
    "wallet": RE.REROUTED_TO_WALLET, "bank": RE.REROUTED_TO_BANK, "manual": RE.MARKED_MANUAL}
# Final outcomes the merchant hears of (the webhook event type of each status an operator moves a refund to).
REFUND_OUTCOME_EVENTS: dict[RefundStatus, str] = {R.REROUTED: "refund.rerouted", R.MANUAL: "refund.manual"}


def next_payment_status(status: PaymentStatus | None, event: PaymentEvent) -> PaymentStatus:
    """The state ``event`` moves a payment to (``status`` None: a new one); raises IllegalTransition if the
    table has no row."""
    try:
        return PAYMENT_TRANSITIONS[(status, event)]
    except KeyError:
        raise IllegalTransition("payment", status or NEW, event.value) from None


def next_voucher_status(status: VoucherStatus, event: VoucherEvent) -> VoucherStatus:
    try:
        return VOUCHER_TRANSITIONS[(status, event)]
    except KeyError:
        raise IllegalTransition("voucher", status.value, event.value) from None


def next_refund_status(status: RefundStatus | None, event: RefundEvent) -> RefundStatus:
    try:
        return REFUND_TRANSITIONS[(status, event)]
    except KeyError:
        raise IllegalTransition("refund", status or NEW, event.value) from None


def next_auto_refund_status(status: AutoRefundStatus, event: RefundEvent) -> AutoRefundStatus:
    try:
        return AUTO_REFUND_TRANSITIONS[(status, event)]
    except KeyError:
        raise IllegalTransition("auto-refund", status.value, event.value) from None
