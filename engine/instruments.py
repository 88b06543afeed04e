"""Card and bank account numbers as people type them. Pure.

One normalisation for every place that compares numbers: the payout destination check stores the digits,
and the instrument blocklist hashes the same digits, so '4111 1111 1111 1111' and '4111-1111-1111-1111'
are one card to both.
"""

from __future__ import annotations

SEPARATORS = (" ", "-")


def instrument_digits(number: str) -> str | None:
    """The number without its separators (spaces and dashes), or None when anything but ASCII digits is
    left (an empty number included)."""
    digits = number
    for separator in SEPARATORS:
        digits = digits.replace(separator, "")
    return digits if digits.isascii() and digits.isdigit() else None
