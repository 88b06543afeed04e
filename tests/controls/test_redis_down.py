"""Redis unreachable: attempts no counted rule binds still pass (uncounted, repaired later); attempts a
limit or counting rule binds are refused as retryable, with nothing left behind."""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import asyncpg
import pytest
import redis.asyncio as aioredis

from engine.controls import store as control_store
from engine.controls.counters import Subject
from engine.controls.errors import ControlsUnavailable, LimitExceeded
from engine.controls.gate import Attempt, ControlGate
from engine.controls.limits import LimitRule
from engine.controls.orphans import reset_owed, sweep_orphans
from tests.conftest import Servers
from tests.controls.test_gate_limits import set_limits
from tests.factories import rand_id, today


@pytest.fixture
async def dead_redis() -> AsyncIterator[aioredis.Redis]:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = aioredis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5)
    yield client
    await client.aclose()


async def usage_rows(pool: asyncpg.Pool, merchant: str) -> int:
    """The merchant's usage that still counts (released rows may stay, owing a counter reset)."""
    async with pool.acquire() as conn:
        return int(await conn.fetchval("SELECT count(*) FROM limit_usage WHERE merchant_id = $1"
                                       " AND released_at IS NULL", merchant))


async def test_without_redis_unbound_attempts_pass_uncounted_and_bound_ones_are_refused(
        pool: asyncpg.Pool, dead_redis: aioredis.Redis) -> None:
    gate = ControlGate(pool, dead_redis, today=today, blocklist_secret="test", config_ttl_s=0.0)
    free, limited = rand_id("mch"), rand_id("mch")
    await set_limits(pool, limited, LimitRule("merchant", "daily", "*", "*", None, 100))
    admitted = await gate.admit(Attempt("payment", "channel", free, None, 100, "CNY"))
    assert admitted.record()["counted"] is False and await usage_rows(pool, free) == 1
    await admitted.release()
    assert await usage_rows(pool, free) == 0
    with pytest.raises(ControlsUnavailable) as refused:
        await gate.admit(Attempt("payment", "channel", limited, None, 100, "CNY"))
    assert refused.value.retryable and await usage_rows(pool, limited) == 0


async def test_stale_counters_are_dropped_and_rebuilt_before_the_next_check(pool: asyncpg.Pool,
                                                                            redis_client: aioredis.Redis) -> None:
    gate = ControlGate(pool, redis_client, today=today, blocklist_secret="test", config_ttl_s=0.0)
    merchant = rand_id("mch")
    await gate.admit(Attempt("payment", "channel", merchant, None, 400, "CNY"))  # counters loaded: 400
    # An admission another outage let through uncounted: its row is in PostgreSQL, not in the counters.
    missed = control_store.Usage(rand_id("adm"), merchant, None, "payment", "channel", "CNY", 500, today())
    async with pool.acquire() as conn:
        await control_store.insert_usage(conn, missed)
    assert gate.counters.mark_stale(missed, [Subject(merchant, None, ())])
    await set_limits(pool, merchant, LimitRule("merchant", "daily", "*", "*", 1_000, None))
    with pytest.raises(LimitExceeded) as over:
        await gate.admit(Attempt("payment", "channel", merchant, None, 101, "CNY"))
    assert over.value.used == 900
    await gate.admit(Attempt("payment", "channel", merchant, None, 100, "CNY"))


@pytest.fixture
async def redis_through_proxy(servers: Servers) -> AsyncIterator[tuple[aioredis.Redis, asyncio.subprocess.Process]]:
    """A client that reaches the session's Redis through a TCP proxy of its own process: killing the proxy
    cuts this client off while every other client goes on (a network fault between one process and Redis)."""
    url = urlsplit(servers.redis_url)
    target = ["--target-unix", url.path] if url.scheme == "unix" else ["--target", f"{url.hostname}:{url.port or 6379}"]
    proxy = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.delay_proxy", "--listen", "127.0.0.1:0", *target, "--delay-ms", "0",
        stdout=asyncio.subprocess.PIPE)
    try:
        assert proxy.stdout is not None
        line = (await asyncio.wait_for(proxy.stdout.readline(), 30)).decode()
        assert line.startswith("listening "), line
        host, port = line.split()[1].rsplit(":", 1)
        client = aioredis.Redis(host=host, port=int(port), db=int(url.path.rsplit("/", 1)[-1])
                                if url.scheme != "unix" and url.path.strip("/").isdigit() else 0,
                                password=url.password, socket_connect_timeout=0.5, socket_timeout=1.0)
        yield client, proxy
        await client.aclose()
    finally:
        if proxy.returncode is None:
            proxy.kill()
            await proxy.wait()


