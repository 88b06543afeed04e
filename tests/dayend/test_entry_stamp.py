"""The day-end fence's date stamp, taken once per transaction (migration 091): every entry of a transaction
carries the open date read under the fence, a stale draft date included, however many entries it books."""

from __future__ import annotations

from datetime import timedelta

from engine.dayend.calendar import read_open_date
from tests.dayend.conftest import Db
from tests.dayend.ledger import funded_pair, topup


async def _dates(db: Db, txn_nos: list[str]) -> list[object]:
    rows = await db.pool.fetch("SELECT txn_no, accounting_date FROM journal_entries WHERE txn_no = ANY($1::text[])",
                               txn_nos)
    by_txn = {r["txn_no"]: r["accounting_date"] for r in rows}
    return [by_txn[t] for t in txn_nos]


async def test_a_stale_draft_after_a_fresh_entry_in_one_transaction_is_still_stamped(db: Db) -> None:
    source, wallet = await funded_pair(db.pool, 5_000)
    async with db.pool.acquire() as conn, conn.transaction():
        day = await read_open_date(conn)
        fresh = await topup(conn, source, wallet, 10, day)
        stale = await topup(conn, source, wallet, 10, day - timedelta(days=1))
        future = await topup(conn, source, wallet, 10, day + timedelta(days=3))
        again = await topup(conn, source, wallet, 10, day)
    assert await _dates(db, [fresh, stale, future, again]) == [day] * 4


async def test_the_date_remembered_by_one_transaction_does_not_carry_into_the_next(db: Db) -> None:
    """The remembered date is transaction-local: after the switch, the same pooled connection's next entry,
    drafted with the old date, is stamped with the new one (this module has a database of its own)."""
    source, wallet = await funded_pair(db.pool, 5_000)
    async with db.pool.acquire() as conn:
        day = await read_open_date(conn)
        before = await topup(conn, source, wallet, 10, day)
        await conn.execute("UPDATE accounting_calendar SET open_date = $1", day + timedelta(days=1))
        try:
            after = await topup(conn, source, wallet, 10, day)
        finally:
            await conn.execute("UPDATE accounting_calendar SET open_date = $1", day)
    assert await _dates(db, [before, after]) == [day, day + timedelta(days=1)]
