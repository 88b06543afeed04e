"""Wire types of the customer endpoints: customers and their wallets, topups, the merchant's accounts and
statements (msgspec Structs; requests frozen and rejecting unknown fields)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from accounts.money import AMOUNT_MAX_MINOR
from engine.web.wire import Amount, Currency, Ref, Request


class CreateCustomer(Request, frozen=True, forbid_unknown_fields=True):
    external_id: Ref
    currency: Currency


class CreateTopup(Request, frozen=True, forbid_unknown_fields=True):
    amount: Amount
    topup_no: Ref


class StatementQuery(Request, frozen=True, forbid_unknown_fields=True):
    limit: Annotated[int, Meta(ge=1, le=500)] = 100
    starting_after: Annotated[int, Meta(ge=0, le=AMOUNT_MAX_MINOR)] | None = None
    # Inclusive accounting dates (YYYY-MM-DD): only lines booked on those days.
    from_date: date | None = msgspec.field(default=None, name="from")
    to_date: date | None = msgspec.field(default=None, name="to")


class Customer(msgspec.Struct, frozen=True):
    id: str
    external_id: str
    currency: str
    wallet_account_id: str
    balance: int  # spendable
    created_at: datetime
    frozen: int = 0  # held for payouts in flight: not spendable, still the customer's
    object: Literal["customer"] = "customer"


class Topup(msgspec.Struct, frozen=True):
    id: str
    customer_id: str
    topup_no: str
    amount: int
    txn_no: str
    balance: int
    created_at: datetime
    object: Literal["topup"] = "topup"


class SubAccount(msgspec.Struct, frozen=True):
    id: str
    sub_index: int
    balance: int
    pending: int


class Account(msgspec.Struct, frozen=True):
    id: str
    role: str
    currency: str
    hot: bool
    balance: int  # applied (for a split account: the sum over its sub-accounts)
    pending: int  # buffered legs not yet applied (0 for accounts that are not hot)
    projected: int  # balance + pending
    # What the owner can draw now (balance - frozen): only on an account it can draw from (the merchant's available
    # balance: payouts, cashback). Null on every other account: pending settlement is the merchant's only once
    # settled, and fee payable, frozen or refunds-owed money is not the merchant's to draw at all.
    available: int | None
    sub_accounts: list[SubAccount]
    object: Literal["account"] = "account"


class AccountList(msgspec.Struct, frozen=True):
    data: list[Account]
    has_more: bool = False
    object: Literal["list"] = "list"


class StatementLine(msgspec.Struct, frozen=True):
    seq: int
    txn_no: str
    txn_code: str
    side: Literal["D", "C"]
    amount: int
    delta: int
    balance_after: int
    accounting_date: str
    applied_at: datetime
    # What the entry was for: the payment or refund its reference names (a refund's line also names its payment),
    # the merchant's order (and refund) number, and on the payment's or refund's own entry its gross amount and fee
    # (net = gross - fee; a refund's fee is the fee share it gave back). Null where the entry is neither.
    ref: str | None = None
    payment_id: str | None = None
    refund_id: str | None = None
    merchant_order_no: str | None = None
    merchant_refund_no: str | None = None
    gross: int | None = None
    fee: int | None = None
    net: int | None = None


class Statement(msgspec.Struct, frozen=True):
    account_id: str
    data: list[StatementLine]
    has_more: bool
    object: Literal["list"] = "list"
