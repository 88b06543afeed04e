"""Splitting, resizing, routing and sweeping against real PostgreSQL, through Booker."""

from __future__ import annotations

import asyncio
from collections import Counter

import asyncpg
import pytest

from accounts.errors import (
    AccountClosed,
    CurrencyMismatch,
    InsufficientFunds,
    InvalidSplitCount,
    NotSplittable,
    SplitConflict,
    UnknownAccount,
)
from accounts.journal import LegDraft, make_entry
from accounts.model import OverdraftMode
from accounts.split_store import split_statement, split_view, sub_account_id
from engine.booking import Booker
from engine.ledger_admin.accounts import tidy_account
from tests.factories import new_txn_no, rand_id, today
from tests.split.helpers import C, D, check_family, credit, debit, open_family, split


async def _entries(conn: asyncpg.Connection, parent_id: str) -> int:
    return int(await conn.fetchval(
        "SELECT count(DISTINCT txn_no) FROM journal_legs l JOIN accounts a ON a.id = l.account_id"
        " WHERE a.id = $1 OR a.parent_id = $1", parent_id))


async def test_split_moves_parent_balance_into_subs_in_one_sweep_entry(pool: asyncpg.Pool, booker: Booker) -> None:
    async with pool.acquire() as conn:
        fam = await open_family(conn)
    await credit(booker, fam, 1003)
    await split(booker, fam.parent.id, 4)
    async with pool.acquire() as conn:
        view = await split_view(conn, fam.parent.id)
        assert view.sub_count == 4 and view.own_balance_minor == 0 and view.balance_minor == 1003
        assert sorted(s.balance_minor for s in view.subs) == [250, 251, 251, 251]
        subs = await conn.fetch("SELECT * FROM accounts WHERE parent_id = $1 ORDER BY sub_index", fam.parent.id)
        for i, s in enumerate(subs):
            assert (s["id"], s["sub_index"], s["owner_id"], s["role"], s["subject_code"], s["currency"]) == (
                sub_account_id(fam.parent.id, i), i, fam.parent.owner_id, "merchant_pending", "2002", "CNY")
        sweeps = await conn.fetch(
            "SELECT DISTINCT e.txn_no FROM journal_entries e JOIN journal_legs l USING (txn_no)"
            " WHERE l.account_id = $1 AND e.txn_code = 'SWEEP'", fam.parent.id)
        assert len(sweeps) == 1
        assert await check_family(conn, fam.parent.id) == 1003


async def test_credits_spread_over_subs_and_debits_split_when_no_sub_covers(pool: asyncpg.Pool,
                                                                            booker: Booker) -> None:
    async with pool.acquire() as conn:
        fam = await open_family(conn)
    await split(booker, fam.parent.id, 4)
    for _ in range(200):
        await credit(booker, fam, 10)
    async with pool.acquire() as conn:
        view = await split_view(conn, fam.parent.id)
        assert view.balance_minor == 2000 and all(s.balance_minor >= 250 for s in view.subs)
    posted = await debit(booker, fam, 1900)  # more than any one sub holds: several debit legs, one entry
    assert len([leg for leg in posted.legs if leg.delta < 0]) >= 2
    async with pool.acquire() as conn:
        before = await _entries(conn, fam.parent.id)
        with pytest.raises(InsufficientFunds) as info:
            await debit(booker, fam, 101)
        assert info.value.account_id == fam.parent.id
        assert await _entries(conn, fam.parent.id) == before
        assert await check_family(conn, fam.parent.id) == 100


async def test_shrink_sweeps_removed_subs_and_tidy_closes_them_once_empty(pool: asyncpg.Pool, booker: Booker) -> None:
    async with pool.acquire() as conn:
        fam = await open_family(conn)
    await split(booker, fam.parent.id, 8)
    for _ in range(80):
        await credit(booker, fam, 7)
    await split(booker, fam.parent.id, 2)
    async with pool.acquire() as conn:
        view = await split_view(conn, fam.parent.id)
        assert [s.balance_minor for s in view.subs if not s.active] == [0] * 6
        assert sum(s.balance_minor for s in view.subs if s.active) == 560
    closed = await tidy_account(booker, new_txn_no, fam.parent.id, grace_s=3600)
    assert closed == []  # within the grace period a stale router might still pick them
    closed = await tidy_account(booker, new_txn_no, fam.parent.id, grace_s=0)
    assert sorted(closed) == [sub_account_id(fam.parent.id, i) for i in range(2, 8)]
    await split(booker, fam.parent.id, 3)  # grow again: sub 2 is reopened
    await credit(booker, fam, 5)
    async with pool.acquire() as conn:
        view = await split_view(conn, fam.parent.id)
        assert [s.status for s in view.subs] == ["open"] * 3 + ["closed"] * 5
        assert await check_family(conn, fam.parent.id) == 565


