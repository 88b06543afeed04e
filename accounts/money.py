"""Money as integer minor units with an ISO 4217 currency. No floats anywhere on this path."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from accounts.errors import CurrencyMismatch, InvalidAmount, UnknownCurrency

# ISO 4217 minor-unit exponents for the currencies the engine books.
CURRENCY_EXPONENTS: dict[str, int] = {
    "CNY": 2, "USD": 2, "EUR": 2, "GBP": 2, "HKD": 2, "SGD": 2, "AUD": 2, "CAD": 2, "CHF": 2,
    "JPY": 0, "KRW": 0, "VND": 0, "IDR": 2, "INR": 2, "THB": 2, "MYR": 2, "PHP": 2, "TWD": 2,
    "BHD": 3, "KWD": 3, "JOD": 3, "OMR": 3, "TND": 3,
}

# PostgreSQL bigint bound: amounts beyond it cannot be stored, so they are invalid input.
AMOUNT_MAX_MINOR = 2**63 - 1


def check_currency(currency: str) -> str:
    """Return the currency code if the engine supports it, else raise UnknownCurrency."""
    if not isinstance(currency, str) or currency not in CURRENCY_EXPONENTS:
        raise UnknownCurrency(str(currency))
    return currency


def check_amount(amount_minor: object, allow_zero: bool = False) -> int:
    """Return a positive integer amount (bool and float refused), else raise InvalidAmount."""
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int):
        raise InvalidAmount(amount_minor, "must be an integer number of minor units")
    if amount_minor < 0 or (amount_minor == 0 and not allow_zero):
        raise InvalidAmount(amount_minor, "must be positive")
    if amount_minor > AMOUNT_MAX_MINOR:
        raise InvalidAmount(amount_minor, "too large")
    return amount_minor


@dataclass(frozen=True, slots=True, order=True)
class Money:
    amount_minor: int
    currency: str

    def __post_init__(self) -> None:
        check_currency(self.currency)
        if isinstance(self.amount_minor, bool) or not isinstance(self.amount_minor, int):
            raise InvalidAmount(self.amount_minor, "must be an integer number of minor units")

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount_minor + other.amount_minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount_minor - other.amount_minor, self.currency)

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise CurrencyMismatch(self.currency, other.currency)

    def to_major_str(self) -> str:
        """Exact decimal string in major units, e.g. 1999 CNY -> '19.99'."""
        return format_major(self.amount_minor, self.currency)


def format_major(amount_minor: int, currency: str) -> str:
    exponent = CURRENCY_EXPONENTS[check_currency(currency)]
    sign = "-" if amount_minor < 0 else ""
    digits = str(abs(amount_minor)).rjust(exponent + 1, "0")
    if exponent == 0:
        return sign + digits
    return f"{sign}{digits[:-exponent]}.{digits[-exponent:]}"


def parse_major(text: str, currency: str) -> int:
    """Parse a major-unit decimal string exactly into minor units; refuses excess precision."""
    exponent = CURRENCY_EXPONENTS[check_currency(currency)]
    try:
        value = Decimal(text.strip())
    except (InvalidOperation, AttributeError):
        raise InvalidAmount(text, "not a decimal number") from None
    if not value.is_finite():
        raise InvalidAmount(text, "not a finite number")
    scaled = value.scaleb(exponent)
    if scaled != scaled.to_integral_value():
        raise InvalidAmount(text, f"more than {exponent} decimal places for {currency}")
    return int(scaled)
