"""Wire types of the controls admin API (limits, risk rules, blocklist). Values are checked in
engine.controls (limits.validate_rules, risk.validate_definition), so a bad one is a 422 naming it."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import Meta


def _documented(**schema: Any) -> Meta:
    """What the document says a field takes; engine.controls checks it (422 invalid_control naming it)."""
    return Meta(extra_json_schema=schema)



class LimitSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    scope: Annotated[str, _documented(enum=["customer", "merchant"])]
    window: Annotated[str, _documented(enum=["single", "daily", "monthly"])]
    method: Annotated[str, _documented(enum=["wallet", "channel", "transfer", "payout", "*"])] = "*"
    currency: Annotated[str, _documented(pattern="^([A-Z]{3}|[*])$")] = "*"
    amount_max: Annotated[int, _documented(minimum=1)] | None = None
    count_max: Annotated[int, _documented(minimum=1)] | None = None


class PutLimits(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    limits: list[LimitSpec]


class LimitSetView(msgspec.Struct, frozen=True):
    limits: list[LimitSpec]


class MerchantLimitsView(msgspec.Struct, frozen=True):
    merchant_id: str
    limits: list[LimitSpec]      # the merchant's overrides
    effective: list[LimitSpec]   # global defaults with the overrides applied


class RiskRuleSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: Annotated[str, _documented(minLength=1, maxLength=200), Meta(pattern="^[^\\x00]*$")]
    kind: Annotated[str, _documented(enum=["velocity", "amount_anomaly", "blocklist"])]
    action: Annotated[str, _documented(enum=["review", "deny"])]
    params: dict[str, Any]  # their names and ranges depend on kind (engine/controls/risk.py)
    merchant_id: str | None = None
    methods: list[Annotated[str, _documented(enum=["wallet", "channel", "transfer", "payout"])]] = \
        msgspec.field(default_factory=list)
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
    list: Annotated[str, _documented(enum=["customer", "instrument"])]
    # the customer id, or the card / bank account number (spaces, dashes ok)
    value: Annotated[str, _documented(minLength=1, maxLength=64), Meta(pattern="^[^\\x00]*$")]
    reason: Annotated[str, Meta(max_length=500, pattern="^[^\\x00]*$")] | None = None


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
