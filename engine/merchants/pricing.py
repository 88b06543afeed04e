"""Merchant pricing: fee = fixed + amount * bps / 10000, rounded half up, never more than the amount.

Half-up on a non-negative integer ratio: floor((amount * bps + 5000) / 10000). Integers only, so the
result is exact for any bigint amount (Python ints do not overflow).
"""

from __future__ import annotations

from dataclasses import dataclass

BPS_DENOMINATOR = 10_000
DEDUCTED = "deducted"  # the fee is netted out of what the merchant's pending account gets
INVOICED = "invoiced"  # the merchant's pending account gets the whole amount; the fee goes to its fee payable
COLLECTIONS = (DEDUCTED, INVOICED)
FEE_PAYABLE_ROLE = "merchant_fee_payable"


@dataclass(frozen=True, slots=True)
class Pricing:
    fee_bps: int = 0
    fee_fixed_minor: int = 0
    collection: str = DEDUCTED

    def fee_for(self, amount_minor: int) -> int:
        """The fee on a payment of ``amount_minor``; capped at the amount so the net is never negative."""
        assert amount_minor > 0 and 0 <= self.fee_bps <= BPS_DENOMINATOR and self.fee_fixed_minor >= 0
        variable = (amount_minor * self.fee_bps + BPS_DENOMINATOR // 2) // BPS_DENOMINATOR
        return min(amount_minor, self.fee_fixed_minor + variable)


def fee_refunded_after(fee_minor: int, amount_minor: int, refunded_minor: int) -> int:
    """Fee returned to the merchant once ``refunded_minor`` of the payment is refunded (proportional,
    half up). Each refund's fee share is the difference of this before and after it, so the shares of
    all refunds add up to exactly the whole fee when the payment is fully refunded."""
    assert 0 <= refunded_minor <= amount_minor
    return (2 * fee_minor * refunded_minor + amount_minor) // (2 * amount_minor)


def fee_txn_code(base_code: str, collection: str) -> str:
    """The posting rule for a payment or refund whose fee is collected ``collection``: PAY_WALLET,
    PAY_CHANNEL, REFUND_WALLET, REFUND_CHANNEL, or its _INVOICED twin (which also needs the merchant's
    FEE_PAYABLE_ROLE account)."""
    assert collection in COLLECTIONS, collection
    return base_code if collection == DEDUCTED else f"{base_code}_INVOICED"
