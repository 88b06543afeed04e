"""Errors of the payment rules: one base class, one subclass per broken rule, carrying data."""

from __future__ import annotations


class PaymentRuleError(Exception):
    """Base of every payment/refund/idempotency rule the engine refuses to break."""

    code = "payment_rule_error"


class IllegalTransition(PaymentRuleError):
    code = "illegal_transition"

    def __init__(self, kind: str, status: str, event: str) -> None:
        super().__init__(f"a {kind} in status {status!r} cannot take event {event!r}")
        self.kind = kind
        self.status = status
        self.event = event


class NotFound(PaymentRuleError):
    code = "resource_missing"

    def __init__(self, kind: str, object_id: str, param: str | None = None) -> None:
        super().__init__(f"no such {kind}: {object_id}")
        self.kind = kind
        self.object_id = object_id
        self.param = param


class DuplicateOrder(PaymentRuleError):
    """A merchant order/refund/topup number or customer external id was used before."""

    code = "duplicate_order"

    def __init__(self, field: str, value: str, existing_id: str) -> None:
        super().__init__(f"{field} {value!r} already used by {existing_id}")
        self.field = field
        self.value = value
        self.existing_id = existing_id


class RefundExceedsPayment(PaymentRuleError):
    code = "refund_exceeds_payment"

    def __init__(self, payment_id: str, amount: int, refundable: int) -> None:
        super().__init__(f"refund of {amount} exceeds the {refundable} still refundable on {payment_id}")
        self.payment_id = payment_id
        self.amount = amount
        self.refundable = refundable


class PaymentNotRefundable(PaymentRuleError):
    code = "payment_not_refundable"

    def __init__(self, payment_id: str, status: str) -> None:
        super().__init__(f"payment {payment_id} is {status}; only succeeded payments can be refunded")
        self.payment_id = payment_id
        self.status = status


class UnsupportedCurrency(PaymentRuleError):
    code = "unsupported_currency"

    def __init__(self, currency: str, param: str = "currency") -> None:
        super().__init__(f"currency {currency!r} is not supported for this merchant")
        self.currency = currency
        self.param = param


class PaymentCurrencyMismatch(PaymentRuleError):
    code = "currency_mismatch"

    def __init__(self, expected: str, got: str, param: str) -> None:
        super().__init__(f"currency {got} does not match {expected}")
        self.expected = expected
        self.got = got
        self.param = param


class InvalidRequest(PaymentRuleError):
    """The request is well-formed but a field is not acceptable (names the field)."""

    code = "parameter_invalid"

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


class IdempotencyInFlight(PaymentRuleError):
    code = "idempotency_key_in_use"

    def __init__(self, key: str) -> None:
        super().__init__(f"a request with Idempotency-Key {key!r} is still being processed; retry later")
        self.key = key


class IdempotencyMismatch(PaymentRuleError):
    code = "idempotency_key_reused"

    def __init__(self, key: str) -> None:
        super().__init__(f"Idempotency-Key {key!r} was used with a different request")
        self.key = key


class IdempotencyKeyTaken(PaymentRuleError):
    """A folded claim found the key held (done, running, or another body): the caller looks at it."""

    code = "idempotency_key_taken"

    def __init__(self, key: str) -> None:
        super().__init__(f"Idempotency-Key {key!r} is already claimed")
        self.key = key
