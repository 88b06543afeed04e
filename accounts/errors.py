"""Ledger domain errors: one base class, one subclass per broken rule, each carrying its data."""

from __future__ import annotations


class LedgerError(Exception):
    """Base of every rule the ledger refuses to break. ``code`` is stable for APIs and logs."""

    code = "ledger_error"


class UnknownCurrency(LedgerError):
    code = "unknown_currency"

    def __init__(self, currency: str) -> None:
        super().__init__(f"unknown or unsupported currency {currency!r}")
        self.currency = currency


class InvalidAmount(LedgerError):
    code = "invalid_amount"

    def __init__(self, amount: object, reason: str) -> None:
        super().__init__(f"invalid amount {amount!r}: {reason}")
        self.amount = amount
        self.reason = reason


class CurrencyMismatch(LedgerError):
    code = "currency_mismatch"

    def __init__(self, expected: str, got: str, account_id: str | None = None) -> None:
        where = f" on account {account_id}" if account_id else ""
        super().__init__(f"currency {got} does not match {expected}{where}")
        self.expected = expected
        self.got = got
        self.account_id = account_id


class UnbalancedEntry(LedgerError):
    code = "unbalanced_entry"

    def __init__(self, currency: str, debits: int, credits: int) -> None:
        super().__init__(f"entry does not balance in {currency}: debits {debits} != credits {credits}")
        self.currency = currency
        self.debits = debits
        self.credits = credits


class MalformedEntry(LedgerError):
    code = "malformed_entry"


class UnknownAccount(LedgerError):
    code = "unknown_account"

    def __init__(self, account_id: str) -> None:
        super().__init__(f"unknown account {account_id}")
        self.account_id = account_id


class AccountClosed(LedgerError):
    code = "account_closed"

    def __init__(self, account_id: str) -> None:
        super().__init__(f"account {account_id} is closed")
        self.account_id = account_id


class InsufficientFunds(LedgerError):
    code = "insufficient_funds"

    def __init__(self, account_id: str, amount_minor: int | None = None) -> None:
        suffix = f" for {amount_minor}" if amount_minor is not None else ""
        super().__init__(f"insufficient funds on account {account_id}{suffix}")
        self.account_id = account_id
        self.amount_minor = amount_minor


class DuplicateTransaction(LedgerError):
    code = "duplicate_transaction"

    def __init__(self, txn_no: str) -> None:
        super().__init__(f"transaction {txn_no} is already booked")
        self.txn_no = txn_no


class UnknownTransactionCode(LedgerError):
    code = "unknown_transaction_code"

    def __init__(self, txn_code: str) -> None:
        super().__init__(f"no posting rule for transaction code {txn_code!r}")
        self.txn_code = txn_code


class MissingRole(LedgerError):
    code = "missing_role"

    def __init__(self, txn_code: str, role: str) -> None:
        super().__init__(f"posting rule {txn_code} needs an account for role {role!r}")
        self.txn_code = txn_code
        self.role = role


class InvalidSplitCount(LedgerError):
    code = "invalid_split_count"

    def __init__(self, into: object, low: int, high: int) -> None:
        super().__init__(f"an account splits into {low} to {high} sub-accounts, got {into!r}")
        self.into = into
        self.low = low
        self.high = high


class SplitConflict(LedgerError):
    """Another split or resize of the same account is running; nothing was changed."""

    code = "split_in_progress"

    def __init__(self, account_id: str) -> None:
        super().__init__(f"account {account_id} is being split or resized by another request")
        self.account_id = account_id


class NotSplittable(LedgerError):
    code = "account_not_splittable"

    def __init__(self, account_id: str, reason: str) -> None:
        super().__init__(f"account {account_id} cannot be split: {reason}")
        self.account_id = account_id
        self.reason = reason
