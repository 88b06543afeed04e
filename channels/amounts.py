"""Exact conversion between minor units and major-unit decimal strings ("19.99").

Bank-style channels speak major units with two decimals. A float would turn 0.29 into
28.999999..., so this module works on the characters and on integers only.
"""

from __future__ import annotations

import re

# Digits, optionally a dot and one or two digits; no sign, no exponent, no whitespace.
_MAJOR_RE = re.compile(r"(0|[1-9][0-9]*)(?:\.([0-9]{1,2}))?")

# Far above any real payment; keeps a hostile 10k-digit string from becoming a huge int.
MAJOR_DIGITS_MAX = 15


class AmountFormatError(ValueError):
    """The text is not a non-negative amount with at most two decimals."""

    def __init__(self, text: str) -> None:
        super().__init__(f"not a major-unit amount with at most 2 decimals: {text!r}")
        self.text = text


def minor_to_major(amount_minor: int) -> str:
    """Format 1999 as "19.99"; always two decimals. Raises ValueError on negatives."""
    if amount_minor < 0:
        raise ValueError(f"negative amount: {amount_minor}")
    major, cents = divmod(amount_minor, 100)
    return f"{major}.{cents:02d}"


def major_to_minor(text: str) -> int:
    """Parse "19.99", "19.9" or "19" into 1999, 1990, 1900 exactly.

    Raises AmountFormatError on signs, more than two decimals, exponents, spaces or
    anything not a plain decimal number.
    """
    match = _MAJOR_RE.fullmatch(text)
    if match is None or len(match.group(1)) > MAJOR_DIGITS_MAX:
        raise AmountFormatError(text)
    whole, fraction = match.group(1), match.group(2) or ""
    return int(whole) * 100 + int(fraction.ljust(2, "0") or "0")
