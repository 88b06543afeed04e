"""Wire types of the payout endpoints (`POST /v1/payouts`, `GET /v1/payouts/{id}`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from engine.api.wire import Amount, ChannelName, Currency, ObjectId, Ref, Request, Text

# Loose on purpose: the flow checks numbers (Luhn, lengths) and answers 422 naming the rule broken.
DestinationNumber = Annotated[str, Meta(min_length=1, max_length=64, pattern="^[^\\x00]*$")]
HolderName = Annotated[str, Meta(max_length=200, pattern="^[^\\x00]*$")]
BankCode = Annotated[str, Meta(min_length=1, max_length=32, pattern="^[A-Za-z0-9_-]+$")]
PayoutStatusName = Literal["pending", "processing", "succeeded", "failed"]


class DestinationIn(Request, frozen=True, forbid_unknown_fields=True):
    kind: Annotated[str, Meta(min_length=1, max_length=32, pattern="^[a-z_]+$")]
    number: DestinationNumber
    holder_name: HolderName
    bank_code: BankCode | None = None


class CreatePayout(Request, frozen=True, forbid_unknown_fields=True):
    merchant_payout_no: Ref
    amount: Amount
    currency: Currency
    source: Literal["customer", "merchant"]
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
    source: Literal["customer", "merchant"]
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
