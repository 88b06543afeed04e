"""The gate on its own (real PostgreSQL and Redis): limits per window and scope, counted atomically."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import date, timedelta

import asyncpg
import pytest
import redis.asyncio as aioredis

from engine import keys
from engine.controls import store as control_store
from engine.controls.counters import Counted, Subject
from engine.controls.errors import LimitExceeded, RiskDeclined
from engine.controls.gate import Attempt, Booking, ControlGate
from engine.controls.limits import METHODS, LimitRule
from engine.controls.orphans import reset_owed
from engine.controls.risk import RiskRule
from engine.logs import JsonFormatter
from tests.factories import rand_id, today


@pytest.fixture
async def gate(pool: asyncpg.Pool, redis_client: aioredis.Redis) -> AsyncIterator[ControlGate]:
    yield ControlGate(pool, redis_client, today=today, blocklist_secret="test", config_ttl_s=0.0)


async def set_limits(pool: asyncpg.Pool, merchant_id: str, *rules: LimitRule) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await control_store.replace_limit_rules(conn, merchant_id, list(rules))


def attempt(merchant: str, customer: str | None, amount: int, method: str = "wallet") -> Attempt:
    return Attempt("payment", method, merchant, customer, amount, "CNY")


async def test_single_limit_refuses_a_larger_amount_and_counts_nothing(gate: ControlGate,
                                                                       pool: asyncpg.Pool) -> None:
    merchant, customer = rand_id("mch"), rand_id("cus")
    await set_limits(pool, merchant, LimitRule("customer", "single", "wallet", "*", 1000, None),
                     LimitRule("customer", "daily", "*", "*", None, 1))
    with pytest.raises(LimitExceeded) as refused:
        await gate.admit(attempt(merchant, customer, 1001))
    assert refused.value.details() | {} == {"scope": "customer", "window": "single", "metric": "amount",
                                            "method": "wallet", "currency": "CNY", "limit": 1000, "used": 0,
                                            "attempted": 1001}
    admitted = await gate.admit(attempt(merchant, customer, 1000))  # the refusal counted nothing
    assert admitted.record()["accounting_date"] == today().isoformat()


async def test_daily_amount_and_count_per_customer_and_merchant(gate: ControlGate, pool: asyncpg.Pool) -> None:
    merchant, alice, bob = rand_id("mch"), rand_id("cus"), rand_id("cus")
    await set_limits(pool, merchant, LimitRule("customer", "daily", "*", "*", 1000, None),
                     LimitRule("merchant", "daily", "wallet", "*", None, 3))
    await gate.admit(attempt(merchant, alice, 600))
    with pytest.raises(LimitExceeded) as over:
        await gate.admit(attempt(merchant, alice, 401))
    assert (over.value.scope, over.value.window, over.value.metric, over.value.used) == ("customer", "daily",
                                                                                        "amount", 600)
    await gate.admit(attempt(merchant, alice, 400))
    await gate.admit(attempt(merchant, bob, 10))
    with pytest.raises(LimitExceeded) as count:
        await gate.admit(attempt(merchant, bob, 10))
    assert (count.value.scope, count.value.metric, count.value.limit, count.value.used) == ("merchant", "count",
                                                                                          3, 3)
    await gate.admit(attempt(merchant, None, 10, "channel"))  # the merchant count limit is for wallet only


async def test_release_gives_usage_back(gate: ControlGate, pool: asyncpg.Pool) -> None:
    merchant, customer = rand_id("mch"), rand_id("cus")
    await set_limits(pool, merchant, LimitRule("customer", "monthly", "*", "*", 1000, 1))
    first = await gate.admit(attempt(merchant, customer, 1000))
    await first.release()
    await first.release()  # idempotent
    second = await gate.admit(attempt(merchant, customer, 1000))
    async with pool.acquire() as conn:
        rows = await conn.fetchval("SELECT count(*) FROM limit_usage WHERE merchant_id = $1", merchant)
    assert rows == 1 and second.id != first.id


async def test_booking_gives_usage_back_only_when_it_failed_before_its_last_step(gate: ControlGate,
                                                                                 pool: asyncpg.Pool) -> None:
    merchant, customer = rand_id("mch"), rand_id("cus")
    await set_limits(pool, merchant, LimitRule("customer", "daily", "*", "*", None, 1))
    refused = await gate.admit(attempt(merchant, customer, 100))
    with pytest.raises(RuntimeError):
        async with Booking(refused), pool.acquire() as conn, conn.transaction():
            await refused.claim(conn)
            raise RuntimeError("e.g. insufficient funds: rolled back")
    booked = await gate.admit(attempt(merchant, customer, 100))  # the refused booking gave its usage back
    with pytest.raises(asyncio.CancelledError):
        async with Booking(booked) as booking:
            async with pool.acquire() as conn, conn.transaction():
                await booked.claim(conn)
                booking.reached_last_step()
            raise asyncio.CancelledError  # e.g. the request was cancelled during post-commit work
    with pytest.raises(LimitExceeded) as full:
        await gate.admit(attempt(merchant, customer, 100))
    assert full.value.used == 1
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT id FROM limit_usage WHERE merchant_id = $1", merchant)
    assert [r["id"] for r in rows] == [booked.id]
    with pytest.raises(RuntimeError):
        async with Booking(None):  # no gate: nothing to give back, the error passes through
            raise RuntimeError("no gate")


async def test_concurrent_admissions_never_pass_the_daily_limit(gate: ControlGate, pool: asyncpg.Pool) -> None:
    merchant, customer = rand_id("mch"), rand_id("cus")
    await set_limits(pool, merchant, LimitRule("customer", "daily", "*", "*", 50 * 100, None))
    results = await asyncio.gather(*(gate.admit(attempt(merchant, customer, 100)) for _ in range(200)),
                                   return_exceptions=True)
    assert sum(1 for r in results if not isinstance(r, BaseException)) == 50
    assert all(isinstance(r, LimitExceeded) for r in results if isinstance(r, BaseException))


async def test_limits_hold_after_redis_lost_the_counters(gate: ControlGate, pool: asyncpg.Pool,
                                                         redis_client: aioredis.Redis) -> None:
    merchant, customer = rand_id("mch"), rand_id("cus")
    await set_limits(pool, merchant, LimitRule("customer", "daily", "*", "*", 1000, None))
    await gate.admit(attempt(merchant, customer, 700))
    async for key in redis_client.scan_iter(match=keys.controls_keys_pattern(), count=1000):
        await redis_client.delete(key)
    with pytest.raises(LimitExceeded) as over:
        await gate.admit(attempt(merchant, customer, 301))
    assert over.value.used == 700
    await gate.admit(attempt(merchant, customer, 300))


async def test_blocked_instrument_is_declined_before_anything_is_counted(
        gate: ControlGate, pool: asyncpg.Pool, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="engine.controls.gate")
    merchant, customer = rand_id("mch"), rand_id("cus")
    rule = RiskRule(rand_id("rr"), "cards", "blocklist", "deny", {"list": "instrument"}, merchant)
    async with pool.acquire() as conn, conn.transaction():
        await control_store.upsert_risk_rule(conn, rule, create=True)
        await control_store.add_blocklist(conn, "instrument", gate.digest("instrument", "6222021234567890"), None)
    card = Attempt("payout", "payout", merchant, customer, 500, "CNY", instrument="6222021234567890")
    with pytest.raises(RiskDeclined) as declined:
        await gate.admit(card)
    assert (declined.value.rule, declined.value.kind) == (rule.id, "blocklist")
    other = await gate.admit(Attempt("payout", "payout", merchant, customer, 500, "CNY", instrument="6222029999"))
    assert [d.decision for d in other.decisions] == ["allow"]
    async with pool.acquire() as conn:
        stored = await conn.fetchval("SELECT count(*) FROM risk_blocklist WHERE digest LIKE '%6222%'")
        rows = await conn.fetchval("SELECT count(*) FROM limit_usage WHERE merchant_id = $1", merchant)
    assert stored == 0 and rows == 1  # no card number stored; the declined attempt counted nothing
    logged = [JsonFormatter().format(r) for r in caplog.records if r.getMessage() == "attempt declined by risk rule"]
    assert len(logged) == 1 and rule.id in logged[0] and merchant in logged[0]
    assert "6222" not in logged[0] and gate.digest("instrument", "6222021234567890") not in logged[0]


async def test_usage_rows_past_every_window_are_pruned(pool: asyncpg.Pool) -> None:
    merchant = rand_id("mch")
    old, recent = today() - timedelta(days=200), today()
    async with pool.acquire() as conn:
        for i, day in enumerate((old, old, recent)):
            await control_store.insert_usage(conn, control_store.Usage(f"{merchant}-{i}", merchant, None, "payment",
                                                                       "channel", "CNY", 10, day))
        while await control_store.delete_old_usage(conn, today() - timedelta(days=150), 1):
            pass
        left = await conn.fetchval("SELECT count(*) FROM limit_usage WHERE merchant_id = $1", merchant)
    assert left == 1


async def test_an_admission_is_given_back_by_id_once(gate: ControlGate, pool: asyncpg.Pool) -> None:
    merchant, customer = rand_id("mch"), rand_id("cus")
    await set_limits(pool, merchant, LimitRule("customer", "daily", "payout", "*", 1_000, None),
                     LimitRule("merchant", "monthly", "*", "*", None, 1))
    payout = await gate.admit(Attempt("payout", "payout", merchant, customer, 1_000, "CNY", instrument="6222"))
    admission_id = str(payout.record()["admission"])
    given_back = await asyncio.gather(*(gate.release_admission(admission_id) for _ in range(5)))
    assert sorted(given_back) == [False, False, False, False, True]
    await gate.admit(Attempt("payout", "payout", merchant, customer, 1_000, "CNY", instrument="6222"))
    with pytest.raises(LimitExceeded):
        await gate.admit(Attempt("payout", "payout", merchant, customer, 1, "CNY", instrument="6222"))


async def test_a_new_accounting_day_resets_daily_but_not_monthly_usage_even_after_a_rebuild(
        pool: asyncpg.Pool, redis_client: aioredis.Redis) -> None:
    day = [date(2031, 5, 10)]  # the accounting date the gate sees (engine/dayend's open date in the app)
    gate = ControlGate(pool, redis_client, today=lambda: day[0], blocklist_secret="test", config_ttl_s=0.0)
    merchant, customer = rand_id("mch"), rand_id("cus")
    await set_limits(pool, merchant, LimitRule("customer", "daily", "*", "*", 600, None),
                     LimitRule("customer", "monthly", "*", "*", 1_000, None))
    await gate.admit(attempt(merchant, customer, 600))
    with pytest.raises(LimitExceeded):
        await gate.admit(attempt(merchant, customer, 1))
    day[0] = date(2031, 5, 11)
    await gate.admit(attempt(merchant, customer, 300))
    for key in keys.subject_keys(merchant, customer, day[0], "CNY", METHODS).all():
        await redis_client.delete(key)
    with pytest.raises(LimitExceeded) as monthly:
        await gate.admit(attempt(merchant, customer, 101))
    assert (monthly.value.window, monthly.value.used) == ("monthly", 900)
    day[0] = date(2031, 6, 1)
    await gate.admit(attempt(merchant, customer, 600))


async def test_script_calls_are_idempotent_per_attempt(gate: ControlGate, pool: asyncpg.Pool) -> None:
    """redis-py retries a call whose answer was lost; the first run may have happened."""
    merchant = rand_id("mch")
    rule = LimitRule("merchant", "daily", "*", "*", 1_000, None)
    await set_limits(pool, merchant, rule)
    subject = [Subject(merchant, None, (rule,))]
    usage = control_store.Usage(rand_id("adm"), merchant, None, "payment", "channel", "CNY", 600, today())
    never_checked = control_store.Usage(rand_id("adm"), merchant, None, "payment", "channel", "CNY", 300, today())
    async with pool.acquire() as conn:
        await control_store.insert_usage(conn, usage)
    for _ in range(2):  # the same attempt checked twice counts once
        assert isinstance((await gate.counters.check(usage, subject, 0))[0], Counted)
    await gate.counters.undo(never_checked, subject)  # it never counted: nothing to give back
    with pytest.raises(LimitExceeded) as over:
        await gate.admit(Attempt("payment", "channel", merchant, None, 401, "CNY"))
    assert over.value.used == 600
    for _ in range(2):
        await gate.counters.release(usage, subject, forget_attempt=True)
    async with pool.acquire() as conn:
        await control_store.delete_usage(conn, usage.id)
    admitted = await gate.admit(Attempt("payment", "channel", merchant, None, 1_000, "CNY"))  # given back once
    with pytest.raises(LimitExceeded) as full:
        await gate.admit(Attempt("payment", "channel", merchant, None, 1, "CNY"))
    assert full.value.used == 1_000 and admitted.counted


async def test_a_retried_release_long_after_a_give_back_that_died_before_its_commit_gives_back_once(
        gate: ControlGate, pool: asyncpg.Pool, redis_client: aioredis.Redis) -> None:
    merchant, customer = rand_id("mch"), rand_id("cus")
    await set_limits(pool, merchant, LimitRule("customer", "daily", "*", "*", None, 2))
    first = await gate.admit(attempt(merchant, customer, 100))
    await gate.admit(attempt(merchant, customer, 100))  # 2 of 2
    # An earlier release gave the counters back, then its process died before its commit: PostgreSQL still
    # counts the admission. Its release markers are gone, as they are once their TTL has passed.
    async with pool.acquire() as conn:
        usage = await control_store.lock_usage(conn, first.id)
    assert usage is not None
    subjects = [Subject(merchant, None, ()), Subject(merchant, customer, ())]
    assert await gate.counters.release(usage, subjects, forget_attempt=False)
    await redis_client.delete(*(keys.release_marker(s.keys(usage), usage.id) for s in subjects))

    # The retry, as the release loop makes it. A decrement could not tell it was given back already (and
    # would let a third admission through); a reset rebuilds from PostgreSQL, which counts it until now.
    assert await gate.release_admission(first.id, by_reset=True)
    assert not await gate.release_admission(first.id, by_reset=True)  # nothing left to give back
    await gate.admit(attempt(merchant, customer, 100))
    with pytest.raises(LimitExceeded) as over:
        await gate.admit(attempt(merchant, customer, 100))
    assert over.value.used == 2
    owed_reset = "SELECT counters_reset_at IS NULL FROM limit_usage WHERE id = $1"
    assert await pool.fetchval(owed_reset, first.id) is True  # reset at once, and again after the settle time
    assert await reset_owed(pool, gate.counters, settle_s=3600) >= 1  # too early to settle
    assert await pool.fetchval(owed_reset, first.id) is True
    assert await reset_owed(pool, gate.counters, settle_s=0) >= 1
    assert await pool.fetchval(owed_reset, first.id) is False
    with pytest.raises(LimitExceeded):  # the counters rebuilt once more: still exactly at the limit
        await gate.admit(attempt(merchant, customer, 100))
