"""Errors of the payout rules: one base class, one subclass per broken rule, carrying data."""

from __future__ import annotations

from engine.errors import Declined, DomainError, IllegalTransition, Unprocessable


class PayoutError(DomainError):
    """Base of every payout rule the engine refuses to break."""

    code = "payout_rule_error"


class InvalidDestination(PayoutError, Unprocessable):
    """The bank card or account cannot receive a payout as given (422): nothing was frozen."""

    code = "invalid_destination"

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


class PayoutSourceMissing(PayoutError, Declined):
    """The merchant has no available balance account in this currency yet (402: nothing to pay out)."""

    code = "insufficient_funds"

    def __init__(self, merchant_id: str, currency: str) -> None:
        super().__init__(f"merchant {merchant_id} has no available balance in {currency}")
        self.merchant_id = merchant_id
        self.currency = currency


class PayoutNotHeld(IllegalTransition, PayoutError):
    """Only a held payout can be resolved by a person (409 illegal_transition): this one is not held (any more),
    e.g. it was never held, is final, or another resolve of it won."""

    def __init__(self, payout_id: str, status: str, action: str) -> None:
        DomainError.__init__(  # IllegalTransition's fields, with a message that says what is missing
            self, f"payout {payout_id} is not held (status {status!r}): only a held payout can be resolved")
        self.kind, self.status, self.event = "payout", status, f"resolve_{action}"
        self.payout_id = payout_id


class PayoutNeverSent(IllegalTransition, PayoutError):
    """A held payout that was never sent to any channel cannot have been paid, so a person may not mark it
    succeeded (409 illegal_transition): fail it (its amount goes back) or retry it once a channel can take it."""

    def __init__(self, payout_id: str, hold_reason: str | None) -> None:
        DomainError.__init__(
            self, f"payout {payout_id} was never sent to a channel (held: {hold_reason}), so nothing can have been"
                  " paid: fail it to give its amount back, or retry it once a channel can take it")
        self.kind, self.status, self.event = "payout", "pending", "resolve_succeed"
        self.payout_id = payout_id
