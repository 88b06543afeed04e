"""Wire types of the day report (`GET /admin/reports/day?date=`, `payengine report day`)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import msgspec

from engine.web.wire import Request


class DayReportQuery(Request, frozen=True, forbid_unknown_fields=True):
    date: date


class DayEndPart(msgspec.Struct, frozen=True):
    status: str  # running | failed | done
    step: str
    attempts: int
    started_at: datetime
    finished_at: datetime | None
    error: str | None
    report: dict[str, Any] | None  # what the day-end itself reported (trial balance, counts, ...)


class ReconRunPart(msgspec.Struct, frozen=True):
    id: str
    channel: str
    status: str  # running | done | refused
    started_at: datetime
    finished_at: datetime | None
    error: str | None
    items: int
    open: int  # differences still waiting for an action
    counts: dict[str, dict[str, int]]  # outcome -> state -> items, counted now (not frozen at run time)
    superseded_by: str | None = None  # a re-run against a corrected statement replaced it (both are kept)


class SettlementTotals(msgspec.Struct, frozen=True):
    currency: str
    batches: int
    payments: int
    gross: int
    fees: int
    refunds: int
    refunded: int
    refund_fees: int
    adjustments: int  # other entries on the pending accounts settled with the batches (engine/settlement)
    adjusted: int  # what they moved, signed
    net: int  # gross - fees - refunded + refund_fees + adjusted


class SettlementBatchPart(msgspec.Struct, frozen=True):
    id: str
    merchant_id: str
    currency: str
    through_date: date
    payments: int
    refunds: int
    adjustments: int
    adjusted: int
    net: int
    txn_no: str | None


class SettlementPart(msgspec.Struct, frozen=True):
    totals: list[SettlementTotals]  # per currency
    batches: list[SettlementBatchPart]


class ExceptionSection(msgspec.Struct, frozen=True):
    """One kind of open exception, as a section provider (sections.py) reports it: how many are open now, and the
    oldest of them (up to ITEMS_MAX) as rows of ``columns``."""

    name: str  # stable key, e.g. "open_recon_differences"
    title: str  # for the page
    count: int
    columns: list[str]
    items: list[dict[str, Any]]


class DayReport(msgspec.Struct, frozen=True):
    date: date
    generated_at: datetime
    day_end: DayEndPart | None  # null: no day-end ran for the date
    reconciliation: list[ReconRunPart]
    settlement: SettlementPart
    exceptions: list[ExceptionSection]  # open now, whatever their date
    object: str = "day_report"
