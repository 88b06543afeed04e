"""Day-end on a day of 1,000,000 journal legs (``make bench-dayend``).

Loads balanced entries set-based (INSERT ... SELECT over generate_series, every entry through the
ledger's own triggers: date stamping and the deferred balance check), closes a small previous day so
the measured day opens from a stored snapshot, then times the whole day-end of the big day. The last
stdout line is the headline JSON.

    python -m bench.dayend_bench [--legs 1000000] [--wallets 20000] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg

from engine import embedded
from engine.dayend.calendar import read_open_date
from engine.dayend.flow import DayEndOptions, run_day_end
from engine.migrate import migrate

CHUNK_ENTRIES = 100_000
TXN_PREFIX = "77"  # keeps bench transaction numbers apart from anything the engine makes

_SOURCE = (
    "INSERT INTO accounts (id, kind, owner_id, role, subject_code, currency, normal_side, overdraft_mode)"
    " VALUES ('bench-src', 'internal', 'platform-bench', 'channel_receivable', '1001', 'CNY', 'D', 'unlimited')"
)
_WALLETS = """
INSERT INTO accounts (id, kind, owner_id, role, subject_code, currency, normal_side)
SELECT 'bench-w' || g, 'customer', 'bench-cus' || g, 'customer_wallet', '2001', 'CNY', 'C'
FROM generate_series(0, $1 - 1) g
"""

# One chunk of TOPUP entries (2 legs each: debit the receivable, credit a wallet), applied legs with
# their per-account sequence and running balance computed by window functions, and the balances moved
# by the same amounts: one transaction, no per-row Python.
_CHUNK = """
WITH src AS (
    SELECT g, $5 || lpad(g::text, 30, '0') AS txn_no, (g % 997 + 1) * 100 AS amt, 'bench-w' || (g % $3) AS wallet
    FROM generate_series($1::bigint, $2::bigint) g
), entries AS (
    INSERT INTO journal_entries (txn_no, txn_code, accounting_date) SELECT txn_no, 'TOPUP', $4 FROM src
    RETURNING txn_no
), legs AS (
    SELECT txn_no, 1 AS leg_no, 'bench-src' AS account_id, 'D' AS side, amt, g FROM src
    UNION ALL
    SELECT txn_no, 2, wallet, 'C', amt, g FROM src
), numbered AS (
    SELECT l.*, a.last_seq + row_number() OVER w AS seq, a.balance + sum(l.amt) OVER w AS bal
    FROM legs l JOIN accounts a ON a.id = l.account_id
    WINDOW w AS (PARTITION BY l.account_id ORDER BY l.g)
), ins AS (
    INSERT INTO journal_legs (txn_no, leg_no, account_id, side, amount, currency, delta, status, seq, balance_after,
                              accounting_date, applied_at)
    SELECT txn_no, leg_no, account_id, side, amt, 'CNY', amt, 'applied', seq, bal, $4, now() FROM numbered
    WHERE (SELECT count(*) FROM entries) > 0
    RETURNING account_id, delta
)
UPDATE accounts a SET balance = a.balance + t.total, last_seq = a.last_seq + t.n
FROM (SELECT account_id, sum(delta) AS total, count(*) AS n FROM ins GROUP BY account_id) t
WHERE a.id = t.account_id
"""


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def load_day(conn: asyncpg.Connection, day: date, first: int, entries: int, wallets: int) -> None:
    started = time.monotonic()
    done = 0
    while done < entries:
        n = min(CHUNK_ENTRIES, entries - done)
        async with conn.transaction():
            await conn.execute(_CHUNK, first + done, first + done + n - 1, wallets, day, TXN_PREFIX)
        done += n
        rate = 2 * done / max(time.monotonic() - started, 1e-9)
        _say(f"load {day}: {2 * done:,} legs ({rate:,.0f} legs/s)")


async def run(args: argparse.Namespace, database_url: str) -> dict[str, Any]:
    conn = await asyncpg.connect(database_url)
    try:
        await migrate(conn)
        await conn.execute("SET synchronous_commit = off")  # loading only; day-end runs with defaults
        await conn.execute(_SOURCE)
        await conn.execute(_WALLETS, args.wallets)
        previous = await read_open_date(conn)
        await load_day(conn, previous, 0, 5_000, args.wallets)
    finally:
        await conn.close()
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4, command_timeout=600)
    assert pool is not None
    try:
        warmup = await run_day_end(pool, previous)
        assert warmup.status == "done", warmup.report
        day = await _load_big_day(database_url, args)

        def progress(event: str, data: dict[str, Any]) -> None:
            if event != "drain" or data.get("buffered_legs"):
                _say(f"day-end {event}: {json.dumps(data, default=str)}")

        started = time.monotonic()
        row = await run_day_end(pool, day, DayEndOptions(progress=progress))
        elapsed = time.monotonic() - started
    finally:
        await pool.close()
    report = row.report or {}
    return {"scenario": "dayend", "legs": report.get("legs"), "accounts": report.get("accounts"),
            "dayend_s": round(elapsed, 2), "trial_balance": report.get("trial_balance"), "status": row.status}


async def _load_big_day(database_url: str, args: argparse.Namespace) -> date:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("SET synchronous_commit = off")
        day = await read_open_date(conn)
        await load_day(conn, day, 10_000_000, args.legs // 2, args.wallets)
        await conn.execute("ANALYZE journal_legs")
        await conn.execute("ANALYZE accounts")
    finally:
        await conn.close()
    return day


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.dayend_bench", description=__doc__)
    parser.add_argument("--legs", type=int, default=1_000_000)
    parser.add_argument("--wallets", type=int, default=20_000)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args(argv)
    root = None
    database_url = args.database_url
    if not database_url:
        root = Path(tempfile.mkdtemp(prefix="pe-dayend-", dir="/tmp"))
        database_url = embedded.start_postgres(root / "pg").dsn
    try:
        result = asyncio.run(run(args, database_url))
    finally:
        if root is not None:
            embedded.stop_postgres(root / "pg", mode="fast")
            shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(result))
    return 0 if result["trial_balance"] == "ok" else 1


if __name__ == "__main__":
    raise SystemExit(main())
