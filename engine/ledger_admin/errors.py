"""The ledger's refusals of a split or resize, as the kinds of refusal the HTTP layer answers.

The ledger (accounts/) knows nothing of HTTP. Of its errors a split can meet, the shared error table
knows only some, and one differently: funds short of a sub's sweep conflict with the account's state
(409), they do not decline a payment (402). So the split route re-raises each as one of these, which
carry the ledger's code and message unchanged.
"""

from __future__ import annotations

from accounts.errors import (
    AccountClosed,
    InsufficientFunds,
    InvalidSplitCount,
    LedgerError,
    NotSplittable,
    SplitConflict,
    UnknownAccount,
)
from engine.errors import Absent, BadInput, Conflicting, DomainError


class SplitRefused(DomainError):
    """Base of the split's refusals; ``cause`` is the ledger's error."""

    def __init__(self, cause: LedgerError, param: str | None = None) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.code = cause.code
        self.param = param


class SplitInvalid(SplitRefused, BadInput):
    pass


class SplitAccountMissing(SplitRefused, Absent):
    pass


class SplitConflicting(SplitRefused, Conflicting):
    pass


_KINDS: dict[type[LedgerError], type[SplitRefused]] = {
    InvalidSplitCount: SplitInvalid,
    UnknownAccount: SplitAccountMissing,
    AccountClosed: SplitConflicting,
    NotSplittable: SplitConflicting,
    SplitConflict: SplitConflicting,
    InsufficientFunds: SplitConflicting,
}


def split_refusal(exc: LedgerError) -> SplitRefused | None:
    """The refusal to raise for ``exc``; None for a ledger error a split should never meet (a bug: let
    it through, the error middleware answers 500)."""
    kind = _KINDS.get(type(exc))
    return None if kind is None else kind(exc, "into" if isinstance(exc, InvalidSplitCount) else None)
