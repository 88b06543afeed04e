"""The fixed table of adjustment codes the desk books: each is a posting rule of accounts/rules.py (the legs
as data) plus which of its roles the platform fills and which the proposer names.

Platform roles are the platform's own accounts in the proposal's currency (the loss account ``adjustments``,
``suspense``, ``channel_receivable``); every other role names a customer's or merchant's account of exactly
that role. Adding an adjustment is adding a rule there and a code here.
"""

from __future__ import annotations

from dataclasses import dataclass

from accounts.rules import PostingRule, rule_for

PLATFORM_ROLES = frozenset({"adjustments", "suspense", "channel_receivable"})

ADJUSTMENT_CODES: tuple[str, ...] = (
    "ADJ_CUSTOMER_COMPENSATION",
    "ADJ_MERCHANT_TOPUP",
    "ADJ_MERCHANT_ARREAR",
    "ADJ_RECON_SHORT_WRITE_OFF",
    "ADJ_RECON_LONG_SUSPENSE",
    "ADJ_SUSPENSE_TO_MERCHANT",
)


@dataclass(frozen=True, slots=True)
class AdjustmentCode:
    rule: PostingRule

    @property
    def code(self) -> str:
        return self.rule.txn_code

    @property
    def platform_roles(self) -> frozenset[str]:
        return self.rule.roles & PLATFORM_ROLES

    @property
    def named_roles(self) -> frozenset[str]:
        """The roles the proposer names an account for."""
        return self.rule.roles - PLATFORM_ROLES


CODES: dict[str, AdjustmentCode] = {code: AdjustmentCode(rule_for(code)) for code in ADJUSTMENT_CODES}
