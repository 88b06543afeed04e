"""The recovery sweep puts back legs Redis lost, and only those: a leg between its commit and its
after-commit enqueue is on its way, not lost, however long its booking took."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import asyncpg
import redis.asyncio as aioredis
from prometheus_client import REGISTRY

from accounts.journal import EntryDraft
from accounts.store import PostedEntry
from buffer.keys import account_keys
from buffer.recovery import MissingLegs, recover_accounts
from buffer.scripts import Scripts
from buffer.sink import RedisHotLegSink
from engine.booking import Booker
from tests.buffer.world import World, check_ledger, drain, open_world, pay, redis_matches_pg, refund

GRACE_MS = 300


class HeldSink:
    """The real sink, except that the after-commit enqueue waits for ``go`` (or never happens when
    ``lose`` is set: the process died between commit and enqueue)."""

    def __init__(self, sink: RedisHotLegSink, lose: bool = False) -> None:
        self.sink = sink
        self.lose = lose
        self.go = asyncio.Event()

    async def reserve(self, entry: EntryDraft) -> object:
        return await self.sink.reserve(entry)

    async def release(self, reservation: object) -> None:
        await self.sink.release(reservation)

    async def enqueue(self, entries: Sequence[PostedEntry], reservations: Sequence[object]) -> None:
        if self.lose:
            return
        await self.go.wait()
        await self.sink.enqueue(entries, reservations)


async def _book_slowly(pool: asyncpg.Pool, booker: Booker, world: World) -> asyncio.Task[PostedEntry]:
    """A wallet payment whose posting statement waits on the customer's wallet row (locked by another
    transaction, as under load) for longer than the grace: its legs are stamped when the statement
    starts and committed when it ends, so they are 'older than the grace' the moment anyone sees them."""
    async with pool.acquire() as locker:
        tx = locker.transaction()
        await tx.start()
        await locker.execute("SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE", world.customers[0])
        booking = asyncio.create_task(pay(booker, world, world.customers[0], 1000, 10))
        await asyncio.sleep(GRACE_MS * 2 / 1000)
        await tx.rollback()
    return booking


def _recovered(account_ids: Sequence[str]) -> float:
    """payengine_buffer_recovery_reenqueued_total over these accounts, as /metrics shows it."""
    return sum(REGISTRY.get_sample_value("payengine_buffer_recovery_reenqueued_total", {"account": a}) or 0
               for a in account_ids)


def _hot_legs(posted: PostedEntry) -> dict[str, int]:
    counts: dict[str, int] = {}
    for leg in posted.buffered_legs:
        counts[leg.account_id] = counts.get(leg.account_id, 0) + 1
    return counts


async def test_sweep_leaves_legs_committed_but_not_yet_enqueued_alone(
        pool: asyncpg.Pool, redis_client: aioredis.Redis, owner: asyncpg.Connection, sink: RedisHotLegSink) -> None:
    world = await open_world(pool, customers=1, owner=owner)
    await sink.hot.refresh()
    held = HeldSink(sink)
    booking = await _book_slowly(pool, Booker(pool, held), world)
    await asyncio.sleep(0.05)  # the statement ends and commits; its enqueue waits for `go`
    assert not booking.done()
    scripts = Scripts(redis_client)
    missing = MissingLegs()
    counted_before = _recovered(world.hot)
    # The sweep runs inside the window between the commit and the enqueue: legs past the grace by their
    # insert time, in PostgreSQL, absent from Redis. It must not take them for lost.
    swept = await recover_accounts(owner, redis_client, scripts, world.hot, missing, grace_ms=GRACE_MS)
    assert {a: o.reenqueued for a, o in swept.items()} == {a: 0 for a in world.hot}
    held.go.set()
    posted = await booking
    assert {a: o.missing for a, o in swept.items() if o.missing} == _hot_legs(posted)  # seen missing, once
    await asyncio.sleep(GRACE_MS / 1000 + 0.05)
    again = await recover_accounts(owner, redis_client, scripts, world.hot, missing, grace_ms=GRACE_MS)
    assert all(o.reenqueued == 0 and o.missing == 0 for o in again.values())
    assert _recovered(world.hot) == counted_before
    for account_id in world.hot:
        await redis_matches_pg(owner, redis_client, account_id)
    await drain(owner, redis_client, world.hot)
    async with pool.acquire() as conn:
        await check_ledger(conn, world.all)
        assert await conn.fetchval("SELECT count(*) FROM journal_legs WHERE txn_no = $1 AND status = 'applied'",
                                   posted.txn_no) == len(posted.legs)


async def test_sweep_puts_back_a_leg_lost_between_commit_and_enqueue_once_the_grace_has_passed(
        pool: asyncpg.Pool, redis_client: aioredis.Redis, owner: asyncpg.Connection, sink: RedisHotLegSink) -> None:
    world = await open_world(pool, customers=1, owner=owner)
    await sink.hot.refresh()
    booking = await _book_slowly(pool, Booker(pool, HeldSink(sink, lose=True)), world)
    posted = await booking  # committed; its enqueue never happened
    scripts = Scripts(redis_client)
    missing = MissingLegs()
    counted_before = _recovered(world.hot)
    lost = _hot_legs(posted)
    assert sum(lost.values()) == 4  # transit (debit and credit), merchant, fee
    first = await recover_accounts(owner, redis_client, scripts, world.hot, missing, grace_ms=GRACE_MS)
    assert {a: o.reenqueued for a, o in first.items() if o.reenqueued} == {}
    assert {a: o.missing for a, o in first.items() if o.missing} == lost
    await asyncio.sleep(GRACE_MS / 1000 + 0.05)
    second = await recover_accounts(owner, redis_client, scripts, world.hot, missing, grace_ms=GRACE_MS)
    assert {a: o.reenqueued for a, o in second.items() if o.reenqueued} == lost
    assert _recovered(world.hot) == counted_before + 4
    third = await recover_accounts(owner, redis_client, scripts, world.hot, missing, grace_ms=GRACE_MS)
    assert all(o.reenqueued == 0 and o.missing == 0 for o in third.values())
    for account_id in world.hot:
        assert await redis_client.zcard(account_keys(account_id).queue) == lost[account_id]
        await redis_matches_pg(owner, redis_client, account_id)
    await drain(owner, redis_client, world.hot)
    async with pool.acquire() as conn:
        await check_ledger(conn, world.all)


async def test_reservations_outlive_a_sweep_that_has_not_yet_put_their_debits_back(
        pool: asyncpg.Pool, redis_client: aioredis.Redis, owner: asyncpg.Connection, sink: RedisHotLegSink) -> None:
    """A debit reserved and committed but never enqueued is held by its reservation until the sweep queues
    it: a reservation expiring in a sweep that only saw the leg missing would leave the debit neither
    reserved nor queued until the next one."""
    world = await open_world(pool, customers=1, owner=owner)
    await sink.hot.refresh()
    await pay(Booker(pool, sink), world, world.customers[0], 5000, 0)  # funds the merchant
    await drain(owner, redis_client, world.hot)
    refunded = await refund(Booker(pool, HeldSink(sink, lose=True)), world, world.customers[0], 300)
    assert await redis_client.hlen(account_keys(world.merchant).reservations) == 1
    scripts = Scripts(redis_client)
    missing = MissingLegs()
    await asyncio.sleep(GRACE_MS / 1000 + 0.05)
    first = await recover_accounts(owner, redis_client, scripts, world.hot, missing, grace_ms=GRACE_MS,
                                   reservation_ttl_ms=1)
    assert first[world.merchant].missing == 1 and first[world.merchant].reservations_expired == 0
    assert await redis_client.hlen(account_keys(world.merchant).reservations) == 1
    await asyncio.sleep(GRACE_MS / 1000 + 0.05)
    second = await recover_accounts(owner, redis_client, scripts, world.hot, missing, grace_ms=GRACE_MS,
                                    reservation_ttl_ms=1)
    assert second[world.merchant].reenqueued == 1 and second[world.merchant].reservations_expired == 1
    await redis_matches_pg(owner, redis_client, world.merchant)
    await drain(owner, redis_client, world.hot)
    async with pool.acquire() as conn:
        await check_ledger(conn, world.all)
        assert await conn.fetchval("SELECT count(*) FROM journal_legs WHERE txn_no = $1 AND status = 'applied'",
                                   refunded.txn_no) == len(refunded.legs)
