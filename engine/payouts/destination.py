"""Checking where a payout goes, before anything is frozen. Pure.

Cards: 13-19 digits with a valid Luhn check digit. Bank accounts: 6-34 digits (domestic account numbers;
IBAN-style letters are not accepted by the channels we have). A holder name is always required.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from engine.instruments import instrument_digits
from engine.payouts.errors import InvalidDestination

CARD_DIGITS_MIN, CARD_DIGITS_MAX = 13, 19
ACCOUNT_DIGITS_MIN, ACCOUNT_DIGITS_MAX = 6, 34
HOLDER_LENGTH_MAX = 100
KINDS = ("bank_card", "bank_account")
# Any run of digits as long as the shortest account number we accept: in free text (an error message quoting a
# row) we cannot tell a card or account number from other numbers, so every such run is masked.
_LONG_DIGITS = re.compile(rf"\d{{{ACCOUNT_DIGITS_MIN},}}")


@dataclass(frozen=True, slots=True)
class Destination:
    kind: str
    number: str
    holder_name: str
    bank_code: str | None

    @property
    def masked(self) -> str:
        """What responses and logs show: never the full number."""
        return "*" * max(0, len(self.number) - 4) + self.number[-4:]


def mask_digits(text: str) -> str:
    """`text` with every run of 6 or more digits masked but its last 4: fit for logs."""
    return _LONG_DIGITS.sub(lambda m: "*" * (len(m[0]) - 4) + m[0][-4:], text)


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def check_destination(kind: str, number: str, holder_name: str, bank_code: str | None) -> Destination:
    """A normalized destination (spaces and dashes dropped from the number), or InvalidDestination."""
    if kind not in KINDS:
        raise InvalidDestination("destination.kind", f"destination kind must be one of {KINDS}, got {kind!r}")
    digits = instrument_digits(number)
    if digits is None:
        raise InvalidDestination("destination.number", "destination number must contain digits only")
    if kind == "bank_card":
        if not CARD_DIGITS_MIN <= len(digits) <= CARD_DIGITS_MAX:
            raise InvalidDestination("destination.number",
                                     f"a card number has {CARD_DIGITS_MIN}-{CARD_DIGITS_MAX} digits, got {len(digits)}")
        if not luhn_ok(digits):
            raise InvalidDestination("destination.number", "card number fails the Luhn check")
    elif not ACCOUNT_DIGITS_MIN <= len(digits) <= ACCOUNT_DIGITS_MAX:
        raise InvalidDestination(
            "destination.number",
            f"a bank account number has {ACCOUNT_DIGITS_MIN}-{ACCOUNT_DIGITS_MAX} digits, got {len(digits)}")
    holder = holder_name.strip()
    if not holder:
        raise InvalidDestination("destination.holder_name", "the account holder's name is required")
    if len(holder) > HOLDER_LENGTH_MAX:
        raise InvalidDestination("destination.holder_name", f"holder name longer than {HOLDER_LENGTH_MAX}")
    return Destination(kind, digits, holder, (bank_code or "").strip() or None)