async def test_a_give_back_one_process_could_not_make_is_reset_for_every_process(
        pool: asyncpg.Pool, redis_client: aioredis.Redis,
        redis_through_proxy: tuple[aioredis.Redis, asyncio.subprocess.Process]) -> None:
    cut_off, proxy = redis_through_proxy
    gate_a = ControlGate(pool, cut_off, today=today, blocklist_secret="test", config_ttl_s=0.0)
    gate_b = ControlGate(pool, redis_client, today=today, blocklist_secret="test", config_ttl_s=0.0)
    merchant, customer = rand_id("mch"), rand_id("cus")
    await set_limits(pool, merchant, LimitRule("customer", "daily", "*", "*", None, 2))

    def attempt() -> Attempt:
        return Attempt("payment", "wallet", merchant, customer, 100, "CNY")

    abandoned = await gate_a.admit(attempt())  # counted in Redis: 1 of 2
    proxy.kill()  # process A loses Redis before its booking fails
    await proxy.wait()
    await abandoned.release()  # cannot reach Redis: PostgreSQL stops counting it, Redis still does
    async with pool.acquire() as conn:
        owed = await conn.fetchval("SELECT released_at IS NOT NULL AND counters_reset_at IS NULL"
                                   " FROM limit_usage WHERE id = $1", abandoned.id)
    assert owed is True  # kept as a counter reset owed, not deleted

    kept = await gate_b.admit(attempt())  # 2 of 2 in Redis, 1 of 2 in PostgreSQL
    with pytest.raises(LimitExceeded):  # over-counted in the other process, for now
        await gate_b.admit(attempt())
    assert await reset_owed(pool, gate_b.counters) >= 1  # what every process's orphan sweep runs
    second = await gate_b.admit(attempt())  # rebuilt from PostgreSQL: the abandoned one no longer counts
    with pytest.raises(LimitExceeded) as over:
        await gate_b.admit(attempt())
    assert over.value.used == 2
    async with pool.acquire() as conn:
        counting = await conn.fetch("SELECT id FROM limit_usage WHERE customer_id = $1 AND released_at IS NULL",
                                    customer)
    assert {r["id"] for r in counting} == {kept.id, second.id}


async def test_an_admission_let_through_uncounted_is_counted_by_every_process_once_redis_answers(
        pool: asyncpg.Pool, redis_client: aioredis.Redis, dead_redis: aioredis.Redis) -> None:
    cut_off = ControlGate(pool, dead_redis, today=today, blocklist_secret="test", config_ttl_s=0.0)
    other = ControlGate(pool, redis_client, today=today, blocklist_secret="test", config_ttl_s=0.0)
    merchant = rand_id("mch")
    await other.admit(Attempt("payment", "channel", merchant, None, 100, "CNY"))  # its counters loaded: 1
    uncounted = await cut_off.admit(Attempt("payment", "channel", merchant, None, 100, "CNY"))  # no rule binds
    assert uncounted.record()["counted"] is False
    async with pool.acquire() as conn:
        owed = await conn.fetchval("SELECT uncounted_at IS NOT NULL AND counters_reset_at IS NULL"
                                   " FROM limit_usage WHERE id = $1", uncounted.id)
    assert owed is True
    await set_limits(pool, merchant, LimitRule("merchant", "daily", "*", "*", None, 2))  # a limit comes later
    assert await reset_owed(pool, other.counters) >= 1  # the loop every process runs, once Redis answers
    with pytest.raises(LimitExceeded) as over:  # 2 of 2 already: the uncounted one counts everywhere now
        await other.admit(Attempt("payment", "channel", merchant, None, 100, "CNY"))
    assert over.value.used == 2

    await uncounted.release()  # never by a decrement: released, and its counters reset again
    async with pool.acquire() as conn:
        released = await conn.fetchval("SELECT released_at IS NOT NULL AND counters_reset_at IS NULL"
                                       " FROM limit_usage WHERE id = $1", uncounted.id)
    assert released is True
    assert await reset_owed(pool, other.counters) >= 1
    await other.admit(Attempt("payment", "channel", merchant, None, 100, "CNY"))  # 2 of 2
    with pytest.raises(LimitExceeded):
        await other.admit(Attempt("payment", "channel", merchant, None, 100, "CNY"))


async def test_an_uncounted_admission_released_later_owes_a_reset_again(
        pool: asyncpg.Pool, redis_client: aioredis.Redis, dead_redis: aioredis.Redis) -> None:
    cut_off = ControlGate(pool, dead_redis, today=today, blocklist_secret="test", config_ttl_s=0.0)
    other = ControlGate(pool, redis_client, today=today, blocklist_secret="test", config_ttl_s=0.0)
    merchant = rand_id("mch")
    owed_reset = "SELECT released_at IS NOT NULL, counters_reset_at IS NULL FROM limit_usage WHERE id = $1"

    # Released by the orphan sweep after its uncounted reset was settled: the counters count it since.
    orphan = await cut_off.admit(Attempt("payment", "channel", merchant, None, 100, "CNY", movement_id=rand_id("pay")))
    assert await reset_owed(pool, other.counters, settle_s=0) >= 1
    assert tuple(await pool.fetchrow(owed_reset, orphan.id)) == (False, False)
    await sweep_orphans(pool, grace_s=0)  # its payment never booked
    assert tuple(await pool.fetchrow(owed_reset, orphan.id)) == (True, True)

    # Released between a reset pass's read and its settling: the pass must not settle the release's reset.
    late = await cut_off.admit(Attempt("payment", "channel", merchant, None, 100, "CNY"))
    async with pool.acquire() as conn:
        read = [o for o in await control_store.resets_owed(conn, 1_000, 0) if o.usage.id == late.id]
    assert read and read[0].released_at is None
    await late.release()
    async with pool.acquire() as conn:
        await control_store.mark_reset(conn, read)
    assert tuple(await pool.fetchrow(owed_reset, late.id)) == (True, True)
