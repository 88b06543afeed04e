"""SQL of the day report that no domain store holds already: the open reconciliation differences. Read-only.
A date's runs and their live counts come from reconciliation's own store (engine/recon/runs_store.py)."""

from __future__ import annotations

from typing import Any

from accounts.store import Conn


async def open_recon_differences(conn: Conn, limit: int) -> tuple[int, list[dict[str, Any]]]:
    """(how many reconciliation items are not closed, the oldest ``limit`` of them). An item being resolved
    (its adjustment or reversal awaiting a second operator) is still open money."""
    count = await conn.fetchval("SELECT count(*) FROM recon_items WHERE state IN ('open', 'resolving')")
    rows = await conn.fetch(
        "SELECT i.id, r.channel, r.statement_date, i.outcome, i.kind, i.reference, i.payment_id, i.refund_id,"
        " i.merchant_id, i.our_amount, i.their_amount, i.action, i.state FROM recon_items i"
        " JOIN recon_runs r ON r.id = i.run_id WHERE i.state IN ('open', 'resolving') ORDER BY i.id LIMIT $1", limit)
    return int(count), [dict(r) for r in rows]
