"""Rules of merchant operations: one base class, one subclass per broken rule, carrying data."""

from __future__ import annotations

from engine.errors import Conflicting, DomainError, NotPermitted, Unprocessable


class MerchantOpsError(DomainError):
    code = "merchant_error"


class MerchantSuspended(MerchantOpsError, NotPermitted):
    """The merchant signed correctly but is suspended: nothing is served until it is resumed."""

    code = "merchant_suspended"

    def __init__(self, merchant_id: str) -> None:
        super().__init__(f"merchant {merchant_id} is suspended; contact the platform to resume it")
        self.merchant_id = merchant_id


class PaymentMethodNotAllowed(MerchantOpsError, NotPermitted):
    """The payment's method or channel is not among the merchant's allowed ones."""

    code = "payment_method_not_allowed"

    def __init__(self, param: str, value: str, allowed: list[str]) -> None:
        super().__init__(f"{param} {value!r} is not allowed for this merchant; allowed: {allowed}")
        self.param = param
        self.value = value
        self.allowed = allowed


class KeyNotRevocable(MerchantOpsError, Conflicting):
    """The primary key cannot be revoked: rotate first, so the merchant always has a working key."""

    code = "key_not_revocable"

    def __init__(self, key_id: str) -> None:
        super().__init__(f"key {key_id} is the merchant's primary key; rotate the key first, then revoke this one")
        self.key_id = key_id
        self.param = "key_id"


class IllegalMerchantStatus(MerchantOpsError, Conflicting):
    """Suspend/resume from a status that does not allow it (e.g. a legacy 'disabled' merchant)."""

    code = "illegal_transition"

    def __init__(self, merchant_id: str, status: str, action: str) -> None:
        super().__init__(f"merchant {merchant_id} is {status!r}; cannot {action}")
        self.merchant_id = merchant_id
        self.status = status
        self.action = action


class UnknownFeePlan(MerchantOpsError, Unprocessable):
    """A merchant may only reference a fee plan that exists (create it first: POST /admin/fee-plans)."""

    code = "fee_plan_unknown"

    def __init__(self, name: str) -> None:
        super().__init__(f"no fee plan named {name!r}; create it first (POST /admin/fee-plans)")
        self.name = name
        self.param = "fee_plan"


class FeePlanExists(MerchantOpsError, Conflicting):
    code = "fee_plan_exists"

    def __init__(self, name: str) -> None:
        super().__init__(f"a fee plan named {name!r} exists already; PUT /admin/fee-plans/{name} changes it")
        self.name = name
        self.param = "name"


class NothingToInvoice(MerchantOpsError, Conflicting):
    """An invoice bills invoiced fees owed and not billed yet; there are none (or the merchant is in credit)."""

    code = "nothing_to_invoice"

    def __init__(self, merchant_id: str, currency: str, unbilled: int) -> None:
        super().__init__(f"merchant {merchant_id} owes no unbilled {currency} fees (unbilled: {unbilled})")
        self.merchant_id = merchant_id
        self.currency = currency
        self.param = "currency"
