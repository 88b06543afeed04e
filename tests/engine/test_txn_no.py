"""Transaction numbers: layout, monotonicity, and uniqueness across real processes."""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
from datetime import UTC, datetime, timedelta

import asyncpg

from engine.txn_no import NodeLease, TxnNoGenerator, parse_txn_no


def test_layout_parses_back() -> None:
    gen = TxnNoGenerator(system=7, environment=3, shard=12, node=4321)
    now = datetime(2026, 11, 22, 13, 45, 6, 789_000, tzinfo=UTC)
    txn = gen.next(now)
    assert len(txn) == 32 and txn.isdigit()
    parts = parse_txn_no(txn)
    assert (parts.day.isoformat(), parts.version, parts.system, parts.environment, parts.shard, parts.node) == (
        "2026-11-22", 1, 7, 3, 12, 4321)
    assert parts.ms_of_day == ((13 * 60 + 45) * 60 + 6) * 1000 + 789
    assert parts.counter == 0


def test_increasing_when_clock_steps_back_and_counter_overflows() -> None:
    gen = TxnNoGenerator(1, 1, 0, 1)
    t0 = datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC)
    first = gen.next(t0)
    back = gen.next(t0 - timedelta(seconds=5))
    assert back > first
    many = [gen.next(t0) for _ in range(1_000_005)]
    assert all(a < b for a, b in itertools.pairwise(many))
    assert parse_txn_no(many[-1]).ms_of_day == parse_txn_no(first).ms_of_day + 1


def _generate(node: int, count: int, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    gen = TxnNoGenerator(1, 1, 0, node)
    numbers = [gen.next(datetime.now(UTC)) for _ in range(count)]
    ordered = all(a < b for a, b in itertools.pairwise(numbers))
    out.put((node, ordered, numbers))


async def test_million_numbers_from_four_processes_with_leased_nodes_are_unique(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        leases = [await NodeLease.acquire(conn, 60) for _ in range(4)]
    try:
        assert len({lease.node_id for lease in leases}) == 4
        ctx = multiprocessing.get_context("spawn")
        queue: multiprocessing.Queue = ctx.Queue()  # type: ignore[type-arg]
        procs = [ctx.Process(target=_generate, args=(lease.node_id, 250_000, queue)) for lease in leases]
        for proc in procs:
            proc.start()
        results = [await asyncio.to_thread(queue.get, True, 120) for _ in procs]
        for proc in procs:
            proc.join(30)
        seen: set[str] = set()
        for node, ordered, numbers in results:
            assert ordered, f"node {node} sequence not increasing"
            assert all(parse_txn_no(n).node == node for n in numbers[:: 10_000])
            seen.update(numbers)
        assert len(seen) == 1_000_000
    finally:
        async with pool.acquire() as conn:
            for lease in leases:
                await lease.release(conn)


async def test_lease_is_exclusive_until_expired_and_renewable(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        a = await NodeLease.acquire(conn, 60)
        b = await NodeLease.acquire(conn, 60)
        assert a.node_id != b.node_id
        assert await a.renew(conn)
        await conn.execute("UPDATE node_leases SET expires_at = now() - interval '1 second' WHERE node_id = $1",
                           a.node_id)
        c = await NodeLease.acquire(conn, 60)
        assert c.node_id == a.node_id  # the expired id is reused...
        assert not await a.renew(conn)  # ...and the old holder learns it lost it
        await b.release(conn)
        await c.release(conn)
