"""Which payment methods and channels a merchant may take (checked at payment and payout creation, before booking)."""

from __future__ import annotations

from engine.merchants.errors import PaymentMethodNotAllowed
from engine.merchants.store import MerchantRecord


def check_allowed(merchant: MerchantRecord, method: str, channel: str | None) -> None:
    """Raise PaymentMethodNotAllowed when the method, or the channel of a channel payment, is outside the
    merchant's allowed lists (None = no restriction, what merchants onboarded before the lists had)."""
    if merchant.allowed_methods is not None and method not in merchant.allowed_methods:
        raise PaymentMethodNotAllowed("method", method, list(merchant.allowed_methods))
    if channel is not None:
        check_channel_allowed(merchant, channel)


def check_channel_allowed(merchant: MerchantRecord, channel: str) -> None:
    """Raise PaymentMethodNotAllowed when `channel` is outside the merchant's allowed channels (payments and
    payouts alike)."""
    if merchant.allowed_channels is not None and channel not in merchant.allowed_channels:
        raise PaymentMethodNotAllowed("channel", channel, list(merchant.allowed_channels))
