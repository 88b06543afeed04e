"""The chart of subjects (科目) and which subject each account role books to.

The subjects table itself is seeded by migration 001; this is the code's view of the same chart.
"""

from __future__ import annotations

from dataclasses import dataclass

from accounts.model import Side


@dataclass(frozen=True, slots=True)
class Subject:
    code: str
    name: str
    category: str
    normal_side: Side


SUBJECTS: dict[str, Subject] = {
    s.code: s
    for s in (
        Subject("1001", "Receivable from payment channels", "asset", Side.DEBIT),
        Subject("1002", "Bank deposits", "asset", Side.DEBIT),
        Subject("1201", "Fees receivable from merchants (merchant fee payable)", "asset", Side.DEBIT),
        Subject("2001", "Customer wallets", "liability", Side.CREDIT),
        Subject("2002", "Merchant pending settlement", "liability", Side.CREDIT),
        Subject("2003", "Merchant available balance", "liability", Side.CREDIT),
        Subject("2101", "Gateway transit (clearing)", "liability", Side.CREDIT),
        Subject("2201", "Payouts in flight", "liability", Side.CREDIT),
        Subject("2901", "Suspense (funds not yet attributed)", "liability", Side.CREDIT),
        Subject("2202", "Refunds owed to customers", "liability", Side.CREDIT),
        Subject("3001", "Owner equity", "equity", Side.CREDIT),
        Subject("6001", "Fee income", "income", Side.CREDIT),
        Subject("6401", "Channel cost", "expense", Side.DEBIT),
        Subject("6901", "Operational losses and adjustments", "expense", Side.DEBIT),
    )
}

# Account roles used by posting rules, and the subject each books to.
ROLE_SUBJECTS: dict[str, str] = {
    "channel_receivable": "1001",
    "bank_deposits": "1002",
    "customer_wallet": "2001",
    "merchant_pending": "2002",
    "merchant_available": "2003",
    # What a merchant on an invoiced fee plan owes us in fees: its liability, our receivable (debit-normal).
    "merchant_fee_payable": "1201",
    "gateway_transit": "2101",
    "payouts_in_flight": "2201",
    # A failed channel refund re-routed to the bank: owed to the customer until its payout is paid.
    "merchant_refunds_owed": "2202",
    # Amounts frozen for a payout stay the owner's money (same subject) until the channel pays them out.
    "customer_frozen": "2001",
    "merchant_frozen": "2003",
    "equity": "3001",
    "fee_income": "6001",
    "channel_cost": "6401",
    "adjustments": "6901",
    "suspense": "2901",
}


def subject_for_role(role: str) -> Subject:
    return SUBJECTS[ROLE_SUBJECTS[role]]
