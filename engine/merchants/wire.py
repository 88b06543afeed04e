"""Wire types of the merchant admin endpoints (msgspec Structs, frozen, rejecting unknown fields)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from accounts.money import AMOUNT_MAX_MINOR
from engine.web.wire import Currency, ObjectId, Request

ROLLOVER_MAX_S = 30 * 86_400
ROLLOVER_DEFAULT_S = 86_400
WEBHOOK_OVERLAP_DEFAULT_S = 86_400

Name = Annotated[str, Meta(min_length=1, max_length=100, pattern="^[^\\x00]*$")]
FeeBps = Annotated[int, Meta(ge=0, le=10000)]
FeeFixed = Annotated[int, Meta(ge=0, le=AMOUNT_MAX_MINOR)]
# Printable ASCII only (percent-encode the rest): the same test in Python and in JSON Schema regexes.
WebhookUrl = Annotated[str, Meta(max_length=2000, pattern="^https?://[!-~]+$")]
# Calendar days, the cycle the settlement runner honours (D+0 .. D+30).
SettlementCycle = Annotated[str, Meta(pattern="^D\\+([0-9]|[12][0-9]|30)$", description="D+N, N calendar days")]
MethodName = Literal["wallet", "channel"]
ChannelName = Annotated[str, Meta(min_length=1, max_length=64, pattern="^[A-Za-z0-9_.-]+$")]
Methods = Annotated[list[MethodName], Meta(min_length=1, max_length=2)]
Channels = Annotated[list[ChannelName], Meta(min_length=1, max_length=32)]
Seconds = Annotated[int, Meta(ge=0, le=ROLLOVER_MAX_S)]
PlanName = Annotated[str, Meta(pattern="^[a-z0-9][a-z0-9_]{0,63}$", description="lower case, digits, _")]
FeeCollection = Literal["deducted", "invoiced"]


class OnboardMerchant(Request, frozen=True, forbid_unknown_fields=True):
    """POST /admin/merchants: the original fields plus the profile; omitted allowed_* = everything."""

    # For /openapi.json: a merchant priced by a fee plan leaves fee_bps and fee_fixed out.
    json_schema_rules: ClassVar[dict[str, Any]] = {
        "if": {"properties": {"fee_plan": {"type": "string"}}, "required": ["fee_plan"]},
        "then": {"not": {"anyOf": [{"required": ["fee_bps"]}, {"required": ["fee_fixed"]}]}},
    }

    name: Name
    currencies: Annotated[list[Currency], Meta(min_length=1, max_length=20)]
    fee_bps: FeeBps = 0
    fee_fixed: FeeFixed = 0
    hot: bool = False
    id: ObjectId | None = None
    webhook_url: WebhookUrl | None = None
    settlement_cycle: SettlementCycle | None = None
    allowed_methods: Methods | None = None
    allowed_channels: Channels | None = None
    fee_plan: PlanName | None = None  # prices the merchant instead of fee_bps / fee_fixed (leave those out)


class UpdateMerchant(Request, frozen=True, forbid_unknown_fields=True):
    """PATCH /admin/merchants/{id}: omitted fields stay; null webhook_url / allowed_* clears them."""

    name: Name | UnsetType = UNSET
    fee_bps: FeeBps | UnsetType = UNSET
    fee_fixed: FeeFixed | UnsetType = UNSET
    webhook_url: WebhookUrl | UnsetType | None = UNSET
    settlement_cycle: SettlementCycle | UnsetType = UNSET
    allowed_methods: Methods | UnsetType | None = UNSET
    allowed_channels: Channels | UnsetType | None = UNSET
    fee_plan: PlanName | UnsetType | None = UNSET  # null: back to the merchant's own fee_bps / fee_fixed


class UpdateFeePlan(Request, frozen=True, forbid_unknown_fields=True):
    """PUT /admin/fee-plans/{name}: the plan's terms, replaced; payments made before keep theirs.
    fee = fee_fixed + amount * fee_bps / 10000 (half up, at most the amount)."""

    fee_bps: FeeBps = 0
    fee_fixed: FeeFixed = 0
    collection: FeeCollection = "deducted"


class CreateFeePlan(UpdateFeePlan, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """POST /admin/fee-plans: a named plan with its terms."""

    name: PlanName


class FeePlan(msgspec.Struct, frozen=True):
    name: str
    fee_bps: int
    fee_fixed: int
    collection: FeeCollection
    merchants: int  # how many merchants reference it
    created_at: datetime
    updated_at: datetime
    object: Literal["fee_plan"] = "fee_plan"


class FeePlanList(msgspec.Struct, frozen=True):
    data: list[FeePlan]


class RotateKey(Request, frozen=True, forbid_unknown_fields=True):
    rollover_s: Seconds = ROLLOVER_DEFAULT_S  # how long the previous key keeps verifying


class RotateWebhookSecret(Request, frozen=True, forbid_unknown_fields=True):
    overlap_s: Seconds = WEBHOOK_OVERLAP_DEFAULT_S  # how long deliveries also carry the old secret's signature


class NoBody(Request, frozen=True, forbid_unknown_fields=True):
    pass


class MerchantAccountView(msgspec.Struct, frozen=True):
    id: str
    role: str
    currency: str
    balance: int


class ApiKeyView(msgspec.Struct, frozen=True):
    id: str
    state: Literal["active", "rolling", "expired", "revoked"]
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    object: Literal["api_key"] = "api_key"


class Merchant(msgspec.Struct, frozen=True):
    id: str
    name: str
    status: Literal["active", "suspended", "disabled"]
    fee_bps: int  # what the merchant is charged: its plan's terms when it has one
    fee_fixed: int
    fee_plan: str | None
    fee_collection: FeeCollection
    settlement_cycle: str
    allowed_methods: list[str] | None
    allowed_channels: list[str] | None
    webhook_url: str | None
    webhook_previous_secret_expires_at: datetime | None
    accounts: list[MerchantAccountView]
    keys: list[ApiKeyView]
    created_at: datetime
    updated_at: datetime
    status_changed_at: datetime | None = None
    webhook_secret: str | None = None  # only when this update made the first webhook secret (shown once)
    object: Literal["merchant"] = "merchant"


class MerchantOnboarded(msgspec.Struct, frozen=True):
    """The create answer: the old MerchantCreated fields (same names) plus the profile and the key id."""

    id: str
    name: str
    secret: str  # shown once
    key_id: str
    currencies: list[str]
    fee_bps: int
    fee_fixed: int
    settlement_cycle: str
    allowed_methods: list[str] | None
    allowed_channels: list[str] | None
    accounts: list[MerchantAccountView]
    fee_plan: str | None = None
    fee_collection: FeeCollection = "deducted"
    webhook_url: str | None = None
    webhook_secret: str | None = None  # shown once
    object: Literal["merchant"] = "merchant"


class KeyIssued(msgspec.Struct, frozen=True):
    """A new primary key; ``secret`` is shown this once and never again."""

    id: str
    merchant_id: str
    secret: str
    created_at: datetime
    previous_keys: list[ApiKeyView]
    object: Literal["api_key"] = "api_key"


class WebhookSecretIssued(msgspec.Struct, frozen=True):
    merchant_id: str
    webhook_secret: str  # shown once
    previous_secret_expires_at: datetime | None
    object: Literal["webhook_secret"] = "webhook_secret"


FeeInvoiceSource = Literal["available", "external"]


class IssueFeeInvoice(Request, frozen=True, forbid_unknown_fields=True):
    """POST /admin/merchants/{id}/fee-invoices: bill the invoiced fees owed and not billed yet."""

    currency: Currency


class PayFeeInvoice(Request, frozen=True, forbid_unknown_fields=True):
    """POST /admin/fee-invoices/{id}/pay: "available" takes it from the merchant's available balance;
    "external" records the merchant's transfer to our bank (give its reference)."""

    source: FeeInvoiceSource
    reference: Annotated[str, Meta(min_length=1, max_length=128, pattern="^[^\\x00]*$")] | None = None


class FeeInvoice(msgspec.Struct, frozen=True):
    id: str
    object: Literal["fee_invoice"]
    merchant_id: str
    currency: str
    amount: int
    status: Literal["open", "paid"]
    paid_from: FeeInvoiceSource | None
    paid_txn_no: str | None
    reference: str | None
    issued_at: datetime
    paid_at: datetime | None


class FeeInvoiceList(msgspec.Struct, frozen=True):
    data: list[FeeInvoice]
    fees_owed: dict[str, int]  # currency -> what fee payable holds now (applied), billed or not
    fees_unbilled: dict[str, int]  # currency -> owed less the open invoices: what the next invoice bills
