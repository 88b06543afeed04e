"""Accounts: kinds, normal sides, overdraft rules, and the value the store hands back."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import NewType

AccountId = NewType("AccountId", str)


class Side(enum.StrEnum):
    DEBIT = "D"
    CREDIT = "C"

    @property
    def opposite(self) -> Side:
        return Side.CREDIT if self is Side.DEBIT else Side.DEBIT


class AccountKind(enum.StrEnum):
    CUSTOMER = "customer"
    MERCHANT = "merchant"
    INTERNAL = "internal"


class OverdraftMode(enum.StrEnum):
    NEVER = "never"
    LIMIT = "limit"
    UNLIMITED = "unlimited"


@dataclass(frozen=True, slots=True)
class OverdraftRule:
    mode: OverdraftMode = OverdraftMode.NEVER
    limit_minor: int = 0

    def floor(self) -> int | None:
        """Lowest allowed available balance, or None when unlimited."""
        if self.mode is OverdraftMode.UNLIMITED:
            return None
        return -self.limit_minor if self.mode is OverdraftMode.LIMIT else 0

    def allows(self, available_after: int) -> bool:
        floor = self.floor()
        return floor is None or available_after >= floor


def signed_delta(side: Side, normal_side: Side, amount_minor: int) -> int:
    """Effect of a leg on a balance kept in normal-side terms."""
    return amount_minor if side is normal_side else -amount_minor


@dataclass(frozen=True, slots=True)
class Account:
    id: AccountId
    kind: AccountKind
    owner_id: str
    role: str
    subject_code: str
    currency: str
    normal_side: Side
    balance_minor: int
    frozen_minor: int
    overdraft: OverdraftRule
    hot: bool
    parent_id: AccountId | None
    sub_index: int | None
    status: str

    @property
    def available_minor(self) -> int:
        return self.balance_minor - self.frozen_minor


@dataclass(frozen=True, slots=True)
class AccountSpec:
    """What is needed to open an account; the store assigns nothing but the row."""

    id: AccountId
    kind: AccountKind
    owner_id: str
    role: str
    subject_code: str
    currency: str
    overdraft: OverdraftRule = OverdraftRule()
    hot: bool = False
