"""Hypothesis stateful test: random postings, hot debits, flushes, flusher crashes after commit,
commits whose enqueue was lost, Redis wipes and recovery sweeps - invariants checked after each step.

Invariants (DESIGN.md), on this machine's own accounts (the database is shared):
- every balance equals the sum of its applied legs; applied legs carry seq 1..k with a running
  balance consistent line by line; the hot merchant's running balance is never below zero;
- projected (balance + buffered legs in PostgreSQL) equals what the clients were told was booked,
  and a refused operation changed nothing;
- Redis never counts money PostgreSQL does not have: cached applied + pending + legs Redis lost
  equals PostgreSQL's projected balance, and pending equals the sum of the queued legs.
Teardown drains everything and checks the whole ledger (all applied, balances exact).
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from accounts.errors import InsufficientFunds
from buffer.errors import HotBufferError
from buffer.flusher import FlushStats, flush_account
from buffer.keys import account_keys, parse_leg_member
from buffer.recovery import recover_account
from buffer.scripts import Scripts
from buffer.sink import RedisHotLegSink
from buffer.store import apply_batch
from buffer.tuning import BufferTuning, LiveTuning
from engine.booking import Booker
from tests.buffer.world import World, check_ledger, drain, open_world, pay, refund
from tests.conftest import Servers


class Env:
    """A private event loop with its own pool and Redis client (Hypothesis drives it synchronously)."""

    def __init__(self, database_url: str, redis_url: str) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)  # this thread's loop (asyncpg asks for the current one)
        self.database_url = database_url
        self.pool: asyncpg.Pool = self.run(asyncpg.create_pool(database_url, min_size=1, max_size=6))
        self.side: asyncpg.Pool = self.run(asyncpg.create_pool(database_url, min_size=1, max_size=2))
        self.redis = aioredis.Redis.from_url(redis_url, decode_responses=False)
        self.scripts = Scripts(self.redis)

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(self._in_loop(coro))

    @staticmethod
    async def _in_loop(coro: Any) -> Any:
        return await coro

    def close(self) -> None:
        self.run(self.redis.aclose())
        self.run(self.side.close())
        self.run(self.pool.close())
        self.loop.close()


def make_machine(env: Env) -> type[RuleBasedStateMachine]:
    class BufferMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.owner: asyncpg.Connection = env.run(asyncpg.connect(env.database_url))
            self.world: World = env.run(open_world(env.pool, customers=3, funds=10_000_000, owner=self.owner))
            self.sink = RedisHotLegSink(env.side, env.redis, LiveTuning(env.side, BufferTuning()))
            env.run(self.sink.start())
            self.booker = Booker(env.pool, self.sink)
            self.unbuffered = Booker(env.pool, None)  # a commit whose enqueue never happened
            self.merchant_net = 0

        @rule(customer=st.integers(0, 2), amount=st.integers(1, 5000), fee_pct=st.integers(0, 5),
              lost_enqueue=st.booleans())
        def payment(self, customer: int, amount: int, fee_pct: int, lost_enqueue: bool) -> None:
            fee = amount * fee_pct // 100
            booker = self.unbuffered if lost_enqueue else self.booker
            env.run(pay(booker, self.world, self.world.customers[customer], amount, fee))
            self.merchant_net += amount - fee

        @rule(customer=st.integers(0, 2), amount=st.integers(1, 8000))
        def hot_debit(self, customer: int, amount: int) -> None:
            try:
                env.run(refund(self.booker, self.world, self.world.customers[customer], amount))
                self.merchant_net -= amount
            except (InsufficientFunds, HotBufferError):
                pass  # refused: the invariants check it changed nothing

        @rule(which=st.integers(0, 2), batch=st.integers(1, 20))
        def flush(self, which: int, batch: int) -> None:
            env.run(flush_account(self.owner, env.redis, env.scripts, self.world.hot[which], batch, FlushStats()))

        @rule(which=st.integers(0, 2), batch=st.integers(1, 20))
        def flusher_dies_after_commit(self, which: int, batch: int) -> None:
            """Take and apply a batch in PostgreSQL, then 'die' before the Redis ack."""
            account_id = self.world.hot[which]
            head = env.run(env.scripts.take(keys=list(account_keys(account_id).all()), args=[batch],
                                            client=env.redis))
            members = [m.decode() for m in head[1::2]]
            if int(head[0]) and members:
                env.run(apply_batch(self.owner, account_id, [parse_leg_member(m) for m in members]))

        @rule()
        def redis_wiped(self) -> None:
            env.run(env.redis.delete(*[k for a in self.world.hot for k in account_keys(a).all()]))

        @rule()
        def recovery_sweep(self) -> None:
            for account_id in self.world.hot:
                env.run(recover_account(self.owner, env.redis, env.scripts, account_id, grace_ms=0))

        @invariant()
        def ledger_and_buffer_agree(self) -> None:
            env.run(self._check())

        async def _check(self) -> None:
            conn = self.owner
            for account_id in self.world.all:
                rows = await conn.fetch("SELECT seq, delta, balance_after FROM journal_legs"
                                        " WHERE account_id = $1 AND status = 'applied' ORDER BY seq", account_id)
                running = 0
                for expected, r in enumerate(rows, start=1):
                    running += r["delta"]
                    assert (r["seq"], r["balance_after"]) == (expected, running)
                    if account_id == self.world.merchant:
                        assert running >= 0
                assert await conn.fetchval("SELECT balance FROM accounts WHERE id = $1", account_id) == running
            for account_id in self.world.hot:
                balance = await conn.fetchval("SELECT balance FROM accounts WHERE id = $1", account_id)
                buffered = {f"{r['txn_no']}:{r['leg_no']}": r["delta"] for r in await conn.fetch(
                    "SELECT txn_no, leg_no, delta FROM journal_legs WHERE account_id = $1 AND status = 'buffered'",
                    account_id)}
                projected = balance + sum(buffered.values())
                if account_id == self.world.merchant:
                    assert projected == self.merchant_net
                keys = account_keys(account_id)
                state = await env.redis.hgetall(keys.state)
                if b"loaded" not in state:
                    continue
                queued = {m.decode(): int(v.split(b"|")[1]) for m, v in (await env.redis.hgetall(keys.legs)).items()}
                assert int(state.get(b"pending", b"0")) == sum(queued.values())
                lost = sum(d for m, d in buffered.items() if m not in queued)
                assert int(state[b"applied"]) + sum(queued.values()) + lost == projected
                assert int(state.get(b"reserved", b"0")) == 0  # nothing in flight between steps

        def teardown(self) -> None:
            try:
                env.run(drain(self.owner, env.redis, self.world.hot, batch_size=50))
                env.run(check_ledger(self.owner, self.world.all, floors={self.world.merchant: 0}))
                assert env.run(self.owner.fetchval("SELECT balance FROM accounts WHERE id = $1",
                                                   self.world.merchant)) == self.merchant_net
            finally:
                env.run(self.owner.close())

    return BufferMachine


@pytest.mark.slow
async def test_buffer_invariants_hold_under_random_operations(servers: Servers, pool: asyncpg.Pool) -> None:
    """(``pool`` only makes sure the database is migrated.)"""
    def run() -> None:
        env = Env(servers.database_url, servers.redis_url)
        try:
            run_state_machine_as_test(
                make_machine(env),
                settings=settings(max_examples=8, stateful_step_count=25, deadline=None,
                                  suppress_health_check=[HealthCheck.too_slow]),
            )
        finally:
            env.close()

    await asyncio.to_thread(run)
