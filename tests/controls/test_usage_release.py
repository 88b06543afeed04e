"""A channel payment closed before it was paid gives back the limit usage it counted, exactly once, and the
release survives failing: a release that raises stays owed until the release loop gives it back, and a close
while Redis is dead still gives the usage back once the counters are rebuilt. (Expiry: tests/expiry; voucher
failure, janitor expiry and success: tests/gateway.)"""

from __future__ import annotations

import asyncpg
import pytest

from engine import embedded
from engine.client import ApiResult, PayEngineClient
from engine.controls.usage_release import release_owed
from engine.services import SERVICES
from tests.api.conftest import Api
from tests.controls.conftest import Admin, PrivateWorld, pay

TWO_A_DAY = {"scope": "customer", "window": "daily", "method": "channel", "count_max": 2}


async def _limited_customer(api: Api) -> tuple[PayEngineClient, str]:
    client = await api.merchant()
    customer = await api.funded_customer(client, 0)
    await Admin(api).merchant_limits(client, TWO_A_DAY)
    return client, customer


async def _channel(client: PayEngineClient, customer: str) -> ApiResult:
    return await pay(client, customer, 500, "channel")


async def _two_then_refused(client: PayEngineClient, customer: str) -> list[str]:
    made = [await _channel(client, customer), await _channel(client, customer)]
    assert [r.status for r in made] == [201, 201], [r.body for r in made]
    refused = await _channel(client, customer)
    assert refused.status == 402 and refused.body["error"]["details"]["used"] == 2, refused.body
    return [r.body["id"] for r in made]


async def _owed(pool: asyncpg.Pool, payment_id: str) -> str | None:
    admission: str | None = await pool.fetchval("SELECT admission_id FROM usage_releases WHERE movement_id = $1",
                                                payment_id)
    return admission


async def _usage_rows(pool: asyncpg.Pool, customer: str) -> int:
    """The customer's usage that still counts (a released row may stay as a counter reset owed)."""
    rows: int = await pool.fetchval("SELECT count(*) FROM limit_usage WHERE customer_id = $1"
                                    " AND released_at IS NULL", customer)
    return rows


async def test_closed_payment_gives_its_usage_back_so_a_third_is_admitted(api: Api, pool: asyncpg.Pool) -> None:
    client, customer = await _limited_customer(api)
    first, _ = await _two_then_refused(client, customer)

    closed = await client.close_payment(first)
    assert closed.status == 200 and closed.body["status"] == "closed", closed.body
    assert (await _channel(client, customer)).status == 201
    over = await _channel(client, customer)
    assert over.status == 402 and over.body["error"]["details"]["used"] == 2
    assert await _owed(pool, first) is None
    assert await _usage_rows(pool, customer) == 2  # the closed payment's row is gone, the other two count


async def test_closing_twice_gives_back_once(api: Api, pool: asyncpg.Pool) -> None:
    client, customer = await _limited_customer(api)
    first, _ = await _two_then_refused(client, customer)

    assert (await client.close_payment(first)).status == 200
    again = await client.close_payment(first)
    assert again.status == 409, again.body
    keyed = [await client.close_payment(first, idempotency_key="close-" + first) for _ in range(2)]
    assert [r.status for r in keyed] == [409, 409]
    assert (await _channel(client, customer)).status == 201
    assert (await _channel(client, customer)).status == 402  # one given back, not two
    assert await _usage_rows(pool, customer) == 2


async def test_release_that_fails_stays_owed_and_the_release_loop_gives_it_back(
        private: PrivateWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    client, customer = await _limited_customer(private.api)
    first, _ = await _two_then_refused(client, customer)
    gate = private.api.app[SERVICES].gate

    async def broken(admission_id: str, *, by_reset: bool = False) -> bool:
        raise ConnectionResetError(f"lost the database while releasing {admission_id}")

    monkeypatch.setattr(gate, "release_admission", broken)
    assert (await client.close_payment(first)).status == 200  # the close stands; the release is owed
    monkeypatch.undo()
    controls = await Admin(private.api).controls_of(first)
    assert await _owed(private.pool, first) == controls["admission"]
    assert (await _channel(client, customer)).status == 402  # still counted

    await release_owed(private.pool, private.api.app[SERVICES].release_usage, grace_s=0, batch_max=100)
    assert await _owed(private.pool, first) is None
    assert (await _channel(client, customer)).status == 201
    assert await release_owed(private.pool, private.api.app[SERVICES].release_usage, grace_s=0, batch_max=100) == 0
    assert (await _channel(client, customer)).status == 402  # given back once


async def test_close_while_redis_is_dead_gives_the_usage_back_once_redis_is_back(private: PrivateWorld) -> None:
    client, customer = await _limited_customer(private.api)
    first, _ = await _two_then_refused(client, customer)

    embedded.stop_redis(private.redis_dir, kill=True)  # a crash: the counters die with it
    try:
        assert (await client.close_payment(first)).status == 200
    finally:
        embedded.wipe_redis_data(private.redis_dir)
        embedded.start_redis(private.redis_dir, appendonly=False)
    assert await _owed(private.pool, first) is None
    assert await _usage_rows(private.pool, customer) == 1
    assert (await _channel(client, customer)).status == 201
    assert (await _channel(client, customer)).status == 402
