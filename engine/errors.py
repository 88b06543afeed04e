"""The shared error kernel: the kinds of refusal every domain's errors are made of, and the errors that
belong to no single domain (a missing object, a bad field, a duplicate order number, idempotency keys).

Each domain has one base class (``PaymentError``, ``ControlError``, ...) and one subclass per broken rule,
carrying data; each such error is also one of the kinds below, which is all the HTTP layer needs to know
to answer it (engine/web/errors.py holds the one table from kind to status and error type).
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of every rule the engine refuses to break."""

    code = "domain_error"


# ---------------------------------------------------------------- the kinds of refusal

class BadInput(DomainError):
    """The request names something it may not (a field, a currency, a combination): 400."""


class Absent(DomainError):
    """What the request names does not exist (for this merchant): 404."""


class Unprocessable(DomainError):
    """Well-formed, but a definition or destination cannot be used as given: 422."""


class Declined(DomainError):
    """The money cannot move as asked (funds, limits, risk, refundable amount): 402."""


class NotPermitted(DomainError):
    """The merchant may not do this (suspended, method not allowed): 403."""


class Conflicting(DomainError):
    """The object's state or an earlier request conflicts (status, duplicate, in use): 409."""


# ---------------------------------------------------------------- errors of no single domain


class IllegalTransition(Conflicting):
    code = "illegal_transition"

    def __init__(self, kind: str, status: str, event: str) -> None:
        super().__init__(f"a {kind} in status {status!r} cannot take event {event!r}")
        self.kind = kind
        self.status = status
        self.event = event


class NotFound(Absent):
    code = "resource_missing"

    def __init__(self, kind: str, object_id: str, param: str | None = None) -> None:
        super().__init__(f"no such {kind}: {object_id}")
        self.kind = kind
        self.object_id = object_id
        self.param = param


class DuplicateOrder(Conflicting):
    """A merchant order/refund/topup number or customer external id was used before."""

    code = "duplicate_order"

    def __init__(self, field: str, value: str, existing_id: str) -> None:
        super().__init__(f"{field} {value!r} already used by {existing_id}")
        self.field = field
        self.value = value
        self.existing_id = existing_id






class InvalidRequest(BadInput):
    """The request is well-formed but a field is not acceptable (names the field)."""

    code = "parameter_invalid"

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


class IdempotencyInFlight(DomainError):
    code = "idempotency_key_in_use"

    def __init__(self, key: str) -> None:
        super().__init__(f"a request with Idempotency-Key {key!r} is still being processed; retry later")
        self.key = key


class IdempotencyMismatch(DomainError):
    code = "idempotency_key_reused"

    def __init__(self, key: str) -> None:
        super().__init__(f"Idempotency-Key {key!r} was used with a different request")
        self.key = key


class IdempotencyKeyTaken(DomainError):
    """A folded claim found the key held (done, running, or another body): the caller looks at it."""

    code = "idempotency_key_taken"

    def __init__(self, key: str) -> None:
        super().__init__(f"Idempotency-Key {key!r} is already claimed")
        self.key = key


class UnsupportedCurrency(BadInput):
    """The merchant has no account in this currency (payments, topups, transfers, payouts, invoices)."""

    code = "unsupported_currency"

    def __init__(self, currency: str, param: str = "currency") -> None:
        super().__init__(f"currency {currency!r} is not supported for this merchant")
        self.currency = currency
        self.param = param



class AmountTooLarge(BadInput):
    """A request moves more than its currency's limit (PAYENGINE_AMOUNT_MAX): nothing was written."""

    code = "amount_too_large"

    def __init__(self, amount: int, currency: str, amount_max: int, param: str = "amount") -> None:
        super().__init__(f"amount {amount} exceeds the {amount_max} a single request may move in {currency}")
        self.amount = amount
        self.currency = currency
        self.amount_max = amount_max
        self.param = param
