"""All SQL of the day-end: the run's persisted state, the date switch, the drain probe, and the
set-based trial balance that writes every account's daily balance in one INSERT ... SELECT.

Nothing here loops over rows in Python: a day of a million legs is two aggregate statements.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import orjson

from accounts.store import Conn

# The switch fence's advisory-lock key; the entry trigger of migration 050 takes it shared.
SWITCH_LOCK_KEY = 1633903476
# Held (session level) by the connection running a day-end, so a second one is refused at once.
RUN_LOCK_KEY = 1633903477
OFFENDERS_LISTED_MAX = 100


@dataclass(frozen=True, slots=True)
class DayEndRow:
    accounting_date: date
    step: str
    status: str
    attempts: int
    started_at: datetime
    finished_at: datetime | None
    error: str | None
    report: dict[str, Any] | None


def _row(r: Any) -> DayEndRow:
    report = orjson.loads(r["report"]) if r["report"] is not None else None
    return DayEndRow(r["accounting_date"], r["step"], r["status"], r["attempts"], r["started_at"],
                     r["finished_at"], r["error"], report)


_COLUMNS = "accounting_date, step, status, attempts, started_at, finished_at, error, report::text AS report"


async def get_day_end(conn: Conn, day: date) -> DayEndRow | None:
    r = await conn.fetchrow(f"SELECT {_COLUMNS} FROM day_ends WHERE accounting_date = $1", day)
    return _row(r) if r else None


async def latest_day_ends(conn: Conn, limit: int) -> list[DayEndRow]:
    rows = await conn.fetch(f"SELECT {_COLUMNS} FROM day_ends ORDER BY accounting_date DESC LIMIT $1", limit)
    return [_row(r) for r in rows]


async def unfinished_day_end(conn: Conn) -> DayEndRow | None:
    r = await conn.fetchrow(f"SELECT {_COLUMNS} FROM day_ends WHERE status <> 'done'"
                            " ORDER BY accounting_date LIMIT 1")
    return _row(r) if r else None


async def begin_day_end(conn: Conn, day: date) -> DayEndRow:
    """Create the run for ``day`` at step 'switch', or reopen a failed/crashed one where it stopped."""
    r = await conn.fetchrow(
        "INSERT INTO day_ends (accounting_date, step, status) VALUES ($1, 'switch', 'running')"
        " ON CONFLICT (accounting_date) DO UPDATE SET status = 'running', attempts = day_ends.attempts + 1,"
        "   updated_at = now(), error = NULL WHERE day_ends.status <> 'done'"
        f" RETURNING {_COLUMNS}",
        day,
    )
    if r is None:
        existing = await get_day_end(conn, day)
        assert existing is not None
        return existing
    return _row(r)


async def set_step(conn: Conn, day: date, step: str) -> None:
    await conn.execute("UPDATE day_ends SET step = $2, updated_at = now() WHERE accounting_date = $1", day, step)


async def finish(conn: Conn, day: date, status: str, report: dict[str, Any] | None, error: str | None) -> None:
    await conn.execute(
        "UPDATE day_ends SET status = $2, step = CASE WHEN $2 = 'done' THEN 'done' ELSE step END,"
        " report = coalesce($3::jsonb, report), error = $4, updated_at = now(),"
        " finished_at = CASE WHEN $2 = 'done' THEN now() ELSE finished_at END WHERE accounting_date = $1",
        day, status, orjson.dumps(report).decode() if report is not None else None, error,
    )


async def switch_date(conn: Conn, day: date, lock_timeout_ms: int) -> date:
    """Move the open date from ``day`` to the next day (no-op if already past it); returns the open date.

    Takes the switch fence exclusively: waits for entries in flight to commit with ``day`` and holds new
    ones back until the new date is visible. Caller holds the transaction."""
    await conn.execute(f"SET LOCAL lock_timeout = {int(lock_timeout_ms)}")
    await conn.execute("SELECT pg_advisory_xact_lock($1)", SWITCH_LOCK_KEY)
    open_date = await conn.fetchval(
        "UPDATE accounting_calendar SET open_date = $2, switched_at = now() WHERE open_date = $1"
        " RETURNING open_date", day, day + timedelta(days=1))
    if open_date is None:
        open_date = await conn.fetchval("SELECT open_date FROM accounting_calendar")
    assert isinstance(open_date, date)
    return open_date


async def buffered_legs_through(conn: Conn, day: date) -> int:
    """Legs dated ``day`` or earlier still waiting for the buffer (the partial index makes this cheap)."""
    return int(await conn.fetchval(
        "SELECT count(*) FROM journal_legs WHERE status = 'buffered' AND accounting_date <= $1", day))


async def buffered_accounts_through(conn: Conn, day: date, limit: int) -> list[dict[str, Any]]:
    """Which accounts still hold buffered legs of ``day`` or earlier, most first (for a drain that timed out)."""
    rows = await conn.fetch(
        "SELECT account_id, count(*) AS legs, min(created_at) AS oldest FROM journal_legs"
        " WHERE status = 'buffered' AND accounting_date <= $1 GROUP BY account_id ORDER BY 2 DESC LIMIT $2",
        day, limit)
    return [{"account_id": r["account_id"], "legs": int(r["legs"]), "oldest": r["oldest"].isoformat()} for r in rows]


_SNAPSHOT = """
WITH legs AS (
    SELECT account_id,
           sum(delta) FILTER (WHERE accounting_date < $1) AS before,
           sum(amount) FILTER (WHERE accounting_date = $1 AND side = 'D') AS debits,
           sum(amount) FILTER (WHERE accounting_date = $1 AND side = 'C') AS credits,
           sum(delta) FILTER (WHERE accounting_date = $1) AS net,
           count(*) FILTER (WHERE accounting_date = $1) AS legs,
           sum(delta) FILTER (WHERE accounting_date > $1 AND status = 'applied') AS later
    FROM journal_legs
    WHERE $2::date IS NULL OR accounting_date >= $1
    GROUP BY account_id
), prev AS (
    SELECT account_id, closing FROM daily_balances WHERE accounting_date = $2::date
)
INSERT INTO daily_balances (accounting_date, account_id, currency, subject_code, normal_side, opening, debits,
                            credits, net, closing, legs)
