"""One reconciliation run: fetch → check the file → normalise → match → act → summarise.

One live run per (channel, statement date). A finished (or refused) run is returned as it is, so running
it twice changes nothing; re-reconciling the date against a corrected statement is an explicit re-run
(engine/recon/rerun.py) that supersedes it. A run interrupted half-way is redone from the top: items are
rewritten whole (and a re-run's items carried again, engine/recon/supersede.py), supplements are claimed by
the channel's transaction id and so book once, and a payment this run supplemented is compared as the
pending payment it was.
"""

from __future__ import annotations

import collections
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import asyncpg

from accounts.store import Conn
from channels.protocol import Channel, Statement
from engine.dayend.calendar import read_open_date
from engine.errors import BadInput, Conflicting, DomainError
from engine.gateway.context import Gateway
from engine.keys import RECON_RUN, new_id
from engine.recon import runs_store, store, supersede
from engine.recon.matching import (
    Item,
    OurTxn,
    Rejected,
    TheirLine,
    WrongStatement,
    check_statement,
    match,
    normalise,
    totals,
)
from engine.recon.payouts import expected_payouts, find_payouts
from engine.recon.strategy import Action
from engine.recon.supplement import SupplementResult, book_supplement

log = logging.getLogger(__name__)


class ReconError(DomainError):
    """Base of every refusal to reconcile."""

    code = "reconciliation_error"


class DayStillOpen(ReconError, Conflicting):
    """Entries can still be booked to the date: our side of the comparison is not final yet."""

    code = "day_still_open"

    def __init__(self, day: date, open_date: date) -> None:
        super().__init__(f"{day} is not switched yet (open accounting date {open_date}); run day-end first")
        self.day = day


class ReconRunning(ReconError, Conflicting):
    code = "reconciliation_running"

    def __init__(self, channel: str, day: date) -> None:
        super().__init__(f"a reconciliation of {channel} {day} is running; wait for it")


class DifferencesResolving(ReconError, Conflicting):
    code = "differences_resolving"

    def __init__(self, run_id: str, item_ids: list[int]) -> None:
        super().__init__(f"run {run_id} has differences whose desk proposals await a decision (items "
                         f"{', '.join(map(str, item_ids[:10]))}); approve or reject them first")
        self.item_ids = item_ids


class ItemNotOpen(ReconError, Conflicting):
    code = "not_open"

    def __init__(self, item_id: str) -> None:
        super().__init__(f"reconciliation item {item_id} is not open (or does not exist)")
        self.item_id = item_id


# Two-int advisory keys live apart from the bigint keys used elsewhere; this namespace is "reco".
_LOCK_NAMESPACE = 0x7265636F


class UnknownChannel(ReconError, BadInput):
    code = "unknown_channel"
    param = "channel"

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"unknown channel {name!r}; configured: {known}")
        self.name = name


async def reconcile(gw: Gateway, channel_name: str, day: date) -> store.ReconRun:
    """Reconcile ``channel_name``'s statement of ``day``; returns the live run (done or refused).

    Raises UnknownChannel; ReconRunning (another process reconciles the same file now); DayStillOpen
    (``day`` is not switched yet, so our side is not final); or the channel's errors (ChannelUnavailable,
    ChannelTimeout) when the file cannot be fetched: the run then stays 'running' and the next call
    tries again."""
    adapter = await checked_channel(gw, channel_name, day)
    async with run_lock(gw.pool, channel_name, day):
        return await _reconcile_locked(gw, adapter, channel_name, day)


async def checked_channel(gw: Gateway, channel_name: str, day: date) -> Channel:
    """The channel's adapter, once ``day`` may be reconciled; raises UnknownChannel or DayStillOpen."""
    configured = gw.channels.get(channel_name)
    if configured is None:
        raise UnknownChannel(channel_name, sorted(gw.channels))
    async with gw.pool.acquire() as conn:
        open_date = await read_open_date(conn)
    if day >= open_date:
        raise DayStillOpen(day, open_date)
    return configured.adapter


@contextlib.asynccontextmanager
async def run_lock(pool: asyncpg.Pool, channel_name: str, day: date) -> AsyncIterator[None]:
    """Hold the one reconciliation of ``channel_name``'s ``day`` across processes; raises ReconRunning."""
    async with pool.acquire() as lock_conn:
        key = f"{channel_name}:{day.isoformat()}"
        if not await lock_conn.fetchval("SELECT pg_try_advisory_lock($1, hashtext($2))", _LOCK_NAMESPACE, key):
            raise ReconRunning(channel_name, day)
        try:
            yield
        finally:
            await lock_conn.execute("SELECT pg_advisory_unlock($1, hashtext($2))", _LOCK_NAMESPACE, key)


@dataclass(frozen=True, slots=True)
class Comparison:
    """A statement matched against our side of its date, before anything is written."""

    lines: list[TheirLine]
    rejected: list[Rejected]
    malformed: list[dict[str, Any]]
    expected: list[OurTxn]
    items: list[Item]
    duplicates: list[TheirLine]


def malformed_of(statement: Statement) -> list[dict[str, Any]]:
    return [{"line_no": m.line_no, "text": m.text[:200], "reason": m.reason} for m in statement.malformed]


