"""One reconciliation run: fetch → check the file → normalise → match → act → summarise.

One run per (channel, statement date). A finished (or refused) run is returned as it is, so running
it twice changes nothing. A run interrupted half-way is redone from the top: items are rewritten
whole, supplements are claimed by the channel's transaction id and so book once, and a payment this
run supplemented is compared as the pending payment it was.
"""

from __future__ import annotations

import collections
import logging
from datetime import UTC, date, datetime
from typing import Any

from channels.protocol import Channel
from engine.dayend.calendar import read_open_date
from engine.errors import BadInput, Conflicting, DomainError
from engine.gateway.context import Gateway
from engine.keys import RECON_RUN, new_id
from engine.recon import store
from engine.recon.matching import Item, WrongStatement, check_statement, match, normalise, totals
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
    """Reconcile ``channel_name``'s statement of ``day``; returns the run (done or refused).

    Raises UnknownChannel; ReconRunning (another process reconciles the same file now); DayStillOpen
    (``day`` is not switched yet, so our side is not final); or the channel's errors (ChannelUnavailable,
    ChannelTimeout) when the file cannot be fetched: the run then stays 'running' and the next call
    tries again."""
    configured = gw.channels.get(channel_name)
    if configured is None:
        raise UnknownChannel(channel_name, sorted(gw.channels))
    pool = gw.pool
    async with pool.acquire() as conn:
        open_date = await read_open_date(conn)
    if day >= open_date:
        raise DayStillOpen(day, open_date)
    async with pool.acquire() as lock_conn:
        key = f"{channel_name}:{day.isoformat()}"
        if not await lock_conn.fetchval("SELECT pg_try_advisory_lock($1, hashtext($2))", _LOCK_NAMESPACE, key):
            raise ReconRunning(channel_name, day)
        try:
            return await _reconcile_locked(gw, configured.adapter, channel_name, day)
        finally:
            await lock_conn.execute("SELECT pg_advisory_unlock($1, hashtext($2))", _LOCK_NAMESPACE, key)


async def _reconcile_locked(gw: Gateway, adapter: Channel, channel_name: str, day: date) -> store.ReconRun:
    pool = gw.pool
    async with pool.acquire() as conn:
        run = await store.open_run(conn, new_id(RECON_RUN), channel_name, day)
    if run.status != "running":
        return run
    statement = await adapter.fetch_statement(day)
    malformed = [{"line_no": m.line_no, "text": m.text[:200], "reason": m.reason} for m in statement.malformed]
    try:
        check_statement(statement, channel_name, day)
    except WrongStatement as refused:
        async with pool.acquire() as conn:
            await store.finish_run(conn, run.id, "refused", None, malformed, str(refused))
            done = await store.get_run(conn, run.id)
        log.warning("statement refused", extra={"channel": channel_name, "day": str(day), "reason": str(refused)})
        assert done is not None
        return done
    lines, rejected = normalise(statement)
    async with pool.acquire() as conn:
        supplemented = await store.supplemented_by(conn, run.id)
        found = await store.find_ours(conn, [x.reference for x in lines if x.kind == "payment"],
                                      [x.reference for x in lines if x.kind == "refund"], supplemented)
        found.update(await find_payouts(conn, [x.reference for x in lines if x.kind == "payout"]))
        expected = await store.expected_successes(conn, channel_name, day)
        expected += await expected_payouts(conn, channel_name, day)
        items, duplicates = match(channel_name, lines, found, expected)
        await store.save_items(conn, run.id, items)
    booked = await _supplement(gw, run.id, channel_name, items)
    async with pool.acquire() as conn:
        seen = [i for i in items if i.theirs is not None and i.ours is not None]
        cleared = await store.clear_earlier_shorts(
            conn, run.id, [i.ours.payment_id for i in seen if i.kind == "payment" and i.ours],
            [i.ours.refund_id for i in seen if i.kind == "refund" and i.ours and i.ours.refund_id])
        summary = _summary(items, lines, expected, rejected, duplicates, len(malformed), booked, cleared)
        summary["counts_by_state"] = await store.item_counts(conn, run.id)
        await store.finish_run(conn, run.id, "done", summary, malformed, None)
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


def _summary(items: list[Item], lines: list[Any], expected: list[Any], rejected: list[Any],
             duplicates: list[Any], malformed: int, supplements: dict[str, int], cleared: int) -> dict[str, Any]:
    return {
        "lines": len(lines) + len(rejected), "malformed_lines": malformed,
        "outcomes": dict(collections.Counter(i.outcome.value for i in items)),
        "actions": dict(collections.Counter(i.action.value for i in items)),
        "totals": totals(lines, expected),
        "rejected_lines": [{"reference": r.reference, "reason": r.reason} for r in rejected],
        "duplicate_lines": [{"kind": d.kind, "reference": d.reference, "channel_txn_id": d.channel_txn_id}
                            for d in duplicates],
        "supplements": supplements, "cleared_earlier_suspects": cleared,
    }
