"""Runs as operators read them: every count is read from the items now (runs_store.live_counts), so the view,
the listing and the summary agree with the items whatever was resolved or superseded since the run ended."""

from __future__ import annotations

from typing import Any

from accounts.store import Conn
from engine.errors import NotFound
from engine.recon import runs_store, store, wire

EXCEPTIONS_LISTED_MAX = 1000


def live_summary(summary: dict[str, Any] | None, counts: runs_store.LiveCounts) -> dict[str, Any] | None:
    """The run's summary (what the file held, totals, supplements) with its counts replaced by the live ones."""
    if summary is None:
        return None
    return {**summary, "outcomes": counts.outcomes, "actions": counts.actions, "counts_by_state": counts.by_state}


async def run_view(conn: Conn, run_id: str) -> wire.ReconView:
    """Raises NotFound."""
    run = await store.get_run(conn, run_id)
    if run is None:
        raise NotFound("reconciliation", run_id)
    counts = (await runs_store.live_counts(conn, [run.id]))[run.id]
    exceptions = await store.items_of(conn, run.id, True, EXCEPTIONS_LISTED_MAX)
    return wire.ReconView(
        id=run.id, channel=run.channel, date=run.statement_date, status=run.status, error=run.error,
        started_at=run.started_at, finished_at=run.finished_at, counts=counts.outcomes,
        counts_by_state=counts.by_state, summary=live_summary(run.summary, counts), malformed=run.malformed or [],
        exceptions=exceptions, generation=run.generation, supersedes=run.supersedes,
        superseded_by=run.superseded_by, superseded_at=run.superseded_at, operator=run.operator)


async def run_list(conn: Conn, query: wire.RunsQuery) -> wire.RunList:
    runs = await runs_store.list_runs(conn, query.channel, query.date, query.status, query.superseded, query.limit)
    counts = await runs_store.live_counts(conn, [r.id for r in runs])
    return wire.RunList([wire.RunListed(
        id=r.id, channel=r.channel, date=r.statement_date, status=r.status, generation=r.generation,
        started_at=r.started_at, finished_at=r.finished_at, supersedes=r.supersedes, superseded_by=r.superseded_by,
        operator=r.operator, counts=counts[r.id].outcomes, open=counts[r.id].open) for r in runs])
