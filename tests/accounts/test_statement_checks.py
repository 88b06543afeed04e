"""The ledger's integrity checks made once per statement (migration 089) hold for any writer, the posting
function bypassed: an entry's legs balance, point at an existing entry of their date and an existing
account and never change what they say; an entry has legs by commit; entries and accounts are never
deleted."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import date, timedelta

import asyncpg
import pytest

from accounts.model import OverdraftMode
from tests.factories import new_txn_no, open_test_account, today

# An entry (when $6) and its legs in one statement, as the posting function writes them. The legs take the
# entry's stamped date unless $7 names one; they are written 'buffered', so no account row is touched.
_ENTRY_WITH_LEGS = """
WITH e AS (
    INSERT INTO journal_entries (txn_no, txn_code, accounting_date) SELECT $1, 'ADJUST', $2 WHERE $6
    RETURNING accounting_date
)
INSERT INTO journal_legs (txn_no, leg_no, account_id, side, amount, currency, delta, status, accounting_date)
SELECT $1, g, a, s, m, 'CNY', CASE s WHEN 'D' THEN m ELSE -m END, 'buffered',
       coalesce($7::date, (SELECT accounting_date FROM e))
FROM unnest($3::text[], $4::text[], $5::bigint[]) WITH ORDINALITY AS t(a, s, m, g)
"""


@asynccontextmanager
async def rolled_back(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """A transaction that never commits: these tests write legs no flusher would ever apply."""
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            yield conn
        finally:
            await tx.rollback()


async def _book(conn: asyncpg.Connection, accounts: Sequence[str], sides: Sequence[str], amounts: Sequence[int],
                *, with_entry: bool = True, legs_date: date | None = None) -> str:
    """An entry (unless ``with_entry`` is False) and its legs, in one statement; returns the txn_no."""
    txn = new_txn_no()
    await conn.execute(_ENTRY_WITH_LEGS, txn, today(), list(accounts), list(sides), list(amounts), with_entry,
                       legs_date)
    return txn


async def _two_accounts(conn: asyncpg.Connection) -> tuple[str, str]:
    a = await open_test_account(conn, overdraft=OverdraftMode.UNLIMITED)
    b = await open_test_account(conn)
    return a.id, b.id


async def test_an_entry_with_balanced_legs_in_one_statement_is_accepted(pool: asyncpg.Pool) -> None:
    async with rolled_back(pool) as conn:
        a, b = await _two_accounts(conn)
        txn = await _book(conn, [a, b], ["D", "C"], [5, 5])
        assert await conn.fetchval("SELECT count(*) FROM journal_legs WHERE txn_no = $1", txn) == 2


async def test_legs_that_do_not_balance_are_refused_when_the_posting_function_is_bypassed(
        pool: asyncpg.Pool) -> None:
    async with rolled_back(pool) as conn:
        a, b = await _two_accounts(conn)
        with pytest.raises(asyncpg.PostgresError) as info:
            await _book(conn, [a, b], ["D", "C"], [5, 4])
        assert info.value.sqlstate == "PE005"


async def test_a_single_leg_is_refused(pool: asyncpg.Pool) -> None:
    async with rolled_back(pool) as conn:
        a, _ = await _two_accounts(conn)
        with pytest.raises(asyncpg.PostgresError) as info:
            await _book(conn, [a], ["D"], [5])
        assert info.value.sqlstate == "PE005"


async def test_an_entry_without_legs_is_refused_at_commit(pool: asyncpg.Pool) -> None:
    async with rolled_back(pool) as conn:
        await conn.execute("INSERT INTO journal_entries (txn_no, txn_code, accounting_date) VALUES ($1, 'ADJUST', $2)",
                           new_txn_no(), today())
        with pytest.raises(asyncpg.PostgresError) as info:
            await conn.execute("SET CONSTRAINTS ALL IMMEDIATE")  # what COMMIT would check
        assert info.value.sqlstate == "PE005"


async def test_entries_then_their_legs_in_a_second_statement_are_accepted(pool: asyncpg.Pool) -> None:
    """The batch statement's shape: a batch's entries, then all their legs."""
    async with rolled_back(pool) as conn:
        a, b = await _two_accounts(conn)
        txn = new_txn_no()
        day = await conn.fetchval("INSERT INTO journal_entries (txn_no, txn_code, accounting_date)"
                                  " VALUES ($1, 'ADJUST', $2) RETURNING accounting_date", txn, today())
        await conn.execute(_ENTRY_WITH_LEGS, txn, today(), [a, b], ["D", "C"], [5, 5], False, day)
        await conn.execute("SET CONSTRAINTS ALL IMMEDIATE")


async def test_the_posting_function_refuses_fewer_than_two_legs(pool: asyncpg.Pool) -> None:
    async with rolled_back(pool) as conn:
        a, _ = await _two_accounts(conn)
        with pytest.raises(asyncpg.PostgresError) as info:
            await conn.fetch("SELECT * FROM ledger_post_entry($1, 'ADJUST', $2, NULL, $3, $4, $5, $6)",
                             new_txn_no(), today(), [a], ["D"], [5], ["CNY"])
        assert info.value.sqlstate == "PE005"


async def test_legs_of_an_entry_that_does_not_exist_are_refused(pool: asyncpg.Pool) -> None:
    async with rolled_back(pool) as conn:
        a, b = await _two_accounts(conn)
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            await _book(conn, [a, b], ["D", "C"], [5, 5], with_entry=False, legs_date=today())


async def test_legs_dated_otherwise_than_their_entry_are_refused(pool: asyncpg.Pool) -> None:
    async with rolled_back(pool) as conn:
        a, b = await _two_accounts(conn)
        open_date = await conn.fetchval("SELECT open_date FROM accounting_calendar")
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            await _book(conn, [a, b], ["D", "C"], [5, 5], legs_date=open_date - timedelta(days=1))


async def test_legs_on_an_unknown_account_are_refused(pool: asyncpg.Pool) -> None:
    async with rolled_back(pool) as conn:
        a, _ = await _two_accounts(conn)
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            await _book(conn, [a, "acct_nobody_has"], ["D", "C"], [5, 5])


@pytest.mark.parametrize("change", ["amount = amount + 1", "account_id = account_id || 'x'", "side = 'C'",
                                    "txn_no = txn_no", "accounting_date = accounting_date + 1"])
async def test_what_a_leg_says_never_changes(pool: asyncpg.Pool, change: str) -> None:
    async with rolled_back(pool) as conn:
        a, b = await _two_accounts(conn)
        txn = await _book(conn, [a, b], ["D", "C"], [5, 5])
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            await conn.execute(f"UPDATE journal_legs SET {change} WHERE txn_no = $1", txn)


async def test_the_flushers_update_of_a_leg_is_allowed(pool: asyncpg.Pool) -> None:
    async with rolled_back(pool) as conn:
        a, b = await _two_accounts(conn)
        txn = await _book(conn, [a, b], ["D", "C"], [5, 5])
        await conn.execute("UPDATE journal_legs SET status = 'applied', seq = leg_no, balance_after = 0,"
                           " applied_at = now() WHERE txn_no = $1", txn)


@pytest.mark.parametrize("statement", ["DELETE FROM journal_entries WHERE txn_no = $1",
                                       "UPDATE journal_entries SET txn_no = txn_no WHERE txn_no = $1",
                                       "DELETE FROM accounts WHERE id = (SELECT account_id FROM journal_legs"
                                       " WHERE txn_no = $1 LIMIT 1)",
                                       "UPDATE accounts SET id = id || 'x' WHERE id = (SELECT account_id"
                                       " FROM journal_legs WHERE txn_no = $1 LIMIT 1)"])
async def test_entries_and_accounts_are_never_deleted_nor_rekeyed(pool: asyncpg.Pool, statement: str) -> None:
    async with rolled_back(pool) as conn:
        a, b = await _two_accounts(conn)
        txn = await _book(conn, [a, b], ["D", "C"], [5, 5])
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            await conn.execute(statement, txn)
