"""The largest amount one request may move: checked by every money-moving flow before anything is written."""

from __future__ import annotations

from engine.errors import AmountTooLarge
from engine.settings import Settings


def check_amount(settings: Settings, currency: str, amount: int, param: str = "amount") -> None:
    """Raises AmountTooLarge (400) when ``amount`` is over the currency's limit."""
    amount_max = settings.amount_max_minor(currency)
    if amount > amount_max:
        raise AmountTooLarge(amount, currency, amount_max, param)
