"""Rules a transfer refuses to break: one base class, one subclass per rule, carrying its data.

Unknown customers (also another merchant's) are ``engine.errors.NotFound``; a used
transfer_no is ``DuplicateOrder``; an uncovered debit is the ledger's ``InsufficientFunds``.
"""

from __future__ import annotations

from engine.errors import BadInput, DomainError, Unprocessable


class TransferError(DomainError):
    code = "transfer_error"


class SelfTransfer(TransferError, BadInput):
    code = "transfer_to_self"

    def __init__(self, customer_id: str, param: str = "to_customer_id") -> None:
        super().__init__(f"a customer cannot transfer to itself ({customer_id})")
        self.customer_id = customer_id
        self.param = param


class TransferCurrencyMismatch(TransferError, Unprocessable):
    """A wallet is in another currency than the transfer: that would need an FX leg, which we do not book."""

    code = "currency_mismatch"

    def __init__(self, expected: str, got: str, param: str) -> None:
        super().__init__(f"the {param} wallet is in {got}, the transfer in {expected}; "
                         "cross-currency transfers (FX) are not supported")
        self.expected = expected
        self.got = got
        self.param = param


class TransferSourceInvalid(TransferError, BadInput):
    """``from_customer_id`` is required for source 'customer' and not allowed for source 'merchant'."""

    code = "parameter_invalid"

    def __init__(self, source: str) -> None:
        need = "requires" if source == "customer" else "does not take"
        super().__init__(f"source {source!r} {need} from_customer_id")
        self.source = source
        self.param = "from_customer_id"
