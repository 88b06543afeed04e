"""Wire types of the settlement admin API: settle a closed date, list its batches, a merchant's cycle."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import msgspec
from msgspec import Meta

from engine.settlement.advice_store import HoldReason, LineKind
from engine.web.wire import ObjectId

CYCLE_DAYS_MAX = 30
LISTED_MAX = 1000


class SettleRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    date: date
    merchant_id: ObjectId | None = None  # default: every merchant


class SettlementsQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    date: date
    merchant_id: ObjectId | None = None


class CycleRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    cycle_days: Annotated[int, Meta(ge=0, le=CYCLE_DAYS_MAX, description="settle D+cycle_days")]


class BatchView(msgspec.Struct, frozen=True):
    id: str
    merchant_id: str
    currency: str
    settle_date: date
    through_date: date
    payments: int
    gross: int
    fees: int
    refunds: int
    refunded: int
    refund_fees: int
    net: int  # gross - fees - (refunded - refund_fees) + adjusted
    txn_no: str | None
    created_at: datetime
    adjustments: int  # other entries on the merchant's pending account (adjustments, reversals) settled here
    adjusted: int  # Σ what they moved, signed: + credited the merchant


class SettlementRun(msgspec.Struct, frozen=True):
    settle_date: date
    created: int  # batches made by this call
    carried: list[str]  # merchants whose refunds exceed the payments due: carried to a later date
    net_total: int
    batches: list[BatchView]


class BatchList(msgspec.Struct, frozen=True):
    settle_date: date
    batches: list[BatchView]


class CycleView(msgspec.Struct, frozen=True):
    merchant_id: str
    cycle_days: int


class RemittanceQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    after: ObjectId | None = None  # the last line id of the previous page
    limit: Annotated[int, Meta(ge=1, le=LISTED_MAX)] = 500


class RemittanceLine(msgspec.Struct, frozen=True, kw_only=True):
    kind: LineKind
    id: str  # payment id, refund id, or the adjustment's transaction number
    payment_id: str | None
    merchant_order_no: str | None
    gross: int
    fee: int
    refunded: int
    refund_fee: int  # the fee given back with the refund
    adjusted: int
    net: int  # gross - fee - refunded + refund_fee + adjusted


class Remittance(msgspec.Struct, frozen=True):
    """A batch's remittance advice: Σ of its lines' figures are the batch's (once every page is read)."""

    batch: BatchView
    lines: list[RemittanceLine]
    next_after: str | None  # pass as ?after= for the next page; null on the last


class HeldQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    merchant_id: ObjectId | None = None
    limit: Annotated[int, Meta(ge=1, le=LISTED_MAX)] = 100


class HeldPayment(msgspec.Struct, frozen=True, kw_only=True):
    merchant_id: str
    payment_id: str
    merchant_order_no: str
    currency: str
    amount: int
    fee: int
    net: int  # what settling it would pay
    channel: str | None
    booked_on: date
    reason: HoldReason
    recon_item_id: int | None  # the open difference that holds it (reason recon_item_open)
    recon_run_id: str | None
    outcome: str | None  # short | amount_mismatch | status_mismatch | long
    state: str | None
    our_amount: int | None
    their_amount: int | None


class HeldList(msgspec.Struct, frozen=True):
    data: list[HeldPayment]  # earliest booked first
    has_more: bool