async def test_stale_legs_on_the_parent_row_are_swept_by_tidy(pool: asyncpg.Pool, booker: Booker) -> None:
    async with pool.acquire() as conn:
        fam = await open_family(conn)
    await split(booker, fam.parent.id, 2)
    stale = Booker(pool)  # another process whose directory has not seen the split yet
    stale.splits.ttl_s = 3600
    stale.splits._layouts, stale.splits._loaded_at = {}, stale.splits._clock()
    await credit(stale, fam, 40)
    async with pool.acquire() as conn:
        assert (await split_view(conn, fam.parent.id)).own_balance_minor == 40
        assert await check_family(conn, fam.parent.id) == 40
    await tidy_account(booker, new_txn_no, fam.parent.id, grace_s=0)
    async with pool.acquire() as conn:
        view = await split_view(conn, fam.parent.id)
        assert view.own_balance_minor == 0 and view.balance_minor == 40


async def test_limit_overdraft_is_carried_by_sub_zero_only(pool: asyncpg.Pool, booker: Booker) -> None:
    async with pool.acquire() as conn:
        fam = await open_family(conn, overdraft=OverdraftMode.LIMIT, limit_minor=500)
    await split(booker, fam.parent.id, 4)
    await debit(booker, fam, 500)
    with pytest.raises(InsufficientFunds):
        await debit(booker, fam, 1)
    async with pool.acquire() as conn:
        assert await check_family(conn, fam.parent.id) == -500


async def test_hot_parent_makes_hot_subs_whose_legs_are_buffered(pool: asyncpg.Pool, booker: Booker) -> None:
    async with pool.acquire() as conn:
        fam = await open_family(conn, hot=True)
    await split(booker, fam.parent.id, 4)
    posted = await credit(booker, fam, 9)
    async with pool.acquire() as conn:
        hot = await conn.fetch("SELECT hot FROM accounts WHERE parent_id = $1", fam.parent.id)
        assert [r["hot"] for r in hot] == [True] * 4
    assert [leg.status for leg in posted.legs if leg.account_id != fam.source.id] == ["buffered"]


async def test_bad_input_is_refused_and_changes_nothing(pool: asyncpg.Pool, booker: Booker) -> None:
    async with pool.acquire() as conn:
        fam = await open_family(conn)
        for bad in (0, 1, 257, -3):
            with pytest.raises(InvalidSplitCount):
                await split(booker, fam.parent.id, bad)
        assert await conn.fetchval("SELECT count(*) FROM accounts WHERE parent_id = $1", fam.parent.id) == 0
        with pytest.raises(UnknownAccount):
            await split(booker, rand_id("acct"), 4)
        closed = await open_family(conn)
        await conn.execute("UPDATE accounts SET status = 'closed' WHERE id = $1", closed.parent.id)
        with pytest.raises(AccountClosed):
            await split(booker, closed.parent.id, 4)
        assert await conn.fetchval("SELECT count(*) FROM account_splits WHERE parent_id = $1", closed.parent.id) == 0
    await split(booker, fam.parent.id, 2)
    with pytest.raises(NotSplittable):
        await split(booker, sub_account_id(fam.parent.id, 0), 2)
    async with pool.acquire() as conn:
        before = await _entries(conn, fam.parent.id)
    usd = make_entry(new_txn_no(), "ADJUST", today(), [LegDraft(fam.source.id, D, 5, "USD"),
                                                       LegDraft(fam.parent.id, C, 5, "USD")])
    with pytest.raises(CurrencyMismatch):
        await booker.book(usd)
    async with pool.acquire() as conn:
        assert await _entries(conn, fam.parent.id) == before


