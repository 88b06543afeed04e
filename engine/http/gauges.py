"""Gauges of where things stand now, read from PostgreSQL and Redis each time /metrics is scraped.

Counters say what this process did; these say what is true whoever does (or fails to do) the work: every
hot account's buffer (buffer/gauges.py), the webhook outbox, payouts held for a person, open reconciliation
items and differences, desk proposals waiting for a second operator, the open accounting date. Read at scrape
time they keep moving while the process that should move them is dead or stuck, and they cost nothing between
scrapes (a few index-only reads and one Redis round trip). Each read is bounded by SAMPLE_TIMEOUT_S; one that
fails is counted and logged, and its gauges keep the values of the last good read, so /metrics itself always
answers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, time

from engine.dayend import metrics as dayend_metrics
from engine.dayend.calendar import read_open_date
from engine.dayend.schedule import due_at
from engine.desk import metrics as desk_metrics
from engine.desk.states import ProposalKind
from engine.desk.store import open_proposals
from engine.http.metrics import GAUGE_SAMPLE_FAILURES
from engine.payouts.metrics import PAYOUTS_ON_HOLD
from engine.payouts.store import held_counts
from engine.recon.metrics import RECON_OPEN_ITEMS
from engine.recon.store import open_item_counts, unresolved_differences
from engine.reroutes.metrics import FAILED_REFUND_OLDEST_AGE, FAILED_REFUNDS_AWAITING
from engine.reroutes.store import awaiting_operator
from engine.services import Services
from engine.webhooks.metrics import WEBHOOK_BACKLOG, WEBHOOK_OLDEST_DUE
from engine.webhooks.store import due_backlog

log = logging.getLogger(__name__)

SAMPLE_TIMEOUT_S = 2.0


async def sample_gauges(svc: Services) -> None:
    """Refresh every sampled gauge; never raises (a failed read is counted by its source)."""
    reads: tuple[tuple[str, Callable[[Services], Awaitable[None]]], ...] = (
        ("redis", _buffer), ("postgresql", _postgresql))
    for source, read in reads:
        try:
            await asyncio.wait_for(read(svc), SAMPLE_TIMEOUT_S)
        except Exception:  # the scrape must answer; the gauges of this source stay as last read
            GAUGE_SAMPLE_FAILURES.labels(source).inc()
            log.warning("sampling gauges failed; they keep their last values", extra={"source": source},
                        exc_info=True)


async def _buffer(svc: Services) -> None:
    await svc.buffer_sink.publish_gauges()


async def _postgresql(svc: Services) -> None:
    now = datetime.now(UTC)
    async with svc.pool.acquire() as conn:
        due, earliest = await due_backlog(conn, now)
        held = await held_counts(conn)
        open_items = await open_item_counts(conn)
        open_date = await read_open_date(conn)
        proposals = await open_proposals(conn, now)
        differences, oldest_difference = await unresolved_differences(conn)
        failed_refunds, oldest_failed = await awaiting_operator(conn)
    # No await from here on: a scrape never sees a gauge half replaced.
    WEBHOOK_BACKLOG.set(due)
    WEBHOOK_OLDEST_DUE.set(_age_s(now, earliest))
    PAYOUTS_ON_HOLD.clear()
    for reason, count in held.items():
        PAYOUTS_ON_HOLD.labels(reason).set(count)
    RECON_OPEN_ITEMS.clear()
    for (channel, outcome), count in open_items.items():
        RECON_OPEN_ITEMS.labels(channel, outcome).set(count)
    for kind in ProposalKind:
        count, oldest = proposals.get(kind, (0, None))
        desk_metrics.DESK_OPEN_PROPOSALS.labels(kind).set(count)
        desk_metrics.DESK_OLDEST_PROPOSAL_AGE_S.labels(kind).set(_age_s(now, oldest))
    desk_metrics.RECON_OPEN_DIFFERENCES.set(differences)
    desk_metrics.RECON_OLDEST_DIFFERENCE_AGE_S.set(_age_s(now, oldest_difference))
    FAILED_REFUNDS_AWAITING.set(failed_refunds)
    FAILED_REFUND_OLDEST_AGE.set(_age_s(now, oldest_failed))
    dayend_metrics.OPEN_DATE.set(datetime.combine(open_date, time(0, 0), UTC).timestamp())
    if svc.settings.dayend_at != "off":
        hours, minutes = (int(x) for x in svc.settings.dayend_at.split(":"))
        dayend_metrics.DAYEND_DUE.set(due_at(open_date, time(hours, minutes)).timestamp())


def _age_s(now: datetime, since: datetime | None) -> float:
    return max((now - since).total_seconds(), 0.0) if since is not None else 0.0
