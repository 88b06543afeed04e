"""Wire types of the payout endpoints: the merchant's (`POST /v1/payouts`, `GET /v1/payouts/{id}`) and the
operators' (`GET /admin/payouts?held=true`, `GET /admin/payouts/{id}`, `POST /admin/payouts/{id}/resolve`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from engine.audit.wire import OperatorName
from engine.web.wire import Amount, ChannelName, Currency, ObjectId, Ref, Request, Text

# Loose on purpose: the flow checks numbers (Luhn, lengths) and answers 422 naming the rule broken.
DestinationNumber = Annotated[str, Meta(min_length=1, max_length=64, pattern="^[^\\x00]*$")]
HolderName = Annotated[str, Meta(max_length=200, pattern="^[^\\x00]*$")]
BankCode = Annotated[str, Meta(min_length=1, max_length=32, pattern="^[A-Za-z0-9_-]+$")]
PayoutStatusName = Literal["pending", "processing", "succeeded", "failed"]
PayoutSource = Literal["customer", "merchant"]  # the customer's wallet, or the merchant's available balance


class DestinationIn(Request, frozen=True, forbid_unknown_fields=True):
    # Checked by payouts/destination.py (invalid_destination, 422); the document lists the kinds.
    kind: Annotated[str, Meta(min_length=1, max_length=32, pattern="^[a-z_]+$",
                              extra_json_schema={"enum": ["bank_card", "bank_account"]})]
    number: DestinationNumber
    holder_name: HolderName
    bank_code: BankCode | None = None


class CreatePayout(Request, frozen=True, forbid_unknown_fields=True):
    merchant_payout_no: Ref
    amount: Amount
    currency: Currency
    source: PayoutSource
    destination: DestinationIn
    customer_id: ObjectId | None = None
    channel: ChannelName | None = None
    description: Text | None = None


class Destination(msgspec.Struct, frozen=True):
    kind: str
    number_masked: str
    holder_name: str
    bank_code: str | None


class Payout(msgspec.Struct, frozen=True):
    id: str
    merchant_payout_no: str
    amount: int
    currency: str
    source: PayoutSource
    customer_id: str | None
    channel: str
    destination: Destination
    status: PayoutStatusName
    txn_no: str  # the freeze entry's transaction number, also our number at the channel
    channel_payout_no: str | None
    failure_code: str | None
    failure_message: str | None
    description: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    # Set while the payout is held for a person (e.g. "amount_mismatch": the channel reports another amount
    # than ours): it stays processing, its amount frozen, until the hold is resolved.
    hold_reason: str | None = None
    object: Literal["payout"] = "payout"


# ---------------------------------------------------------------- admin: held payouts

ResolveAction = Literal["retry", "fail", "succeed"]
# Required and not blank: the audit trail keeps why a person decided what the channel's word did not.
OperatorNote = Annotated[str, Meta(min_length=1, max_length=500, pattern="^[^\\x00]*[^\\s\\x00][^\\x00]*$")]


class ResolvePayout(Request, frozen=True, forbid_unknown_fields=True):
    """retry: clear the hold, the channel is asked again. fail: the channel confirmed nothing was paid: the amount
    goes back. succeed: the channel confirmed it paid our amount: settled."""

    action: ResolveAction
    reason: OperatorNote
    operator: OperatorName | None = None  # who decided (the admin token names nobody); recorded with the reason


class AdminPayoutsQuery(Request, frozen=True, forbid_unknown_fields=True):
    held: Annotated[bool, Meta(extra_json_schema={"const": True})]  # only held payouts are listed here
    merchant_id: ObjectId | None = None
    limit: Annotated[int, Meta(ge=1, le=100)] = 20
    starting_after: ObjectId | None = None


class HeldPayout(msgspec.Struct, frozen=True):
    id: str
    merchant_id: str
    merchant_payout_no: str
    amount: int
    currency: str
    source: str
    customer_id: str | None
    channel: str
    status: str  # internal: pending | sending | processing
    hold_reason: str | None  # amount_mismatch | no_channel
    hold_note: str | None  # why, in words (free text: long digit runs masked)
    # What the channel reported, whole (amount_mismatch; null when it reported neither, and for other holds).
    reported_amount: int | None  # minor units of reported_currency (ours when that is null)
    reported_currency: str | None
    created_at: datetime
    updated_at: datetime


class HeldPayoutList(msgspec.Struct, frozen=True):
    data: list[HeldPayout]
    has_more: bool


class TransitionView(msgspec.Struct, frozen=True):
    from_status: str | None
    to_status: str
    event: str
    reason: str | None
    actor: str | None
    at: datetime


class AdminPayout(msgspec.Struct, frozen=True):
    payout: Payout  # what the merchant sees
    merchant_id: str
    internal_status: str  # pending | sending | processing | succeeded | failed
    channel_chosen: bool
    sends: int
    attempts: int
    first_sent_at: datetime | None
    last_sent_at: datetime | None
    next_attempt_at: datetime | None
    locked_until: datetime | None
    last_error: str | None  # long digit runs masked
    # While held as amount_mismatch: what the channel reported, whole (see HeldPayout).
    reported_amount: int | None
    reported_currency: str | None
    risk: dict[str, Any] | None  # the limits/risk record stored with the payout
    transitions: list[TransitionView]
