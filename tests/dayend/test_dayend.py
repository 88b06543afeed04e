"""Day-end: the date switch fence, trial balance per date, snapshots, idempotence, refusal, failure."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from accounts.store import set_hot
from buffer.store import apply_batch
from engine.dayend import store
from engine.dayend.calendar import read_open_date
from engine.dayend.flow import DayEndOptions, DayEndRunning, DayNotOpen, SwitchBusy, run_day_end
from tests.dayend.conftest import Db
from tests.dayend.ledger import funded_pair, topup


async def test_day_end_passes_and_a_second_run_changes_nothing(db: Db) -> None:
    source, wallet = await funded_pair(db.pool, 5_000)
    async with db.pool.acquire() as conn:
        day = await read_open_date(conn)
        await topup(conn, source, wallet, 700)
    row = await run_day_end(db.pool, day)
    assert row.status == "done", row
    assert row.report is not None and row.report["trial_balance"] == "ok"
    async with db.pool.acquire() as conn:
        assert await read_open_date(conn) == day + timedelta(days=1)
        snap = await conn.fetchrow(
            "SELECT opening, debits, credits, closing FROM daily_balances WHERE accounting_date = $1"
            " AND account_id = $2", day, wallet)
        before = await conn.fetch("SELECT * FROM daily_balances WHERE accounting_date = $1 ORDER BY account_id", day)
    assert (snap["debits"], snap["credits"], snap["closing"]) == (0, 5_700, 5_700)
    again = await run_day_end(db.pool, day)
    assert again.status == "done" and again.finished_at == row.finished_at
    async with db.pool.acquire() as conn:
        assert await read_open_date(conn) == day + timedelta(days=1)
        after = await conn.fetch("SELECT * FROM daily_balances WHERE accounting_date = $1 ORDER BY account_id", day)
    assert before == after


async def test_next_day_opens_from_previous_closing(db: Db) -> None:
    source, wallet = await funded_pair(db.pool, 1_000)
    async with db.pool.acquire() as conn:
        day = await read_open_date(conn)
    first = await run_day_end(db.pool, day)
    assert first.status == "done"
    async with db.pool.acquire() as conn:
        await topup(conn, source, wallet, 250)
    second = await run_day_end(db.pool, day + timedelta(days=1))
    assert second.status == "done", second.report
    async with db.pool.acquire() as conn:
        snap = await conn.fetchrow("SELECT opening, net, closing FROM daily_balances WHERE accounting_date = $1"
                                   " AND account_id = $2", day + timedelta(days=1), wallet)
    assert (snap["opening"], snap["net"], snap["closing"]) == (1_000, 250, 1_250)


async def test_stale_draft_books_to_the_open_date(db: Db) -> None:
    source, wallet = await funded_pair(db.pool, 100)
    async with db.pool.acquire() as conn:
        day = await read_open_date(conn)
        txn_no = await topup(conn, source, wallet, 5, day=day - timedelta(days=3))
        dates = await conn.fetch("SELECT accounting_date FROM journal_legs WHERE txn_no = $1 UNION ALL"
                                 " SELECT accounting_date FROM journal_entries WHERE txn_no = $1", txn_no)
    assert {r["accounting_date"] for r in dates} == {day}


async def test_in_flight_entry_keeps_its_date_and_switch_waits_for_it(db: Db) -> None:
    source, wallet = await funded_pair(db.pool, 100)
    async with db.pool.acquire() as conn:
        day = await read_open_date(conn)
    async with db.pool.acquire() as booking:
        tx = booking.transaction()
        await tx.start()
        in_flight = await topup(booking, source, wallet, 1)  # holds the switch fence shared until commit
        runner = asyncio.create_task(run_day_end(db.pool, day, DayEndOptions(poll_interval_s=0.05)))
        await asyncio.sleep(0.3)
        assert not runner.done()  # the switch waits for the in-flight entry
        async with db.pool.acquire() as conn:
            assert await read_open_date(conn) == day
        await tx.commit()
    row = await runner
    assert row.status == "done", row.report
    async with db.pool.acquire() as conn:
        after = await topup(conn, source, wallet, 1)
        dated = {r["txn_no"]: r["accounting_date"] for r in await conn.fetch(
            "SELECT txn_no, accounting_date FROM journal_entries WHERE txn_no = ANY($1::text[])", [in_flight, after])}
        counted = await conn.fetchval("SELECT legs FROM daily_balances WHERE accounting_date = $1"
                                      " AND account_id = $2", day, wallet)
    assert dated == {in_flight: day, after: day + timedelta(days=1)}
    assert counted == 2  # the funding topup and the in-flight one


async def test_second_day_end_while_one_runs_is_refused(db: Db) -> None:
    async with db.pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock($1)", store.RUN_LOCK_KEY)
        try:
            with pytest.raises(DayEndRunning):
                await run_day_end(db.pool, None)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", store.RUN_LOCK_KEY)


async def test_closing_a_date_that_is_not_open_is_refused(db: Db) -> None:
    async with db.pool.acquire() as conn:
        day = await read_open_date(conn)
    with pytest.raises(DayNotOpen):
        await run_day_end(db.pool, day + timedelta(days=5))


async def test_broken_balance_fails_the_day_and_names_the_account(db: Db) -> None:
    _source, wallet = await funded_pair(db.pool, 300)
    async with db.pool.acquire() as conn:
        day = await read_open_date(conn)
        # A balance moved outside the ledger: exactly what the trial balance exists to catch.
        await conn.execute("UPDATE accounts SET balance = balance + 7 WHERE id = $1", wallet)
    try:
        row = await run_day_end(db.pool, day)
        assert row.status == "failed" and row.error == "trial balance failed"
        assert row.report is not None and row.report["trial_balance"] == "failed"
        assert [a["account_id"] for a in row.report["offending_accounts"]] == [wallet]
        assert row.report["offending_accounts"][0]["difference"] == 7
    finally:
        async with db.pool.acquire() as conn:
            await conn.execute("UPDATE accounts SET balance = balance - 7 WHERE id = $1", wallet)
    fixed = await run_day_end(db.pool, day)  # rerun after the repair: resumes at the balance step
    assert fixed.status == "done" and fixed.attempts == 2


async def test_switch_gives_up_when_a_booking_holds_the_fence_too_long(db: Db) -> None:
    source, wallet = await funded_pair(db.pool, 100)
    async with db.pool.acquire() as conn:
        day = await read_open_date(conn)
    async with db.pool.acquire() as booking:
        tx = booking.transaction()
        await tx.start()
        await topup(booking, source, wallet, 1)
        with pytest.raises(SwitchBusy):
            await run_day_end(db.pool, day, DayEndOptions(switch_lock_timeout_ms=200))
        async with db.pool.acquire() as conn:
            assert await read_open_date(conn) == day  # nothing changed; bookings were held back 200 ms at most
            assert (await store.get_day_end(conn, day)).step == "switch"  # type: ignore[union-attr]
        await tx.commit()
    row = await run_day_end(db.pool, day)
    assert row.status == "done" and row.attempts == 2


async def test_drain_that_times_out_fails_the_day_naming_the_account_and_resumes(db: Db) -> None:
    source, wallet = await funded_pair(db.pool, 100)
    async with db.pool.acquire() as conn:
        day = await read_open_date(conn)
        await set_hot(conn, source, True)  # its next leg waits for a flusher; none runs in this module
        txn_no = await topup(conn, source, wallet, 9)
    progress: list[tuple[str, dict[str, object]]] = []
    row = await run_day_end(db.pool, day, DayEndOptions(drain_timeout_s=0.3, poll_interval_s=0.05,
                                                        progress=lambda e, d: progress.append((e, d))))
    assert row.status == "failed" and row.error is not None and "1 legs" in row.error
    assert row.report is not None and row.report["buffered_accounts"][0]["account_id"] == source
    assert [d["buffered_legs"] for e, d in progress if e == "drain"][-1] == 1  # progress while waiting
    async with db.pool.acquire() as conn:
        await apply_batch(conn, source, [(txn_no, 1)])  # the buffer's own apply, as its flusher would
        await set_hot(conn, source, False)
    resumed = await run_day_end(db.pool, day)
    assert resumed.status == "done" and resumed.report is not None and resumed.report["trial_balance"] == "ok"
