"""An accounting day of a few channel payments, closed, as reconciliation and settlement tests need it."""

from __future__ import annotations

from datetime import date
from typing import Any

from engine.client import PayEngineClient
from tests.dayend.test_scripted_day import _channel_payment
from tests.dayend.world import Paid, World


async def open_date(w: World) -> date:
    async with w.pool.acquire() as conn:
        day: date = await conn.fetchval("SELECT open_date FROM accounting_calendar")
    return day


async def channel_payments(w: World, client: PayEngineClient, channel: str, amounts: list[int],
                           customer_id: str | None = None) -> list[Paid]:
    """Paid and notified; the simulator dates them on our open accounting date (its statement of a date lists what
    was paid that calendar day, and these tests close dates ahead of the calendar)."""
    day = await open_date(w)
    paid = [await _channel_payment(w, client, channel, amount, True, customer_id) for amount in amounts]
    for p in paid:
        order = w.sims[channel].runtime.store.orders[p.txn_no]
        assert order.paid_at is not None
        order.paid_at = order.paid_at.replace(year=day.year, month=day.month, day=day.day)
    return paid


async def close_day(w: World, day: date) -> None:
    status, closed = await w.admin("POST", "/admin/day-end", {"date": day.isoformat(), "force": True})
    assert status == 200 and closed["status"] == "done", closed


async def table_counts(w: World) -> dict[str, int]:
    """Rows of every table a refused request must leave alone."""
    async with w.pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM recon_runs) AS runs, (SELECT count(*) FROM recon_items) AS items,"
            " (SELECT count(*) FROM audit_log) AS audit, (SELECT count(*) FROM journal_entries) AS entries,"
            " (SELECT count(*) FROM settlement_batches) AS batches,"
            " (SELECT count(*) FROM recon_items WHERE state = 'open') AS open_items")
    return dict(row)


def by_reference(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["reference"]: e for e in run["exceptions"]}


async def explain(w: World, item_id: int, note: str) -> tuple[int, Any]:
    """Close a difference where no money moves. The exception desk's resolve takes {action, operator, note}; the
    route before it took {note} alone: this speaks whichever the server answers to."""
    path = f"/admin/reconciliations/items/{item_id}/resolve"
    status, body = await w.admin("POST", path, {"action": "explain", "operator": "tester", "note": note})
    if status == 400 and body["error"]["code"] == "unknown_field":
        status, body = await w.admin("POST", path, {"note": note})
    return status, body
