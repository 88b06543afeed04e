"""Errors of re-routing a failed refund: one base class, one subclass per broken rule, carrying data."""

from __future__ import annotations

from engine.errors import Conflicting, DomainError, Unprocessable


class RerouteError(DomainError):
    """Base of every rule a refund re-route refuses to break."""

    code = "reroute_rule_error"


class NoCustomerWallet(RerouteError, Unprocessable):
    """The refund's payment names no customer with a wallet in its currency: nothing to credit (422)."""

    code = "no_customer_wallet"

    def __init__(self, refund_id: str, customer_id: str | None) -> None:
        who = f"customer {customer_id} has no wallet in the payment's currency" if customer_id else \
            "the payment names no customer"
        super().__init__(f"refund {refund_id} cannot go to a wallet: {who}")
        self.refund_id = refund_id
        self.customer_id = customer_id
        self.param = "to"


class RefundRoomTaken(RerouteError, Conflicting):
    """The failed refund gave its reservation back, and later refunds of the payment used that room: counting this
    one as refunded again would refund more than was paid (409; nothing written)."""

    code = "refund_exceeds_payment"

    def __init__(self, refund_id: str, payment_id: str) -> None:
        super().__init__(f"refund {refund_id} no longer fits in what is refundable on {payment_id}: "
                         "later refunds took its room")
        self.refund_id = refund_id
        self.payment_id = payment_id
