"""Rules the desk refuses to break: one base class, one subclass per rule, each of a kernel kind.

A missing proposal, entry or account is ``engine.errors.NotFound``; an uncovered debit when a proposal is
approved is the ledger's ``InsufficientFunds`` (402) and leaves the proposal ``proposed``.
"""

from __future__ import annotations

from collections.abc import Iterable

from engine.errors import BadInput, Conflicting, DomainError, NotPermitted


class DeskError(DomainError):
    code = "desk_error"


class UnknownAdjustmentCode(DeskError, BadInput):
    code = "unknown_adjustment_code"
    param = "code"

    def __init__(self, given: str, known: Iterable[str]) -> None:
        super().__init__(f"no adjustment code {given!r}; the desk books: {', '.join(sorted(known))}")
        self.given = given


class AccountRolesInvalid(DeskError, BadInput):
    """The proposal must name an account for exactly the code's non-platform roles."""

    code = "account_roles_invalid"
    param = "accounts"

    def __init__(self, txn_code: str, needed: Iterable[str], given: Iterable[str]) -> None:
        super().__init__(f"{txn_code} names accounts for roles {sorted(needed)}, got {sorted(given)}")


class AccountRoleMismatch(DeskError, BadInput):
    code = "account_role_mismatch"

    def __init__(self, account_id: str, role: str, expected: str) -> None:
        super().__init__(f"account {account_id} is a {role} account (a split parent's own), "
                         f"the role {expected!r} needs a {expected} account")
        self.param = f"accounts.{expected}"


class AccountCurrencyMismatch(DeskError, BadInput):
    code = "currency_mismatch"

    def __init__(self, account_id: str, account_currency: str, currency: str, param: str) -> None:
        super().__init__(f"account {account_id} is in {account_currency}, the proposal in {currency}")
        self.param = param


class FourEyesRequired(DeskError, NotPermitted):
    """The proposer decides nothing about their own proposal (403; the table refuses it too)."""

    code = "four_eyes_required"
    param = "operator"

    def __init__(self, proposal_id: str, operator: str) -> None:
        super().__init__(f"{operator} proposed {proposal_id}; a different operator must approve or reject it")


class ProposalNotOpen(DeskError, Conflicting):
    code = "proposal_not_open"

    def __init__(self, proposal_id: str, status: str) -> None:
        super().__init__(f"proposal {proposal_id} is {status}, not proposed: it was decided already")
        self.status = status


class ProposalExpired(DeskError, Conflicting):
    code = "proposal_expired"

    def __init__(self, proposal_id: str) -> None:
        super().__init__(f"proposal {proposal_id} expired before anyone approved it; nothing was booked")


class EntryIsReversal(DeskError, Conflicting):
    code = "entry_is_reversal"
    param = "txn_no"

    def __init__(self, txn_no: str) -> None:
        super().__init__(f"entry {txn_no} is itself a reversal; book a new adjustment instead of reversing it")


class EntryNotApplied(DeskError, Conflicting):
    """Legs of the entry still wait in the hot-account buffer: its effect on balances is not final yet."""

    code = "entry_not_applied"
    param = "txn_no"

    def __init__(self, txn_no: str) -> None:
        super().__init__(f"entry {txn_no} has legs still buffered; retry once the buffer has applied them")


class EntryAlreadyReversed(DeskError, Conflicting):
    code = "entry_already_reversed"
    param = "txn_no"

    def __init__(self, txn_no: str, by: str | None) -> None:
        detail = f" (by {by})" if by else ""
        super().__init__(f"entry {txn_no} is reversed or has a reversal proposed already{detail}")
        self.by = by


class EntryMixesCurrencies(DeskError, BadInput):
    code = "entry_mixes_currencies"
    param = "txn_no"

    def __init__(self, txn_no: str) -> None:
        super().__init__(f"entry {txn_no} has legs in more than one currency; the desk reverses one currency")


class DifferenceNotResolving(DeskError, Conflicting):
    """The reconciliation difference a proposal resolves was closed another way meanwhile: it cannot book."""

    code = "difference_not_resolving"

    def __init__(self, item_id: int) -> None:
        super().__init__(f"reconciliation item {item_id} is no longer waiting for this proposal")
