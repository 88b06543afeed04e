"""The ledger store against real PostgreSQL: posting, rejections, statements, concurrency."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from accounts.errors import (
    AccountClosed,
    CurrencyMismatch,
    DuplicateTransaction,
    InsufficientFunds,
    UnknownAccount,
)
from accounts.journal import LegDraft, make_entry
from accounts.model import AccountKind, OverdraftMode, Side
from accounts.rules import build_entry
from accounts.store import get_account, post_entry, statement, trial_balance
from tests.factories import new_txn_no, open_test_account, today

D, C = Side.DEBIT, Side.CREDIT


async def _fund(conn: asyncpg.Connection, wallet_id: str, amount: int) -> str:
    source = await open_test_account(conn, role="channel_receivable", kind=AccountKind.INTERNAL)
    entry = build_entry(
        "TOPUP",
        new_txn_no(),
        today(),
        "CNY",
        {"channel_receivable": source.id, "customer_wallet": wallet_id},
        {"amount": amount},
    )
    await post_entry(conn, entry)
    return source.id


async def _count_legs(conn: asyncpg.Connection, *account_ids: str) -> int:
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM journal_legs WHERE account_id = ANY($1::text[])", list(account_ids)
        )
    )


async def test_topup_moves_both_balances_and_records_running_balance(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        wallet = await open_test_account(conn)
        source = await _fund(conn, wallet.id, 1000)
        await _fund(conn, wallet.id, 250)
        after = await get_account(conn, wallet.id)
        assert after is not None and after.balance_minor == 1250
        src = await get_account(conn, source)
        assert src is not None and src.balance_minor == 1000  # debit-normal asset grew
        lines = await statement(conn, wallet.id)
        assert [(line.seq, line.delta, line.balance_after) for line in lines] == [
            (1, 1000, 1000),
            (2, 250, 1250),
        ]


async def test_overdraft_rejected_and_nothing_written(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        wallet = await open_test_account(conn)
        merchant = await open_test_account(conn, role="merchant_pending", kind=AccountKind.MERCHANT)
        await _fund(conn, wallet.id, 100)
        entry = make_entry(
            new_txn_no(),
            "PAY_WALLET",
            today(),
            [LegDraft(wallet.id, D, 101, "CNY"), LegDraft(merchant.id, C, 101, "CNY")],
        )
        legs_before = await _count_legs(conn, wallet.id, merchant.id)
        with pytest.raises(InsufficientFunds) as info:
            await post_entry(conn, entry)
        assert info.value.account_id == wallet.id
        assert await _count_legs(conn, wallet.id, merchant.id) == legs_before
        assert (
            await conn.fetchval("SELECT count(*) FROM journal_entries WHERE txn_no = $1", entry.txn_no) == 0
        )
        w = await get_account(conn, wallet.id)
        assert w is not None and w.balance_minor == 100


async def test_overdraft_limit_allows_down_to_the_limit(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        acct = await open_test_account(
            conn,
            role="merchant_available",
            kind=AccountKind.MERCHANT,
            overdraft=OverdraftMode.LIMIT,
            limit_minor=50,
        )
        other = await open_test_account(conn, role="merchant_pending", kind=AccountKind.MERCHANT)
        ok = make_entry(
            new_txn_no(),
            "ADJUST",
            today(),
            [LegDraft(acct.id, D, 50, "CNY"), LegDraft(other.id, C, 50, "CNY")],
        )
        await post_entry(conn, ok)
        too_far = make_entry(
            new_txn_no(), "ADJUST", today(), [LegDraft(acct.id, D, 1, "CNY"), LegDraft(other.id, C, 1, "CNY")]
        )
        with pytest.raises(InsufficientFunds):
            await post_entry(conn, too_far)
        after = await get_account(conn, acct.id)
        assert after is not None and after.balance_minor == -50


async def test_unknown_account_currency_mismatch_closed_and_duplicate_are_typed(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        a = await open_test_account(conn, overdraft=OverdraftMode.UNLIMITED)
        b = await open_test_account(conn)
        usd = await open_test_account(conn, currency="USD")
        with pytest.raises(UnknownAccount):
            await post_entry(
                conn,
                make_entry(
                    new_txn_no(),
                    "ADJUST",
                    today(),
                    [LegDraft(a.id, D, 5, "CNY"), LegDraft("acct_nope", C, 5, "CNY")],
                ),
            )
        with pytest.raises(CurrencyMismatch):
            await post_entry(
                conn,
                make_entry(
                    new_txn_no(),
                    "ADJUST",
                    today(),
                    [LegDraft(a.id, D, 5, "CNY"), LegDraft(usd.id, C, 5, "CNY")],
                ),
            )
        await conn.execute("UPDATE accounts SET status = 'closed' WHERE id = $1", b.id)
        with pytest.raises(AccountClosed):
            await post_entry(
                conn,
                make_entry(
                    new_txn_no(),
                    "ADJUST",
                    today(),
                    [LegDraft(a.id, D, 5, "CNY"), LegDraft(b.id, C, 5, "CNY")],
                ),
            )
        c = await open_test_account(conn)
        entry = make_entry(
            new_txn_no(), "ADJUST", today(), [LegDraft(a.id, D, 5, "CNY"), LegDraft(c.id, C, 5, "CNY")]
        )
        await post_entry(conn, entry)
        with pytest.raises(DuplicateTransaction):
            await post_entry(conn, entry)
        assert await _count_legs(conn, a.id, b.id, usd.id, c.id) == 2


async def test_database_refuses_an_unbalanced_entry_even_if_code_is_bypassed(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        a = await open_test_account(conn, overdraft=OverdraftMode.UNLIMITED)
        b = await open_test_account(conn)
        txn = new_txn_no()
        with pytest.raises(asyncpg.PostgresError) as info:
            await conn.fetch(
                "SELECT * FROM ledger_post_entry($1,'ADJUST',$2,NULL,$3,$4,$5,$6)",
                txn,
                today(),
                [a.id, b.id],
                ["D", "C"],
                [5, 4],
                ["CNY", "CNY"],
            )
        assert info.value.sqlstate == "PE005"
        assert await _count_legs(conn, a.id, b.id) == 0


async def test_200_concurrent_debits_of_10_from_1000_exactly_100_succeed(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        wallet = await open_test_account(conn)
        sink = await open_test_account(conn, role="merchant_pending", kind=AccountKind.MERCHANT)
        await _fund(conn, wallet.id, 1000)

    async def debit() -> bool:
        entry = make_entry(
            new_txn_no(),
            "PAY_WALLET",
            today(),
            [LegDraft(wallet.id, D, 10, "CNY"), LegDraft(sink.id, C, 10, "CNY")],
        )
        async with pool.acquire() as c:
            try:
                async with c.transaction():
                    await post_entry(c, entry)
                return True
            except InsufficientFunds:
                return False

    results = await asyncio.gather(*(debit() for _ in range(200)))
    assert sum(results) == 100
    async with pool.acquire() as conn:
        w = await get_account(conn, wallet.id)
        assert w is not None and w.balance_minor == 0
        lines = await statement(conn, wallet.id, limit=1000)
        assert min(line.balance_after for line in lines) == 0
        assert [line.seq for line in lines] == list(range(1, 102))


async def test_2000_concurrent_postings_across_50_accounts_keep_the_trial_balance(pool: asyncpg.Pool) -> None:
    import random

    rng = random.Random(7)
    async with pool.acquire() as conn:
        accounts = [
            await open_test_account(conn, overdraft=OverdraftMode.LIMIT, limit_minor=10_000)
            for _ in range(50)
        ]
    sem = asyncio.Semaphore(64)

    async def move() -> None:
        a, b = rng.sample(accounts, 2)
        amount = rng.randint(1, 500)
        entry = make_entry(
            new_txn_no(),
            "ADJUST",
            today(),
            [LegDraft(a.id, D, amount, "CNY"), LegDraft(b.id, C, amount, "CNY")],
        )
        async with sem, pool.acquire() as c:
            try:
                await post_entry(c, entry)
            except InsufficientFunds:
                pass

    await asyncio.gather(*(move() for _ in range(2000)))
    async with pool.acquire() as conn:
        tb = await trial_balance(conn)
        assert tb.holds, tb
        ids = [a.id for a in accounts]
        total = await conn.fetchval("SELECT sum(balance) FROM accounts WHERE id = ANY($1::text[])", ids)
        assert total == 0
        lowest = await conn.fetchval("SELECT min(balance) FROM accounts WHERE id = ANY($1::text[])", ids)
        assert lowest >= -10_000
