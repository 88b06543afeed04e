"""Wire types of the settlement admin API: settle a closed date, list its batches, a merchant's cycle."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import msgspec
from msgspec import Meta

from engine.web.wire import ObjectId

CYCLE_DAYS_MAX = 30


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
    net: int
    txn_no: str | None
    created_at: datetime


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
