"""SQL of the day report that no domain store holds already: a date's reconciliation runs with their live
counts, and the open reconciliation differences. Read-only."""

from __future__ import annotations

from datetime import date
from typing import Any

from accounts.store import Conn

_RUNS = """
SELECT r.id, r.channel, r.status, r.started_at, r.finished_at, r.error, i.outcome, i.state, count(i.id) AS n
FROM recon_runs r LEFT JOIN recon_items i ON i.run_id = r.id
WHERE r.statement_date = $1
GROUP BY r.id, r.channel, r.status, r.started_at, r.finished_at, r.error, i.outcome, i.state
ORDER BY r.channel, r.started_at, r.id
"""


async def recon_runs_of(conn: Conn, day: date) -> list[dict[str, Any]]:
    """The reconciliation runs of statement date ``day``, each with counts[outcome][state] of its items as they
    stand now (one query)."""
    runs: dict[str, dict[str, Any]] = {}
    for r in await conn.fetch(_RUNS, day):
        run = runs.setdefault(r["id"], {"id": r["id"], "channel": r["channel"], "status": r["status"],
                                        "started_at": r["started_at"], "finished_at": r["finished_at"],
                                        "error": r["error"], "counts": {}})
        if r["outcome"] is not None:
            run["counts"].setdefault(r["outcome"], {})[r["state"]] = int(r["n"])
    return list(runs.values())


async def open_recon_differences(conn: Conn, limit: int) -> tuple[int, list[dict[str, Any]]]:
    """(how many reconciliation items are not closed, the oldest ``limit`` of them). An item being resolved
    (its adjustment or reversal awaiting a second operator) is still open money."""
    count = await conn.fetchval("SELECT count(*) FROM recon_items WHERE state IN ('open', 'resolving')")
    rows = await conn.fetch(
        "SELECT i.id, r.channel, r.statement_date, i.outcome, i.kind, i.reference, i.payment_id, i.refund_id,"
        " i.merchant_id, i.our_amount, i.their_amount, i.action, i.state FROM recon_items i"
        " JOIN recon_runs r ON r.id = i.run_id WHERE i.state IN ('open', 'resolving') ORDER BY i.id LIMIT $1", limit)
    return int(count), [dict(r) for r in rows]
