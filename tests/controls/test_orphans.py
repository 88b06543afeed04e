"""Usage admitted for a movement that never booked (the process died between the gate's admission and the
booking) is given back by the orphan sweep; usage whose movement booked never is.

The crash is made for real at that point: the live app's gate admits a payment (usage row committed, Redis
counters counted), and then nothing books and nothing releases it, as when the process dies there."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

import asyncpg
import pytest
from prometheus_client import REGISTRY

from engine import keys
from engine.client import PayEngineClient
from engine.controls.errors import AdmissionReleased
from engine.controls.gate import Admission, Attempt
from engine.controls.limits import METHODS
from engine.controls.orphans import reset_owed, sweep_orphans
from engine.keys import PAYMENT, new_id
from engine.services import SERVICES
from tests.api.conftest import AdminHttp
from tests.controls.conftest import PrivateWorld, pay

DAILY_MAX = 1_000


def _released_metric() -> float:
    return REGISTRY.get_sample_value("payengine_limit_usage_orphans_released_total", {"kind": "payment"}) or 0.0


async def _limited_customer(world: PrivateWorld) -> tuple[PayEngineClient, str]:
    client = await world.api.merchant()
    customer = await world.api.funded_customer(client, 10_000)
    reply = await AdminHttp(world.api).call("PUT", f"/admin/merchants/{client.merchant_id}/limits", {"limits": [
        {"scope": "customer", "window": "daily", "method": "wallet", "amount_max": DAILY_MAX}]})
    assert reply.status == 200, reply.body
    return client, customer


async def _crash_after_admit(world: PrivateWorld, client: PayEngineClient, customer: str, amount: int) -> Admission:
    """What a payment request leaves behind when its process dies right after the gate admitted it."""
    return await world.api.app[SERVICES].gate.admit(Attempt("payment", "wallet", client.merchant_id, customer, amount,
                                                            "CNY", movement_id=new_id(PAYMENT)))


async def _sweep(world: PrivateWorld) -> int:
    released = await sweep_orphans(world.pool, grace_s=0)
    await reset_owed(world.pool, world.api.app[SERVICES].gate.counters, settle_s=0)  # as the reset loop does next
    return released


async def _usage(pool: asyncpg.Pool, customer: str) -> dict[str, Any]:
    rows = await pool.fetch("SELECT id, movement_id, amount, released_at IS NOT NULL AS released,"
                            " counters_reset_at IS NOT NULL AS reset FROM limit_usage WHERE customer_id = $1", customer)
    return {r["id"]: dict(r) for r in rows}


async def _counted(world: PrivateWorld, client: PayEngineClient, customer: str, admission: Admission) -> int:
    """The customer's daily wallet amount as the Redis counter holds it now (the admission's day)."""
    day = date.fromisoformat(str(admission.record()["accounting_date"]))
    k = keys.subject_keys(client.merchant_id, customer, day, "CNY", METHODS)
    return int(await world.redis.hget(k.day, keys.counter_field("CNY", "wallet", "a")) or 0)


async def _booked(pool: asyncpg.Pool, customer: str) -> int:
    total = await pool.fetchval("SELECT coalesce(sum(amount), 0) FROM payments WHERE customer_id = $1"
                                " AND status = 'succeeded'", customer)
    return int(total)


async def test_usage_of_a_payment_that_never_booked_is_given_back_and_booked_usage_stays(
        private: PrivateWorld) -> None:
    client, customer = await _limited_customer(private)
    assert (await pay(client, customer, 300)).status == 201
    orphan = await _crash_after_admit(private, client, customer, 500)
    refused = await pay(client, customer, 300)  # falsely limited: 300 booked + 500 that never booked
    assert refused.status == 402 and refused.error_code == "limit_exceeded", refused.body
    assert refused.body["error"]["details"]["used"] == 800

    before = _released_metric()
    assert await _sweep(private) == 1
    assert _released_metric() == before + 1
    usage = await _usage(private.pool, customer)
    assert usage[orphan.id]["released"] and usage[orphan.id]["reset"]
    assert [u["released"] for i, u in usage.items() if i != orphan.id] == [False]  # the booked payment's row

    assert (await pay(client, customer, 300)).status == 201
    over = await pay(client, customer, 500)
    assert over.status == 402 and over.body["error"]["details"]["used"] == 600, over.body
    assert (await pay(client, customer, 400)).status == 201
    assert await _booked(private.pool, customer) == DAILY_MAX == await _counted(private, client, customer, orphan)
    assert await _sweep(private) == 0  # booked payments are never released
    assert not any(u["released"] for i, u in (await _usage(private.pool, customer)).items() if i != orphan.id)


async def test_a_booking_after_the_sweep_released_its_admission_does_not_happen(private: PrivateWorld) -> None:
    client, customer = await _limited_customer(private)
    late = await _crash_after_admit(private, client, customer, 700)  # a request that hung past the grace
    assert await _sweep(private) == 1
    async with private.pool.acquire() as conn, conn.transaction():
        with pytest.raises(AdmissionReleased):
            await late.claim(conn)
    await late.release()  # the failed booking gives back: nothing left to give, the counters stay exact
    assert (await pay(client, customer, DAILY_MAX)).status == 201
    assert await _counted(private, client, customer, late) == DAILY_MAX == await _booked(private.pool, customer)


async def test_a_row_claimed_by_a_booking_in_flight_is_not_released(private: PrivateWorld) -> None:
    client, customer = await _limited_customer(private)
    slow = await _crash_after_admit(private, client, customer, 200)
    async with private.pool.acquire() as conn, conn.transaction():
        await slow.claim(conn)  # the booking transaction holds the row
        with pytest.raises(asyncpg.LockNotAvailableError):
            await _sweep(private)
    assert not (await _usage(private.pool, customer))[slow.id]["released"]
    await slow.release()  # the booking failed after all: the ordinary release gives it back


async def test_the_engine_runs_the_orphan_sweep_in_the_background(private: PrivateWorld) -> None:
    assert "controls-sweep-orphans" in {task.get_name() for task in asyncio.all_tasks()}