async def test_concurrent_split_requests_one_wins_the_other_gets_a_conflict(pool: asyncpg.Pool,
                                                                           booker: Booker) -> None:
    async with pool.acquire() as conn:
        fam = await open_family(conn)
    await credit(booker, fam, 1000)
    # Hold the resize lock in another transaction, as a slow concurrent split would.
    async with pool.acquire() as holder, holder.transaction():
        await holder.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", 0x5350, fam.parent.id)
        with pytest.raises(SplitConflict):
            await split(booker, fam.parent.id, 4)
    results = await asyncio.gather(*(split(booker, fam.parent.id, n) for n in (4, 8, 16)), return_exceptions=True)
    assert all(r is None or isinstance(r, SplitConflict) for r in results)
    assert any(r is None for r in results)
    async with pool.acquire() as conn:
        view = await split_view(conn, fam.parent.id)
        assert view.sub_count in (4, 8, 16) and view.sub_count == sum(1 for s in view.subs if s.active)
        assert await check_family(conn, fam.parent.id) == 1000


async def test_statement_merges_subs_by_time_and_names_the_sub(pool: asyncpg.Pool, booker: Booker) -> None:
    async with pool.acquire() as conn:
        fam = await open_family(conn)
    await credit(booker, fam, 100)
    await split(booker, fam.parent.id, 4)
    for amount in (1, 2, 3, 4, 5, 6):
        await credit(booker, fam, amount)
    async with pool.acquire() as conn:
        lines = await split_statement(conn, fam.parent.id, limit=100)
        keys = [(line.applied_at, line.sub_index, line.seq) for line in lines]
        assert keys == sorted(keys)
        assert lines[0].sub_index == -1 and lines[-1].balance_after == 121
        assert Counter(line.txn_code for line in lines)["SWEEP"] >= 2  # the parent's leg and the subs' legs
        page = await split_statement(conn, fam.parent.id, limit=3, after=keys[2])
        assert [(p.applied_at, p.sub_index, p.seq) for p in page] == keys[3:6]


async def test_new_hot_subs_take_legs_only_after_activation_and_tidy_sweeps_the_parent(
        pool: asyncpg.Pool, booker: Booker) -> None:
    async with pool.acquire() as conn:
        fam = await open_family(conn, hot=True)
    await split(booker, fam.parent.id, 4, hot_activation_s=3600)
    posted = await credit(booker, fam, 11)  # no buffer here: hot legs stay 'buffered' in PostgreSQL
    assert fam.parent.id in {leg.account_id for leg in posted.legs}
    async with pool.acquire() as conn:  # let time pass: the activation and the retirement grace run out
        await conn.execute("UPDATE split_sub_activations SET active_from = now() - interval '1 hour'"
                           " WHERE account_id LIKE $1", fam.parent.id + ".s%")
        await conn.execute("UPDATE account_splits SET resized_at = now() - interval '1 hour' WHERE parent_id = $1",
                           fam.parent.id)
    booker.splits.invalidate()
    posted = await credit(booker, fam, 5)
    assert fam.parent.id not in {leg.account_id for leg in posted.legs}
    await tidy_account(booker, new_txn_no, fam.parent.id, grace_s=60)
    async with pool.acquire() as conn:
        parent_legs = await conn.fetch("SELECT delta FROM journal_legs WHERE account_id = $1", fam.parent.id)
        assert sorted(r["delta"] for r in parent_legs) == [-11, 11]  # swept out once settled


async def test_row_lock_waiters_are_sampled_per_account(pool: asyncpg.Pool) -> None:
    from accounts.hot_store import row_lock_waiters

    async with pool.acquire() as conn:
        fam = await open_family(conn)
    async with pool.acquire() as holder, holder.transaction():
        await holder.execute("UPDATE accounts SET last_seq = last_seq WHERE id = $1", fam.parent.id)

        async def wait_on_row() -> None:
            async with pool.acquire() as c:
                await c.execute("UPDATE accounts SET last_seq = last_seq WHERE id = $1", fam.parent.id)

        waiters = [asyncio.create_task(wait_on_row()) for _ in range(3)]
        await asyncio.sleep(0.3)
        async with pool.acquire() as conn:
            sampled = await row_lock_waiters(conn)
    await asyncio.gather(*waiters)
    assert sampled.get(fam.parent.id, 0) >= 2
