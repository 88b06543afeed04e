"""journal_legs partitioned by accounting date (migration 070), on a database of its own.

The module makes a fresh database on the session's PostgreSQL, migrates it to just before 070, books
entries over several dates (applied, buffered and buffer-applied legs), then runs 070 onwards on that
data. It owns its calendar, so it can book on dates that have no partition without touching the
shared test database.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import asyncpg
import pytest

from accounts.journal import EntryDraft, LegDraft
from accounts.model import AccountId, Side
from accounts.store import post_entry, statement, trial_balance
from engine.dayend.flow import DayEndOptions, run_day_end
from engine.dayend.partitions import daily_partition_dates, ensure_partitions, partition_health
from engine.migrate import load_migrations
from tests.conftest import Servers
from tests.factories import new_txn_no, today

FIRST_SCALE_MIGRATION = 70
WALLETS = 12
DAYS = 3  # booked before the migration: D-2, D-1, D
ENTRIES_PER_DAY = 60
_LEGS_DIGEST = (
    "SELECT md5(string_agg(concat_ws('|', id, txn_no, leg_no, account_id, side, amount, currency, delta, status,"
    " seq, balance_after, accounting_date, created_at, applied_at), ',' ORDER BY id)) FROM journal_legs"
)


@dataclass(frozen=True, slots=True)
class Migrated:
    dsn: str
    day: date  # the open date while booking; history starts before day - 1
    before: dict[str, Any]
    after: dict[str, Any]
    migration_s: float


async def _apply(conn: asyncpg.Connection, scale: bool) -> None:
    for migration in load_migrations():
        if (migration.number >= FIRST_SCALE_MIGRATION) == scale:
            async with conn.transaction():
                await conn.execute(migration.sql)


async def _book(conn: asyncpg.Connection, day: date, code: str, legs: list[tuple[str, str, int]]) -> None:
    await conn.execute("UPDATE accounting_calendar SET open_date = $1", day)
    await conn.fetch("SELECT * FROM ledger_post_entry($1, $2, $3, NULL, $4::text[], $5::text[], $6::bigint[],"
                     " $7::text[])", new_txn_no(), code, day, [a for a, _, _ in legs], [s for _, s, _ in legs],
                     [n for _, _, n in legs], ["CNY"] * len(legs))


async def _apply_buffered(conn: asyncpg.Connection, account: str, limit: int) -> int:
    rows = await conn.fetch("SELECT txn_no, leg_no FROM journal_legs WHERE account_id = $1 AND status = 'buffered'"
                            " ORDER BY id LIMIT $2", account, limit)
    applied = await conn.fetchval("SELECT r_applied FROM buffer_apply_legs($1, $2::text[], $3::int[])", account,
                                  [r["txn_no"] for r in rows], [r["leg_no"] for r in rows])
    return int(applied)


async def _state(conn: asyncpg.Connection) -> dict[str, Any]:
    tb = await trial_balance(conn)
    return {"legs": await conn.fetchval("SELECT count(*) FROM journal_legs"),
            "digest": await conn.fetchval(_LEGS_DIGEST),
            "balances": {r["id"]: r["balance"] for r in await conn.fetch("SELECT id, balance FROM accounts")},
            "applied": tb.applied, "projected": tb.projected, "holds": tb.holds,
            "buffered": tb.buffered_legs}


def _db_dsn(dsn: str, name: str) -> str:
    head, _, tail = dsn.partition("?")
    return head.rsplit("/", 1)[0] + "/" + name + ("?" + tail if tail else "")


@pytest.fixture(scope="module")
async def migrated(servers: Servers) -> AsyncIterator[Migrated]:
    name = f"pe_scale_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(servers.database_url)
    await admin.execute(f"CREATE DATABASE {name}")
    dsn = _db_dsn(servers.database_url, name)
    try:
        conn = await asyncpg.connect(dsn)
        try:
            yield await _load_and_migrate(conn, dsn)
        finally:
            await conn.close()
    finally:
        await admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
        await admin.close()


async def _load_and_migrate(conn: asyncpg.Connection, dsn: str) -> Migrated:
    await _apply(conn, scale=False)
    await conn.execute(
        "INSERT INTO accounts (id, kind, owner_id, role, subject_code, currency, normal_side, overdraft_mode, hot)"
        " VALUES ('src', 'internal', 'platform', 'channel_receivable', '1001', 'CNY', 'D', 'unlimited', false),"
        "        ('hot', 'merchant', 'm1', 'merchant_pending', '2002', 'CNY', 'C', 'never', true)")
    await conn.execute("INSERT INTO accounts (id, kind, owner_id, role, subject_code, currency, normal_side)"
                       " SELECT 'w' || g, 'customer', 'c' || g, 'customer_wallet', '2001', 'CNY', 'C'"
                       " FROM generate_series(1, $1) g", WALLETS)
    day = today()
    await _book(conn, day - timedelta(days=40), "TOPUP", [("src", "D", 5_000), ("w1", "C", 5_000)])
    for back in range(DAYS - 1, -1, -1):
        for i in range(ENTRIES_PER_DAY):
            wallet = f"w{i % WALLETS + 1}"
            await _book(conn, day - timedelta(days=back), "TOPUP", [("src", "D", 1_000 + i), (wallet, "C", 1_000 + i)])
            await _book(conn, day - timedelta(days=back), "PAY", [(wallet, "D", 300 + i), ("hot", "C", 300 + i)])
        await _apply_buffered(conn, "hot", ENTRIES_PER_DAY // 2)  # half of each day applied by "the flusher"
    before = await _state(conn)
    started = await conn.fetchval("SELECT clock_timestamp()")
    await _apply(conn, scale=True)
    elapsed = (await conn.fetchval("SELECT clock_timestamp()") - started).total_seconds()
    return Migrated(dsn, day, before, await _state(conn), elapsed)


async def test_migration_keeps_every_leg_and_balance(migrated: Migrated) -> None:
    before, after = migrated.before, migrated.after
    assert before["legs"] == 1 * 2 + DAYS * ENTRIES_PER_DAY * 4
    assert before["buffered"] == DAYS * ENTRIES_PER_DAY // 2
    assert before["holds"] and after["holds"]
    for key in ("legs", "digest", "balances", "applied", "projected", "buffered"):
        assert after[key] == before[key], key
    conn = await asyncpg.connect(migrated.dsn)
    try:
        where = {r["p"]: r["n"] for r in await conn.fetch(
            "SELECT tableoid::regclass::text AS p, count(*) AS n FROM journal_legs GROUP BY 1")}
        assert where["journal_legs_history"] == 2 + ENTRIES_PER_DAY * 4  # D-40 and D-2 (before yesterday)
        assert where[f"journal_legs_{migrated.day:%Y%m%d}"] == ENTRIES_PER_DAY * 4
        assert where.get("journal_legs_default", 0) == 0
        assert migrated.day + timedelta(days=7) in await daily_partition_dates(conn)
    finally:
        await conn.close()


async def test_buffer_applies_legs_booked_before_the_migration_in_order(migrated: Migrated) -> None:
    conn = await asyncpg.connect(migrated.dsn)
    try:
        while await _apply_buffered(conn, "hot", 7):
            pass
        lines = await statement(conn, "hot", limit=1_000)
        assert [line.seq for line in lines] == list(range(1, DAYS * ENTRIES_PER_DAY + 1))
        running = 0
        for line in lines:
            running += line.delta
            assert line.balance_after == running
        tb = await trial_balance(conn)
        assert tb.holds_drained, tb
    finally:
        await conn.close()


async def _post(conn: asyncpg.Connection, draft_date: date, amount: int) -> str:
    entry = EntryDraft(new_txn_no(), "TOPUP", draft_date, (
        LegDraft(AccountId("src"), Side.DEBIT, amount, "CNY"), LegDraft(AccountId("w2"), Side.CREDIT, amount, "CNY")))
    async with conn.transaction():
        await post_entry(conn, entry)
    return entry.txn_no


async def _partitions_of(conn: asyncpg.Connection, txn_no: str) -> set[str]:
    rows = await conn.fetch("SELECT DISTINCT tableoid::regclass::text AS p FROM journal_legs WHERE txn_no = $1",
                            txn_no)
    return {r["p"] for r in rows}


async def test_postings_land_in_the_partition_of_their_stamped_date(migrated: Migrated) -> None:
    conn = await asyncpg.connect(migrated.dsn)
    try:
        day = migrated.day + timedelta(days=3)
        await conn.execute("UPDATE accounting_calendar SET open_date = $1", day)
        assert await _partitions_of(conn, await _post(conn, day, 111)) == {f"journal_legs_{day:%Y%m%d}"}
        # A stale draft date is rewritten by the day-end fence; its legs follow the entry's date.
        stale = await _post(conn, day - timedelta(days=1), 112)
        assert await _partitions_of(conn, stale) == {f"journal_legs_{day:%Y%m%d}"}
        assert await conn.fetchval("SELECT accounting_date FROM journal_entries WHERE txn_no = $1", stale) == day
        with pytest.raises(asyncpg.ForeignKeyViolationError):  # a leg cannot carry another date than its entry
            await conn.execute("UPDATE journal_legs SET accounting_date = accounting_date + 1 WHERE txn_no = $1",
                               stale)
    finally:
        await conn.close()


async def test_posting_on_a_date_without_partition_goes_to_default_and_moves_when_created(
        migrated: Migrated) -> None:
    conn = await asyncpg.connect(migrated.dsn)
    try:
        far = migrated.day + timedelta(days=400)
        await conn.execute("UPDATE accounting_calendar SET open_date = $1", far)
        txn_no = await _post(conn, far, 222)
        assert await _partitions_of(conn, txn_no) == {"journal_legs_default"}
        health = await partition_health(conn, far)
        assert not health.ok and health.default_rows == 2 and not health.open_date_covered

        assert await ensure_partitions(conn, far, days_ahead=2) == [far + timedelta(days=n) for n in range(3)]
        assert await ensure_partitions(conn, far, days_ahead=2) == []  # idempotent
        assert await _partitions_of(conn, txn_no) == {f"journal_legs_{far:%Y%m%d}"}
        health = await partition_health(conn, far)
        assert health.ok and health.days_ahead == 2 and health.default_rows == 0
        assert (await trial_balance(conn)).holds
    finally:
        await conn.close()


async def test_a_date_inside_the_history_partition_is_left_to_it(migrated: Migrated) -> None:
    """Day-end catching up from an open date older than the history bound (a calendar set back, a database
    made the day before) finds those dates covered: no error, no stray table."""
    conn = await asyncpg.connect(migrated.dsn)
    try:
        old = migrated.day - timedelta(days=5)  # history holds every date before the day before the migration
        assert await ensure_partitions(conn, old, days_ahead=2) == []
        for day in (old + timedelta(days=n) for n in range(3)):
            assert await conn.fetchval("SELECT to_regclass($1)", f"journal_legs_{day:%Y%m%d}") is None
        assert old not in await daily_partition_dates(conn)
    finally:
        await conn.close()


async def test_day_end_creates_partitions_ahead_idempotently(migrated: Migrated) -> None:
    pool = await asyncpg.create_pool(migrated.dsn, min_size=1, max_size=2)
    assert pool is not None
    try:
        async with pool.acquire() as conn:
            while await _apply_buffered(conn, "hot", 100):  # day-end drains: nothing may stay buffered
                pass
            day = migrated.day + timedelta(days=200)
            await conn.execute("UPDATE accounting_calendar SET open_date = $1", day)
        events: list[tuple[str, dict[str, Any]]] = []
        options = DayEndOptions(partitions_ahead_days=4, progress=lambda e, d: events.append((e, d)))
        assert (await run_day_end(pool, day, options)).status == "done"
        async with pool.acquire() as conn:
            dates = set(await daily_partition_dates(conn))
            assert {day + timedelta(days=n) for n in range(1, 6)} <= dates
            health = await partition_health(conn, day + timedelta(days=1))
        assert health.ok and health.days_ahead == 4
        assert ("partitions", health.as_dict()) in events
        assert (await run_day_end(pool, day + timedelta(days=1), options)).status == "done"
        async with pool.acquire() as conn:
            assert set(await daily_partition_dates(conn)) - dates == {day + timedelta(days=6)}
    finally:
        await pool.close()


class _ExplainingConn:
    """Runs each query the store sends, and keeps its plan (EXPLAIN with the same parameters)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.plans: list[Any] = []

    async def fetch(self, query: str, *args: Any, timeout: float | None = None) -> list[Any]:
        self.plans.append(await self.conn.fetchval("EXPLAIN (FORMAT JSON) " + query, *args))
        return list(await self.conn.fetch(query, *args))


def _relations(plan: Any) -> set[str]:
    found: set[str] = set()
    stack = [plan]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "Relation Name" in node:
                found.add(node["Relation Name"])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, str) and node.startswith("["):  # asyncpg hands json back as text
            stack.append(json.loads(node))
    return found


async def test_statement_by_date_reads_only_that_dates_partition(migrated: Migrated) -> None:
    conn = await asyncpg.connect(migrated.dsn)
    try:
        day = migrated.day
        explaining = _ExplainingConn(conn)
        lines = await statement(explaining, "src", limit=500, from_date=day, to_date=day)  # type: ignore[arg-type]
        assert lines and {line.accounting_date for line in lines} == {day}
        assert {r for r in _relations(explaining.plans[-1]) if r.startswith("journal_legs")} == {
            f"journal_legs_{day:%Y%m%d}"}
        await statement(explaining, "src", limit=500)  # type: ignore[arg-type]
        assert "journal_legs_history" in _relations(explaining.plans[-1])  # no dates: every partition
    finally:
        await conn.close()
