"""The day report: one JSON document of a date's day-end, reconciliation runs (with live counts), settlement
batches (with totals per currency) and the exceptions open now (sections.py). Read-only; one snapshot."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

import asyncpg

from engine.dayend.store import get_day_end
from engine.recon.runs_store import list_runs, live_counts
from engine.recon.wire import RUNS_LISTED_MAX
from engine.reports.sections import EXCEPTION_SECTIONS, SectionProvider
from engine.reports.wire import (
    DayEndPart,
    DayReport,
    ReconRunPart,
    SettlementBatchPart,
    SettlementPart,
    SettlementTotals,
)
from engine.settlement.store import Batch, batches_of


def _settlement(batches: list[Batch]) -> SettlementPart:
    totals: dict[str, list[int]] = {}
    for b in batches:
        figures = (1, b.payments, b.gross, b.fees, b.refunds, b.refunded, b.refund_fees, b.adjustments, b.adjusted,
                   b.net)
        t = totals.setdefault(b.currency, [0] * len(figures))
        for i, value in enumerate(figures):
            t[i] += value
    return SettlementPart(
        [SettlementTotals(currency, *values) for currency, values in sorted(totals.items())],
        [SettlementBatchPart(b.id, b.merchant_id, b.currency, b.through_date, b.payments, b.refunds, b.adjustments,
                             b.adjusted, b.net, b.txn_no.strip() if b.txn_no else None) for b in batches])


async def build_day_report(pool: asyncpg.Pool, day: date, now: datetime,
                           providers: Sequence[SectionProvider] = EXCEPTION_SECTIONS) -> DayReport:
    """The report of ``day`` as it stands at ``now`` (the exception sections: what is open now)."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        day_end = await get_day_end(conn, day)
        runs = await list_runs(conn, None, day, None, None, RUNS_LISTED_MAX)
        counts = await live_counts(conn, [r.id for r in runs])
        batches = await batches_of(conn, day)
        exceptions = [await provide(conn, now) for provide in providers]
    return DayReport(
        day, now,
        None if day_end is None else DayEndPart(day_end.status, day_end.step, day_end.attempts, day_end.started_at,
                                                day_end.finished_at, day_end.error, day_end.report),
        [ReconRunPart(r.id, r.channel, r.status, r.started_at, r.finished_at, r.error,
                      sum(counts[r.id].outcomes.values()), counts[r.id].open, counts[r.id].by_state, r.superseded_by)
         for r in runs],
        _settlement(batches), exceptions)
