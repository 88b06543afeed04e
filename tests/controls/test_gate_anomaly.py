"""The amount-anomaly rule at the gate (real PostgreSQL and Redis) with a customer paying in two currencies.

Over HTTP a customer pays only in its wallet currency, so the two currencies are driven here at the gate:
a customer's history is kept per currency (amounts in minor units of different currencies do not compare),
in Redis and when rebuilt from PostgreSQL after Redis lost it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
import redis.asyncio as aioredis

from engine import keys
from engine.controls import store as control_store
from engine.controls.gate import Admission, Attempt, ControlGate
from engine.controls.limits import METHODS
from engine.controls.risk import RiskRule
from tests.factories import rand_id, today


@pytest.fixture
async def gate(pool: asyncpg.Pool, redis_client: aioredis.Redis) -> AsyncIterator[ControlGate]:
    yield ControlGate(pool, redis_client, today=today, blocklist_secret="test", config_ttl_s=0.0)


async def _five_times_the_average(pool: asyncpg.Pool, merchant: str) -> RiskRule:
    rule = RiskRule(rand_id("rr"), "5x average", "amount_anomaly", "review",
                    {"factor": 5.0, "basis": "average", "min_history": 3}, merchant)
    async with pool.acquire() as conn:
        await control_store.upsert_risk_rule(conn, rule, create=True)
    return rule


def _decision(admission: Admission, rule: RiskRule) -> str:
    return next(d.decision for d in admission.decisions if d.rule_id == rule.id)


async def _probe(gate: ControlGate, merchant: str, customer: str, rule: RiskRule,
                 amount: int, currency: str) -> str:
    """The rule's decision on an attempt, given back afterwards: the history stays as it was."""
    admission = await gate.admit(Attempt("payment", "wallet", merchant, customer, amount, currency))
    await admission.release()
    return _decision(admission, rule)


PROBES = [(500, "CNY", "allow"), (501, "CNY", "review"), (100_000, "USD", "allow"), (100_001, "USD", "review")]


async def test_amount_anomaly_compares_an_amount_only_with_the_history_in_its_currency(
        gate: ControlGate, pool: asyncpg.Pool, redis_client: aioredis.Redis) -> None:
    merchant, customer = rand_id("mch"), rand_id("cus")
    rule = await _five_times_the_average(pool, merchant)
    for _ in range(3):
        await gate.admit(Attempt("payment", "wallet", merchant, customer, 100, "CNY"))
    # Three small CNY payments are no USD history: a USD amount 200x their size is not unusual.
    first_usd = await gate.admit(Attempt("payment", "wallet", merchant, customer, 20_000, "USD"))
    assert _decision(first_usd, rule) == "allow"
    assert "USD history of 0" in next(d.reason for d in first_usd.decisions if d.rule_id == rule.id)
    for _ in range(2):
        await gate.admit(Attempt("payment", "wallet", merchant, customer, 20_000, "USD"))
    # CNY average 100, USD average 20 000: each currency against its own 5x, not a mix of both.
    decided = [(a, c, await _probe(gate, merchant, customer, rule, a, c)) for a, c, _ in PROBES]
    assert decided == PROBES
    lost = [key async for key in redis_client.scan_iter(
        match=keys.subject_keys(merchant, customer, today(), "CNY", METHODS).tag + ":*")]
    assert lost and await redis_client.delete(*lost) == len(lost)  # what a Redis restart takes
    # Rebuilt from the usage rows, each currency's history on its first attempt: the same decisions.
    rebuilt = [(a, c, await _probe(gate, merchant, customer, rule, a, c)) for a, c, _ in PROBES]
    assert rebuilt == PROBES