SELECT $1, a.id, a.currency, a.subject_code, a.normal_side,
       CASE WHEN $2::date IS NULL THEN coalesce(l.before, 0) ELSE coalesce(p.closing, 0) END,
       coalesce(l.debits, 0), coalesce(l.credits, 0), coalesce(l.net, 0),
       a.balance - coalesce(l.later, 0), coalesce(l.legs, 0)
FROM accounts a LEFT JOIN legs l ON l.account_id = a.id LEFT JOIN prev p ON p.account_id = a.id
"""


async def write_snapshot(conn: Conn, day: date, previous: date | None) -> int:
    """Every account's opening, debits, credits, net and closing for ``day``; returns the row count.

    Opening is the previous closed day's closing (or, for the first day-end, Σ legs before ``day``);
    closing is the live balance minus applied legs of later dates. Run under REPEATABLE READ so the
    balances and legs come from one snapshot while flushers keep applying the new day."""
    await conn.execute("DELETE FROM daily_balances WHERE accounting_date = $1", day)
    status = await conn.execute(_SNAPSHOT, day, previous)
    return int(status.split()[-1])


async def offending_accounts(conn: Conn, day: date) -> tuple[int, list[dict[str, Any]]]:
    """Accounts whose opening + net differs from closing: (how many, the first few)."""
    rows = await conn.fetch(
        "SELECT account_id, currency, subject_code, opening, net, closing, count(*) OVER () AS total"
        " FROM daily_balances WHERE accounting_date = $1 AND opening + net <> closing"
        " ORDER BY account_id LIMIT $2", day, OFFENDERS_LISTED_MAX)
    listed = [
        {"account_id": r["account_id"], "currency": r["currency"], "subject": r["subject_code"],
         "opening": r["opening"], "net": r["net"], "closing": r["closing"],
         "difference": r["closing"] - r["opening"] - r["net"]}
        for r in rows
    ]
    return (int(rows[0]["total"]) if rows else 0), listed


async def currency_totals(conn: Conn, day: date) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT currency,"
        " sum(closing) FILTER (WHERE normal_side = 'D') AS debit_normal,"
        " sum(closing) FILTER (WHERE normal_side = 'C') AS credit_normal,"
        " sum(debits) AS debits, sum(credits) AS credits, sum(legs) AS legs"
        " FROM daily_balances WHERE accounting_date = $1 GROUP BY currency ORDER BY currency", day)
    out = []
    for r in rows:
        d_normal, c_normal = int(r["debit_normal"] or 0), int(r["credit_normal"] or 0)
        debits, credits = int(r["debits"]), int(r["credits"])
        out.append({"currency": r["currency"], "debit_normal_closing": d_normal, "credit_normal_closing": c_normal,
                    "debits": debits, "credits": credits, "legs": int(r["legs"]),
                    "balanced": d_normal == c_normal and debits == credits})
    return out


async def subject_totals(conn: Conn, day: date) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT currency, subject_code, normal_side, sum(opening) AS opening, sum(debits) AS debits,"
        " sum(credits) AS credits, sum(closing) AS closing, count(*) AS accounts"
        " FROM daily_balances WHERE accounting_date = $1 GROUP BY 1, 2, 3 ORDER BY 1, 2", day)
    return [
        {"currency": r["currency"], "subject": r["subject_code"], "normal_side": r["normal_side"],
         "opening": int(r["opening"]), "debits": int(r["debits"]), "credits": int(r["credits"]),
         "closing": int(r["closing"]), "accounts": int(r["accounts"])}
        for r in rows
    ]


async def entry_count(conn: Conn, day: date) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM journal_entries WHERE accounting_date = $1", day))
