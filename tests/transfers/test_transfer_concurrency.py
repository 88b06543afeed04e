"""Concurrent transfers: one wallet never overdraws, exactly the covered transfers succeed, and the
ledger still balances (per account: balance = Σ applied legs; per currency: debits = credits)."""

from __future__ import annotations

import asyncio
from collections import Counter

import asyncpg

from accounts.store import trial_balance
from tests.api.conftest import Api
from tests.transfers.conftest import c2c, cashback, fund_available

TRANSFERS = 100
AMOUNT = 100
COVERED = 37


async def _wallet_legs(pool: asyncpg.Pool, account_id: str) -> tuple[int, int, int, int]:
    """(balance, Σ applied deltas, lowest running balance, legs) of one account."""
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT a.balance, coalesce(sum(l.delta), 0) AS total, min(l.balance_after) AS lowest, count(l.id) AS legs"
            " FROM accounts a LEFT JOIN journal_legs l ON l.account_id = a.id AND l.status = 'applied'"
            " WHERE a.id = $1 GROUP BY a.id", account_id)
    assert row is not None
    return row["balance"], row["total"], row["lowest"], row["legs"]


async def _ledger_holds(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        tb = await trial_balance(conn)
    assert tb.holds, tb


async def test_100_concurrent_transfers_out_of_one_wallet_never_overdraw_it(api: Api, pool: asyncpg.Pool) -> None:
    client = await api.merchant()
    payer = await api.funded_customer(client, COVERED * AMOUNT)
    payees = [await api.funded_customer(client, 0) for _ in range(5)]
    results = await asyncio.gather(*(client.create_transfer(c2c(payer, payees[i % len(payees)], AMOUNT))
                                     for i in range(TRANSFERS)))
    statuses = Counter(r.status for r in results)
    assert statuses == {201: COVERED, 402: TRANSFERS - COVERED}, statuses
    assert {r.error_code for r in results if r.status == 402} == {"insufficient_funds"}
    wallet = (await client.get_customer(payer)).body["wallet_account_id"]
    balance, total, lowest, legs = await _wallet_legs(pool, wallet)
    assert balance == total == 0 and lowest >= 0 and legs == 1 + COVERED  # the topup and the covered debits
    received = [(await client.get_customer(p)).body["balance"] for p in payees]
    assert sum(received) == COVERED * AMOUNT
    async with pool.acquire() as conn:
        rows = await conn.fetchval("SELECT count(*) FROM transfers WHERE merchant_id = $1", client.merchant_id)
    assert rows == COVERED
    await _ledger_holds(pool)


async def test_opposite_transfers_and_cashbacks_at_once_neither_deadlock_nor_lose_money(
        api: Api, pool: asyncpg.Pool) -> None:
    client = await api.merchant(fee_bps=0)
    available = await fund_available(api, pool, client, 2_000)
    alice = await api.funded_customer(client, 5_000)
    bob = await api.funded_customer(client, 5_000)
    bodies = [c2c(alice, bob, 30) for _ in range(40)] + [c2c(bob, alice, 20) for _ in range(40)] \
        + [cashback(alice if i % 2 else bob, 50) for i in range(40)]  # 40 x 50 = exactly the available 2_000
    results = await asyncio.gather(*(client.create_transfer(b) for b in bodies))
    assert Counter(r.status for r in results) == {201: len(bodies)}, [r.body for r in results if r.status != 201]
    alice_balance = (await client.get_customer(alice)).body["balance"]
    bob_balance = (await client.get_customer(bob)).body["balance"]
    assert alice_balance == 5_000 - 40 * 30 + 40 * 20 + 20 * 50
    assert bob_balance == 5_000 + 40 * 30 - 40 * 20 + 20 * 50
    assert (await _wallet_legs(pool, available))[:2] == (0, 0)
    await _ledger_holds(pool)
