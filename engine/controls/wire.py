"""Wire types of the controls admin API (limits, risk rules, blocklist). Values are checked in
engine.controls (limits.validate_rules, risk.validate_definition), so a bad one is a 422 naming it."""

from __future__ import annotations

from typing import Any

import msgspec


class LimitSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    scope: str                   # customer | merchant
    window: str                  # single | daily | monthly
    method: str = "*"            # wallet | channel | transfer | payout | *
    currency: str = "*"          # ISO 4217 or *
    amount_max: int | None = None
    count_max: int | None = None


class PutLimits(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    limits: list[LimitSpec]


class LimitSetView(msgspec.Struct, frozen=True):
    limits: list[LimitSpec]


class MerchantLimitsView(msgspec.Struct, frozen=True):
    merchant_id: str
    limits: list[LimitSpec]      # the merchant's overrides
    effective: list[LimitSpec]   # global defaults with the overrides applied


class RiskRuleSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    kind: str                    # velocity | amount_anomaly | blocklist
    action: str                  # review | deny
    params: dict[str, Any]
    merchant_id: str | None = None
    methods: list[str] = msgspec.field(default_factory=list)
    enabled: bool = True


class RiskRuleView(msgspec.Struct, frozen=True):
    id: str
    name: str
    kind: str
    action: str
    params: dict[str, Any]
    merchant_id: str | None
    methods: list[str]
    enabled: bool


class RiskRuleList(msgspec.Struct, frozen=True):
    data: list[RiskRuleView]


class Deleted(msgspec.Struct, frozen=True):
    id: str
    deleted: bool


class BlocklistEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    list: str                    # customer | instrument
    value: str                   # the customer id, or the card / bank account number (spaces, dashes ok)
    reason: str | None = None


class BlocklistView(msgspec.Struct, frozen=True):
    list: str
    digest: str                  # only this keyed hash is stored
    reason: str | None
    deleted: bool = False


class PaymentControlsView(msgspec.Struct, frozen=True):
    payment_id: str
    controls: dict[str, Any] | None


class TransferControlsView(msgspec.Struct, frozen=True):
    transfer_id: str
    controls: dict[str, Any] | None


class PayoutControlsView(msgspec.Struct, frozen=True):
    payout_id: str
    controls: dict[str, Any] | None