async def compare(conn: Conn, run_id: str | None, channel_name: str, day: date, statement: Statement) -> Comparison:
    """Match a checked statement against our side of ``day``; ``run_id``: the run whose supplements count as
    still pending (a redo sees what the first pass saw), None for a run not created yet."""
    lines, rejected = normalise(statement)
    supplemented = await store.supplemented_by(conn, run_id) if run_id else set()
    found = await store.find_ours(conn, [x.reference for x in lines if x.kind == "payment"],
                                  [x.reference for x in lines if x.kind == "refund"], supplemented)
    found.update(await find_payouts(conn, [x.reference for x in lines if x.kind == "payout"]))
    expected = await store.expected_successes(conn, channel_name, day)
    expected += await expected_payouts(conn, channel_name, day)
    items, duplicates = match(channel_name, lines, found, expected)
    return Comparison(lines, rejected, malformed_of(statement), expected, items, duplicates)


async def carry_into(conn: Conn, run: store.ReconRun, items: list[Item]) -> int:
    """Apply engine/recon/supersede.py's plan to a re-run's freshly saved items (caller holds the transaction).

    Raises DifferencesResolving when an item of the superseded run waits for a desk proposal (checked under the
    items' lock, so a resolution that started after the re-run's first look is seen too)."""
    if run.supersedes is None:
        return 0
    old = await runs_store.old_items(conn, run.supersedes)
    if waiting := supersede.blocking(old):
        raise DifferencesResolving(run.supersedes, waiting)
    return await runs_store.apply_plan(conn, run.id, run.operator, supersede.plan(run.supersedes, old, items))


async def _reconcile_locked(gw: Gateway, adapter: Channel, channel_name: str, day: date) -> store.ReconRun:
    pool = gw.pool
    async with pool.acquire() as conn:
        run = await store.open_run(conn, new_id(RECON_RUN), channel_name, day)
    if run.status != "running":
        return run
    statement = await adapter.fetch_statement(day)
    try:
        check_statement(statement, channel_name, day)
    except WrongStatement as refused:
        async with pool.acquire() as conn:
            await store.finish_run(conn, run.id, "refused", None, malformed_of(statement), str(refused))
            done = await store.get_run(conn, run.id)
        log.warning("statement refused", extra={"channel": channel_name, "day": str(day), "reason": str(refused)})
        assert done is not None
        return done
    async with pool.acquire() as conn:
        comparison = await compare(conn, run.id, channel_name, day, statement)
        async with conn.transaction():
            await store.save_items(conn, run.id, comparison.items)
            await carry_into(conn, run, comparison.items)  # an interrupted re-run, redone
    return await finish(gw, run, channel_name, comparison)


async def finish(gw: Gateway, run: store.ReconRun, channel_name: str, comparison: Comparison) -> store.ReconRun:
    """After the items are saved: book the supplements, clear earlier suspects, close the run."""
    items = comparison.items
    booked = await _supplement(gw, run.id, channel_name, items)
    async with gw.pool.acquire() as conn:
        seen = [i for i in items if i.theirs is not None and i.ours is not None]
        cleared = await store.clear_earlier_shorts(
            conn, run.id, [i.ours.payment_id for i in seen if i.kind == "payment" and i.ours],
            [i.ours.refund_id for i in seen if i.kind == "refund" and i.ours and i.ours.refund_id])
        summary = _summary(comparison, booked, cleared)
        await store.finish_run(conn, run.id, "done", summary, comparison.malformed, None)
        done = await store.get_run(conn, run.id)
    assert done is not None
    return done


async def _supplement(gw: Gateway, run_id: str, channel_name: str, items: list[Item]) -> dict[str, int]:
    results: collections.Counter[str] = collections.Counter()
    for item in items:
        if item.action is not Action.SUPPLEMENT or item.ours is None or item.theirs is None:
            continue
        line = item.theirs
        result = await book_supplement(gw, run_id, channel_name, line.reference, line.channel_txn_id,
                                       line.amount_minor, line.currency, item.ours.payment_id, datetime.now(UTC))
        results[result.value] += 1
        state = "open" if result is SupplementResult.REFUSED else "resolved"
        note = {"booked": "success booked from the statement", "already": "booked before (notify or earlier run)",
                "refused": "gateway refused the booking; see its exceptions"}[result.value]
        async with gw.pool.acquire() as conn:
            await store.set_item_state(conn, run_id, item.kind, item.reference, state, note)
    return dict(results)


def _summary(c: Comparison, supplements: dict[str, int], cleared: int) -> dict[str, Any]:
    """What the file held and what the run did. Counts of items are not stored: a view reads them live."""
    return {
        "lines": len(c.lines) + len(c.rejected), "malformed_lines": len(c.malformed),
        "totals": totals(c.lines, c.expected),
        "rejected_lines": [{"reference": r.reference, "reason": r.reason} for r in c.rejected],
        "duplicate_lines": [{"kind": d.kind, "reference": d.reference, "channel_txn_id": d.channel_txn_id}
                            for d in c.duplicates],
        "supplements": supplements, "cleared_earlier_suspects": cleared,
    }
