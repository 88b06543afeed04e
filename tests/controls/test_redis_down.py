"""Redis unreachable: attempts no counted rule binds still pass (uncounted, repaired later); attempts a
limit or counting rule binds are refused as retryable, with nothing left behind."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import asyncpg
import pytest
import redis.asyncio as aioredis

from engine.controls import Attempt, ControlGate, ControlsUnavailable, LimitExceeded
from engine.controls import store as control_store
from engine.controls.counters import Subject
from engine.controls.limits import LimitRule
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
    async with pool.acquire() as conn:
        return int(await conn.fetchval("SELECT count(*) FROM limit_usage WHERE merchant_id = $1", merchant))


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
