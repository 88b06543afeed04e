"""Errors of the payment and refund rules: one base class, one subclass per broken rule, carrying data."""

from __future__ import annotations

from engine.errors import BadInput, Declined, DomainError


class PaymentError(DomainError):
    """Base of every payment and refund rule the engine refuses to break."""

    code = "payment_rule_error"


class RefundExceedsPayment(PaymentError, Declined):
    code = "refund_exceeds_payment"

    def __init__(self, payment_id: str, amount: int, refundable: int) -> None:
        super().__init__(f"refund of {amount} exceeds the {refundable} still refundable on {payment_id}")
        self.payment_id = payment_id
        self.amount = amount
        self.refundable = refundable


class PaymentNotRefundable(PaymentError, Declined):
    code = "payment_not_refundable"

    def __init__(self, payment_id: str, status: str) -> None:
        super().__init__(f"payment {payment_id} is {status}; only succeeded payments can be refunded")
        self.payment_id = payment_id
        self.status = status



class PaymentCurrencyMismatch(PaymentError, BadInput):
    code = "currency_mismatch"

    def __init__(self, expected: str, got: str, param: str) -> None:
        super().__init__(f"currency {got} does not match {expected}")
        self.expected = expected
        self.got = got
        self.param = param


class BatchQueueFull(PaymentError):
    """More payments wait for the batcher than PAYENGINE_BATCH_QUEUE_MAX: refused before anything is
    written; the same request may be retried unchanged."""

    code = "batch_queue_full"
    retryable = True
    retry_after_s = 1

    def __init__(self, waiting: int) -> None:
        super().__init__(f"{waiting} payments are waiting to be booked; retry")
        self.waiting = waiting
