"""Buffered booking end to end in one process: reserve, commit, enqueue, flush, recover, read."""

from __future__ import annotations

import asyncio
import random

import asyncpg
import pytest
import redis.asyncio as aioredis

from accounts.errors import InsufficientFunds
from accounts.rules import build_entry
from buffer.flusher import FlushStats, flush_account
from buffer.keys import account_keys, parse_leg_member
from buffer.recovery import MissingLegs, SweepOutcome, recover_accounts
from buffer.scripts import Scripts
from buffer.sink import RedisHotLegSink
from buffer.state import load_account, read_status
from buffer.store import apply_batch, hot_balance
from engine.booking import Booker, BookingTransaction
from tests.buffer.world import check_ledger, drain, open_world, pay, redis_matches_pg, refund
from tests.factories import new_txn_no, today


async def test_hot_legs_are_buffered_then_applied_in_order(
        pool: asyncpg.Pool, redis_client: aioredis.Redis, owner: asyncpg.Connection, sink: RedisHotLegSink,
        booker: Booker) -> None:
    world = await open_world(pool, customers=8, owner=owner)
    await sink.hot.refresh()
    rng = random.Random(1)

    async def payer(customer: str) -> None:
        for _ in range(25):
            amount = rng.randint(100, 5000)
            await pay(booker, world, customer, amount, amount // 100)

    await asyncio.gather(*(payer(c) for c in world.customers))
    async with pool.acquire() as conn:
        for account_id in world.hot:
            await redis_matches_pg(conn, redis_client, account_id)
        balance = await hot_balance(conn, world.merchant)
        assert balance is not None and balance.applied_minor == 0 and balance.pending_minor > 0
    status = {s.account_id: s for s in await read_status(redis_client, Scripts(redis_client), world.hot)}
    assert status[world.merchant].depth == 200  # one leg per payment
    assert status[world.transit].depth == 400  # credit and debit per payment

    await drain(owner, redis_client, world.hot, batch_size=37)
    async with pool.acquire() as conn:
        await check_ledger(conn, world.all, floors={a: 0 for a in world.hot})
        after = await hot_balance(conn, world.merchant)
        assert after is not None and after.pending_minor == 0
        assert after.applied_minor == balance.projected_minor
        for account_id in world.hot:
            await redis_matches_pg(conn, redis_client, account_id)
    assert await redis_client.zcard(account_keys(world.merchant).queue) == 0


async def test_redelivered_legs_change_nothing(pool: asyncpg.Pool, redis_client: aioredis.Redis,
                                               owner: asyncpg.Connection, sink: RedisHotLegSink,
                                               booker: Booker) -> None:
    world = await open_world(pool, customers=1, owner=owner)
    await sink.hot.refresh()
    posted = [await pay(booker, world, world.customers[0], 1000, 10) for _ in range(5)]
    await sink.enqueue(posted, [])  # a re-delivery while still queued
    assert await redis_client.zcard(account_keys(world.merchant).queue) == 5
    await drain(owner, redis_client, world.hot)
    await sink.enqueue(posted, [])  # a late re-delivery after the flush
    assert await redis_client.zcard(account_keys(world.merchant).queue) == 0
    async with pool.acquire() as conn:
        await check_ledger(conn, world.all)
        assert await conn.fetchval("SELECT balance FROM accounts WHERE id = $1", world.merchant) == 5 * 990


async def test_legs_redis_never_saw_are_recovered_in_order(pool: asyncpg.Pool, redis_client: aioredis.Redis,
                                                           owner: asyncpg.Connection, sink: RedisHotLegSink) -> None:
    world = await open_world(pool, customers=2, owner=owner)
    await sink.hot.refresh()
    unbuffered = Booker(pool, None)  # as if the process died between commit and enqueue
    for i in range(30):
        await pay(unbuffered, world, world.customers[i % 2], 500 + i, 5)
    assert await redis_client.exists(account_keys(world.merchant).queue) == 0
    await drain(owner, redis_client, world.hot, batch_size=7)
    async with pool.acquire() as conn:
        await check_ledger(conn, world.all)
        seq_order = await conn.fetch("SELECT id FROM journal_legs WHERE account_id = $1 ORDER BY seq", world.merchant)
        assert [r["id"] for r in seq_order] == sorted(r["id"] for r in seq_order)  # journal order kept


async def test_one_sweep_over_many_accounts_puts_back_exactly_what_each_is_missing(
        pool: asyncpg.Pool, redis_client: aioredis.Redis, owner: asyncpg.Connection, sink: RedisHotLegSink,
        booker: Booker) -> None:
    world = await open_world(pool, customers=2, owner=owner)
    await sink.hot.refresh()
    unbuffered = Booker(pool, None)  # as if the process died between commit and enqueue
    for i in range(12):
        await pay(booker if i % 3 else unbuffered, world, world.customers[i % 2], 700 + i, 7)
    # A refund in flight: its debit of the merchant is reserved, its transaction never ends.
    entry = build_entry("REFUND_WALLET", new_txn_no(), today(), "CNY",
                        {"merchant_pending": world.merchant, "fee_income": world.fee,
                         "customer_wallet": world.customers[0]}, {"amount": 300, "fee": 0})
    await sink.reserve(entry)
    queue_before = {a: await redis_client.zcard(account_keys(a).queue) for a in world.hot}
    idle = world.customers[0]  # owns no buffered legs: counted, nothing to do
    await asyncio.sleep(0.005)
    scripts = Scripts(redis_client)
    swept = await recover_accounts(owner, redis_client, scripts, [*world.hot, idle], MissingLegs(), grace_ms=0,
                                   reservation_ttl_ms=1)
    # Fee and transit miss the legs of the 4 unbuffered payments (transit has a debit and a credit in
    # each); the merchant misses none: checking the refund's debit loaded its state from PostgreSQL.
    missing = {world.merchant: 0, world.fee: 4, world.transit: 8}
    for account_id in world.hot:
        assert swept[account_id].reenqueued == missing[account_id]
        assert await redis_client.zcard(account_keys(account_id).queue) == \
            queue_before[account_id] + swept[account_id].reenqueued
        await redis_matches_pg(owner, redis_client, account_id)
    assert swept[world.merchant].reservations_expired == 1 and swept[world.fee].reservations_expired == 0
    assert swept[idle] == SweepOutcome(0, 0)
    again = await recover_accounts(owner, redis_client, scripts, world.hot, MissingLegs(), grace_ms=0)
    assert all(outcome == SweepOutcome(0, 0) for outcome in again.values())
    await drain(owner, redis_client, world.hot)
    async with pool.acquire() as conn:
        await check_ledger(conn, world.all)


async def test_hot_debit_refused_beyond_projected_balance(pool: asyncpg.Pool, redis_client: aioredis.Redis,
                                                          owner: asyncpg.Connection, sink: RedisHotLegSink,
                                                          booker: Booker) -> None:
    world = await open_world(pool, customers=1, owner=owner)
    await sink.hot.refresh()
    await pay(booker, world, world.customers[0], 10_000, 0)  # merchant projected 10_000, applied 0
    await refund(booker, world, world.customers[0], 6_000)  # covered by the pending credit
    with pytest.raises(InsufficientFunds):
        await refund(booker, world, world.customers[0], 4_001)
    st = await redis_client.hgetall(account_keys(world.merchant).state)
    assert int(st[b"reserved"]) == 0  # the refused debit left no reservation behind
    await refund(booker, world, world.customers[0], 4_000)
    await drain(owner, redis_client, world.hot)
    async with pool.acquire() as conn:
        await check_ledger(conn, world.all, floors={world.merchant: 0})
        assert await conn.fetchval("SELECT balance FROM accounts WHERE id = $1", world.merchant) == 0


async def test_rolled_back_transaction_releases_its_reservation(pool: asyncpg.Pool, redis_client: aioredis.Redis,
                                                                owner: asyncpg.Connection, sink: RedisHotLegSink,
                                                                booker: Booker) -> None:
    world = await open_world(pool, customers=1, owner=owner)
    await sink.hot.refresh()
    await pay(booker, world, world.customers[0], 1_000, 0)
    with pytest.raises(RuntimeError):
        async with booker.transaction() as tx:
            await tx.post(build_entry("REFUND_WALLET", new_txn_no(), today(), "CNY",
                                      {"merchant_pending": world.merchant, "fee_income": world.fee,
                                       "customer_wallet": world.customers[0]}, {"amount": 800, "fee": 0}))
            assert int(await redis_client.hget(account_keys(world.merchant).state, "reserved") or 0) == 800
            raise RuntimeError("request failed after posting")
    assert int(await redis_client.hget(account_keys(world.merchant).state, "reserved") or 0) == 0
    await refund(booker, world, world.customers[0], 1_000)  # the full amount is available again


async def test_a_flush_does_not_wait_for_bookings_in_flight_on_the_account(
        pool: asyncpg.Pool, redis_client: aioredis.Redis, owner: asyncpg.Connection, sink: RedisHotLegSink,
        booker: Booker) -> None:
    """Every booking with a leg on the hot account holds the foreign key's KEY SHARE lock on its row until
    it commits; the flusher's row lock must not wait for those (under load it did, for seconds)."""
    world = await open_world(pool, customers=2, owner=owner)
    await sink.hot.refresh()
    for _ in range(3):
        await pay(booker, world, world.customers[0], 1_000, 10)
    async with pool.acquire() as conn:
        in_flight = conn.transaction()
        await in_flight.start()
        try:
            tx = BookingTransaction(conn, None, booker.splits)  # no sink: its hot legs stay buffered
            await tx.post(build_entry("PAY_WALLET", new_txn_no(), today(), "CNY",
                                      {"customer_wallet": world.customers[1], "gateway_transit": world.transit,
                                       "merchant_pending": world.merchant, "fee_income": world.fee},
                                      {"amount": 500, "fee": 5}))
            await owner.execute("SET lock_timeout = '2s'")
            try:
                outcome = await flush_account(owner, redis_client, Scripts(redis_client), world.merchant, 100,
                                              FlushStats())
                if not outcome.loaded:  # the first call may only load the state
                    outcome = await flush_account(owner, redis_client, Scripts(redis_client), world.merchant, 100,
                                                  FlushStats())
            finally:
                await owner.execute("RESET lock_timeout")
            assert outcome.applied == 3  # flushed while the fourth booking is still open
        finally:
            await in_flight.rollback()
    await drain(owner, redis_client, world.hot)
    async with pool.acquire() as conn:
        await check_ledger(conn, world.all)
        assert await conn.fetchval("SELECT balance FROM accounts WHERE id = $1", world.merchant) == 3 * 990


async def test_a_smaller_batch_after_a_flusher_died_after_commit_never_counts_its_legs_twice(
        pool: asyncpg.Pool, redis_client: aioredis.Redis, owner: asyncpg.Connection, sink: RedisHotLegSink,
        booker: Booker) -> None:
    world = await open_world(pool, customers=1, owner=owner)
    await sink.hot.refresh()
    for _ in range(6):
        await pay(booker, world, world.customers[0], 1000, 10)
    scripts = Scripts(redis_client)
    keys = list(account_keys(world.merchant).all())
    await load_account(owner, redis_client, scripts, world.merchant)  # as a flusher's first round does
    # A flusher takes all 6, commits them in PostgreSQL and dies before its ack.
    head = await scripts.take(keys=keys, args=[6], client=redis_client)
    assert len(head[1::2]) == 6
    await apply_batch(owner, world.merchant, [parse_leg_member(m.decode()) for m in head[1::2]])
    async with pool.acquire() as conn:
        await redis_matches_pg(conn, redis_client, world.merchant)
        # The next flusher's batch is smaller (tuning changed): after each batch, Redis' applied + pending
        # is still what PostgreSQL has (setting applied to PostgreSQL's balance counted the rest twice).
        for _ in range(6):
            outcome = await flush_account(owner, redis_client, scripts, world.merchant, 1, FlushStats())
            assert (outcome.taken, outcome.applied) == (1, 0)
            await redis_matches_pg(conn, redis_client, world.merchant)
        assert await redis_client.zcard(account_keys(world.merchant).queue) == 0
        await pay(booker, world, world.customers[0], 1000, 10)
        await drain(owner, redis_client, world.hot)
        await redis_matches_pg(conn, redis_client, world.merchant)  # a normal batch sets it from PostgreSQL again
        await check_ledger(conn, world.all)
