"""Posting rules as data: each transaction code maps to a template of legs over account roles.

A template leg names a role, a side and which amount it carries. ``build_entry`` fills roles with
accounts and amounts with numbers; legs whose amount is zero (a zero fee) are left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from accounts.errors import InvalidAmount, MissingRole, UnknownTransactionCode
from accounts.journal import EntryDraft, LegDraft, make_entry
from accounts.model import AccountId, Side

D, C = Side.DEBIT, Side.CREDIT


@dataclass(frozen=True, slots=True)
class LegTemplate:
    role: str
    side: Side
    amount_key: str


@dataclass(frozen=True, slots=True)
class PostingRule:
    txn_code: str
    description: str
    legs: tuple[LegTemplate, ...]

    @property
    def roles(self) -> frozenset[str]:
        return frozenset(t.role for t in self.legs)


def _rule(code: str, description: str, *legs: tuple[str, Side, str]) -> PostingRule:
    return PostingRule(code, description, tuple(LegTemplate(r, s, k) for r, s, k in legs))


# Amount keys: amount (gross), fee, net = amount - fee. Payments pass through gateway transit so the
# clearing account sees every payment (it nets to zero per entry, and it is hot by default).
POSTING_RULES: dict[str, PostingRule] = {
    r.txn_code: r
    for r in (
        _rule("TOPUP", "customer wallet funded from a channel",
              ("channel_receivable", D, "amount"), ("customer_wallet", C, "amount")),
        _rule("PAY_WALLET", "customer pays a merchant from the wallet",
              ("customer_wallet", D, "amount"), ("gateway_transit", C, "amount"),
              ("gateway_transit", D, "amount"), ("merchant_pending", C, "net"), ("fee_income", C, "fee")),
        _rule("PAY_CHANNEL", "customer pays a merchant through an external channel",
              ("channel_receivable", D, "amount"), ("gateway_transit", C, "amount"),
              ("gateway_transit", D, "amount"), ("merchant_pending", C, "net"), ("fee_income", C, "fee")),
        # Invoiced fees: the merchant's pending account gets the whole amount; the fee is owed (fee payable).
        _rule("PAY_WALLET_INVOICED", "customer pays a merchant from the wallet; the fee is invoiced",
              ("customer_wallet", D, "amount"), ("gateway_transit", C, "amount"),
              ("gateway_transit", D, "amount"), ("merchant_pending", C, "amount"),
              ("merchant_fee_payable", D, "fee"), ("fee_income", C, "fee")),
        _rule("PAY_CHANNEL_INVOICED", "customer pays a merchant through a channel; the fee is invoiced",
              ("channel_receivable", D, "amount"), ("gateway_transit", C, "amount"),
              ("gateway_transit", D, "amount"), ("merchant_pending", C, "amount"),
              ("merchant_fee_payable", D, "fee"), ("fee_income", C, "fee")),
        _rule("FEE", "a fee charged to the merchant outside a payment",
              ("merchant_pending", D, "fee"), ("fee_income", C, "fee")),
        _rule("REFUND_WALLET", "refund to the customer's wallet",
              ("merchant_pending", D, "net"), ("fee_income", D, "fee"), ("customer_wallet", C, "amount")),
        _rule("REFUND_CHANNEL", "refund back through the channel",
              ("merchant_pending", D, "net"), ("fee_income", D, "fee"), ("channel_receivable", C, "amount")),
        _rule("REFUND_WALLET_INVOICED", "refund to the wallet; the invoiced fee share is owed no more",
              ("merchant_pending", D, "amount"), ("customer_wallet", C, "amount"),
              ("fee_income", D, "fee"), ("merchant_fee_payable", C, "fee")),
        _rule("REFUND_CHANNEL_INVOICED", "refund through the channel; the invoiced fee share is owed no more",
              ("merchant_pending", D, "amount"), ("channel_receivable", C, "amount"),
              ("fee_income", D, "fee"), ("merchant_fee_payable", C, "fee")),
        # A refund the channel refused, re-routed by an operator to a bank payout: the same money leaves the
        # merchant and fee income as REFUND_CHANNEL would take, owed to the customer until the payout (whose
        # source is this account) pays it; a payout that fails gives it back here, still owed.
        # (Re-routed to the wallet it is a REFUND_WALLET entry.)
        _rule("REFUND_TO_BANK", "refused channel refund re-routed to a bank payout",
              ("merchant_pending", D, "net"), ("fee_income", D, "fee"), ("merchant_refunds_owed", C, "amount")),
        _rule("REFUND_TO_BANK_INVOICED", "refused channel refund re-routed to a bank payout; fee share invoiced",
              ("merchant_pending", D, "amount"), ("merchant_refunds_owed", C, "amount"),
              ("fee_income", D, "fee"), ("merchant_fee_payable", C, "fee")),
        _rule("FEE_INVOICE_PAID", "a fee invoice paid from the merchant's available balance",
              ("merchant_available", D, "amount"), ("merchant_fee_payable", C, "amount")),
        _rule("FEE_INVOICE_RECEIVED", "a fee invoice paid by the merchant's transfer to our bank",
              ("bank_deposits", D, "amount"), ("merchant_fee_payable", C, "amount")),
        _rule("SETTLE", "pending settlement becomes available to the merchant",
              ("merchant_pending", D, "amount"), ("merchant_available", C, "amount")),
        # Transfers: the payer's debit is checked in the posting statement (wallets never overdraw).
        _rule("TRANSFER_C2C", "customer wallet to another customer wallet of the same merchant",
              ("payer_wallet", D, "amount"), ("payee_wallet", C, "amount")),
        _rule("CASHBACK", "merchant available balance to a customer wallet",
              ("merchant_available", D, "amount"), ("customer_wallet", C, "amount")),
        _rule("SWEEP", "move balance between sub-accounts of one parent",
              ("from", D, "amount"), ("to", C, "amount")),
        _rule("ADJUST", "operator adjustment against the adjustments expense",
              ("adjustments", D, "amount"), ("target", C, "amount")),
        # The exception desk's adjustments (调账, engine/desk/codes.py): booked only once a second operator
        # approves. "adjustments" is the platform's loss account (operational losses and adjustments),
        # "suspense" holds money that arrived before we know whose it is.
        _rule("ADJ_CUSTOMER_COMPENSATION", "compensate a customer's wallet from the loss account",
              ("adjustments", D, "amount"), ("customer_wallet", C, "amount")),
        _rule("ADJ_MERCHANT_TOPUP", "credit a merchant's pending settlement from the loss account",
              ("adjustments", D, "amount"), ("merchant_pending", C, "amount")),
        _rule("ADJ_MERCHANT_ARREAR", "charge a merchant an arrear from its pending settlement",
              ("merchant_pending", D, "amount"), ("adjustments", C, "amount")),
        _rule("ADJ_RECON_SHORT_WRITE_OFF", "write off what a channel will never pay (a short) to the loss account",
              ("adjustments", D, "amount"), ("channel_receivable", C, "amount")),
        _rule("ADJ_RECON_LONG_SUSPENSE", "book money a channel holds for us that no order explains (a long) "
              "to suspense", ("channel_receivable", D, "amount"), ("suspense", C, "amount")),
        _rule("ADJ_SUSPENSE_TO_MERCHANT", "attribute money held in suspense to a merchant's pending settlement",
              ("suspense", D, "amount"), ("merchant_pending", C, "amount")),
        # Payouts: "source" is the customer wallet or merchant available account, "frozen" the owner's frozen
        # account (no overdraft), so the source's own overdraft rule bounds what concurrent payouts freeze.
        _rule("PAYOUT_FREEZE", "amount of a payout frozen until the channel answers",
              ("source", D, "amount"), ("frozen", C, "amount")),
        _rule("PAYOUT_SETTLE", "payout paid out by the channel from our funds there",
              ("frozen", D, "amount"), ("channel_receivable", C, "amount")),
        _rule("PAYOUT_UNFREEZE", "failed payout: the frozen amount goes back",
              ("frozen", D, "amount"), ("source", C, "amount")),
    )
}


def rule_for(txn_code: str) -> PostingRule:
    try:
        return POSTING_RULES[txn_code]
    except KeyError:
        raise UnknownTransactionCode(txn_code) from None


def build_entry(txn_code: str, txn_no: str, accounting_date: date, currency: str,
                accounts: Mapping[str, AccountId], amounts: Mapping[str, int],
                ref: str | None = None) -> EntryDraft:
    """Fill a rule's template; ``amounts`` must give 'amount' and may give 'fee' (default 0)."""
    rule = rule_for(txn_code)
    values = dict(amounts)
    values.setdefault("fee", 0)
    values.setdefault("net", values["amount"] - values["fee"])
    if values["fee"] < 0 or values["net"] < 0:
        raise InvalidAmount(values["fee"], "fee must be between 0 and the amount")
    legs: list[LegDraft] = []
    for template in rule.legs:
        if template.role not in accounts:
            raise MissingRole(txn_code, template.role)
        amount = values[template.amount_key]
        if amount == 0:
            continue
        legs.append(LegDraft(accounts[template.role], template.side, amount, currency))
    return make_entry(txn_no, txn_code, accounting_date, legs, ref)
