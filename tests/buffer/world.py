"""A small world for buffer tests: hot merchant / fee / transit accounts, funded customers, checks.

Every test builds its own world with random ids; checks look only at the world's accounts because
other tests share the database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from accounts.model import AccountId, AccountKind, OverdraftMode
from accounts.rules import build_entry
from accounts.store import PostedEntry, post_entry
from buffer.flusher import FlushStats, flush_account
from buffer.keys import account_keys
from buffer.recovery import recover_account
from buffer.scripts import Scripts
from buffer.store import flush_lock_key
from engine.booking import Booker
from tests.factories import new_txn_no, open_test_account, today


@dataclass
class World:
    merchant: AccountId  # hot, merchant_pending
    fee: AccountId  # hot, fee_income
    transit: AccountId  # hot, gateway_transit
    source: AccountId  # channel receivable funding customers
    customers: list[AccountId] = field(default_factory=list)

    @property
    def hot(self) -> list[AccountId]:
        return [self.merchant, self.fee, self.transit]

    @property
    def all(self) -> list[AccountId]:
        return [self.merchant, self.fee, self.transit, self.source, *self.customers]


async def open_world(pool: asyncpg.Pool, customers: int = 4, funds: int = 1_000_000,
                     merchant_overdraft: OverdraftMode = OverdraftMode.NEVER,
                     owner: asyncpg.Connection | None = None) -> World:
    """Open the world's accounts; the hot ones are flagged hot last, after ``owner`` (if given) holds
    their flush locks, so no flusher of another test's app can claim them first."""
    async with pool.acquire() as conn:
        merchant = await open_test_account(conn, role="merchant_pending", kind=AccountKind.MERCHANT,
                                           overdraft=merchant_overdraft)
        fee = await open_test_account(conn, role="fee_income", kind=AccountKind.INTERNAL)
        transit = await open_test_account(conn, role="gateway_transit", kind=AccountKind.INTERNAL)
        source = await open_test_account(conn, role="channel_receivable", kind=AccountKind.INTERNAL)
        world = World(merchant.id, fee.id, transit.id, source.id)
        for _ in range(customers):
            wallet = await open_test_account(conn)
            await post_entry(conn, build_entry("TOPUP", new_txn_no(), today(), "CNY",
                                               {"channel_receivable": source.id, "customer_wallet": wallet.id},
                                               {"amount": funds}))
            world.customers.append(wallet.id)
        if owner is not None:
            for account_id in world.hot:
                await owner.execute("SELECT pg_advisory_lock($1)", flush_lock_key(account_id))
        await conn.execute("UPDATE accounts SET hot = true WHERE id = ANY($1::text[])", world.hot)
    return world


async def pay(booker: Booker, world: World, customer: AccountId, amount: int, fee: int) -> PostedEntry:
    entry = build_entry("PAY_WALLET", new_txn_no(), today(), "CNY",
                        {"customer_wallet": customer, "gateway_transit": world.transit,
                         "merchant_pending": world.merchant, "fee_income": world.fee},
                        {"amount": amount, "fee": fee})
    return await booker.book(entry)


async def refund(booker: Booker, world: World, customer: AccountId, amount: int) -> PostedEntry:
    """Debit the hot merchant account (REFUND_WALLET without fee): the safe-outflow path."""
    entry = build_entry("REFUND_WALLET", new_txn_no(), today(), "CNY",
                        {"merchant_pending": world.merchant, "fee_income": world.fee, "customer_wallet": customer},
                        {"amount": amount, "fee": 0})
    return await booker.book(entry)


async def drain(owner: asyncpg.Connection, redis: aioredis.Redis, accounts: Sequence[str], batch_size: int = 500,
                rounds_max: int = 1000) -> None:
    """Flush ``accounts`` in-process on ``owner`` (which holds their locks) until nothing is buffered,
    running the recovery sweep with no grace first."""
    scripts = Scripts(redis)
    for _ in range(rounds_max):
        for account_id in accounts:
            await recover_account(owner, redis, scripts, account_id, grace_ms=0)
            while True:
                outcome = await flush_account(owner, redis, scripts, account_id, batch_size, FlushStats())
                if outcome.loaded and outcome.taken == 0:
                    break
        left = await owner.fetchval("SELECT count(*) FROM journal_legs WHERE account_id = ANY($1::text[])"
                                    " AND status = 'buffered'", list(accounts))
        if left == 0:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("buffer did not drain")


async def wait_drained(pool: asyncpg.Pool, accounts: Sequence[str], timeout_s: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        left = await pool.fetchval("SELECT count(*) FROM journal_legs WHERE account_id = ANY($1::text[])"
                                   " AND status = 'buffered'", list(accounts))
        if left == 0:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{left} legs still buffered after {timeout_s}s")
        await asyncio.sleep(0.05)


async def check_ledger(conn: Any, accounts: Sequence[str], floors: dict[str, int] | None = None) -> None:
    """DESIGN.md invariants, for these accounts: every leg applied once, balance = Σ applied legs,
    statement seq 1..n strictly increasing with a running balance consistent line by line, every
    entry touching them balanced, and no running balance below a given floor."""
    floors = floors or {}
    for account_id in accounts:
        balance = await conn.fetchval("SELECT balance FROM accounts WHERE id = $1", account_id)
        rows = await conn.fetch("SELECT seq, delta, balance_after, status FROM journal_legs WHERE account_id = $1"
                                " ORDER BY seq NULLS LAST, id", account_id)
        assert all(r["status"] == "applied" for r in rows), f"{account_id}: legs still buffered"
        running = 0
        for expected_seq, r in enumerate(rows, start=1):
            assert r["seq"] == expected_seq, f"{account_id}: seq {r['seq']} where {expected_seq} expected"
            running += r["delta"]
            assert r["balance_after"] == running, f"{account_id}: running balance broken at seq {r['seq']}"
            if account_id in floors:
                assert running >= floors[account_id], f"{account_id}: balance {running} below floor"
        assert balance == running, f"{account_id}: balance {balance} != Σ legs {running}"
    unbalanced = await conn.fetchval(
        "SELECT count(*) FROM (SELECT txn_no FROM journal_legs WHERE txn_no IN"
        " (SELECT txn_no FROM journal_legs WHERE account_id = ANY($1::text[]))"
        " GROUP BY txn_no HAVING sum(CASE side WHEN 'D' THEN amount ELSE -amount END) <> 0) t",
        list(accounts))
    assert unbalanced == 0


async def redis_matches_pg(conn: Any, redis: aioredis.Redis, account_id: str) -> None:
    """When loaded, Redis' applied + pending (reservations aside) equals PostgreSQL's projected."""
    st = await redis.hgetall(account_keys(account_id).state)
    if b"loaded" not in st:
        return
    row = await conn.fetchrow("SELECT balance, (SELECT coalesce(sum(delta), 0) FROM journal_legs"
                              " WHERE account_id = $1 AND status = 'buffered') AS pending"
                              " FROM accounts WHERE id = $1", account_id)
    assert int(st[b"applied"]) + int(st.get(b"pending", b"0")) == row["balance"] + row["pending"]
