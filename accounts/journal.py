"""Journal entries and their legs, checked before they go near the database.

An entry is one booked business event: a unique transaction number, a transaction code, an
accounting date and two or more legs whose debits equal credits in every currency.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from accounts.errors import MalformedEntry, UnbalancedEntry
from accounts.model import AccountId, Side
from accounts.money import check_amount, check_currency

TXN_NO_LENGTH = 32


@dataclass(frozen=True, slots=True)
class LegDraft:
    account_id: AccountId
    side: Side
    amount_minor: int
    currency: str


@dataclass(frozen=True, slots=True)
class EntryDraft:
    txn_no: str
    txn_code: str
    accounting_date: date
    legs: tuple[LegDraft, ...]
    ref: str | None = None


def make_entry(txn_no: str, txn_code: str, accounting_date: date, legs: Iterable[LegDraft],
               ref: str | None = None) -> EntryDraft:
    """Build an entry; raises a LedgerError subclass for any broken rule and builds nothing."""
    leg_tuple = tuple(legs)
    if len(txn_no) != TXN_NO_LENGTH or not txn_no.isdigit():
        raise MalformedEntry(f"transaction number must be {TXN_NO_LENGTH} digits, got {txn_no!r}")
    if not txn_code:
        raise MalformedEntry("transaction code is required")
    if len(leg_tuple) < 2:
        raise MalformedEntry(f"an entry needs at least two legs, got {len(leg_tuple)}")
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for leg in leg_tuple:
        check_currency(leg.currency)
        check_amount(leg.amount_minor)
        if not isinstance(leg.side, Side):
            raise MalformedEntry(f"leg side must be D or C, got {leg.side!r}")
        if not leg.account_id:
            raise MalformedEntry("leg without an account")
        totals[leg.currency][0 if leg.side is Side.DEBIT else 1] += leg.amount_minor
    for currency, (debits, credits) in totals.items():
        if debits != credits:
            raise UnbalancedEntry(currency, debits, credits)
    return EntryDraft(txn_no, txn_code, accounting_date, leg_tuple, ref)


REVERSAL_TXN_CODE = "REVERSAL"


def mirror_entry(legs: Iterable[LegDraft], txn_no: str, accounting_date: date, ref: str | None) -> EntryDraft:
    """The exact mirror of an entry's legs (冲正): every leg on its account with the other side and the same
    amount, so the two entries together move nothing. Raises as ``make_entry`` does."""
    return make_entry(txn_no, REVERSAL_TXN_CODE, accounting_date,
                      (LegDraft(leg.account_id, leg.side.opposite, leg.amount_minor, leg.currency) for leg in legs),
                      ref)
