"""Idempotency-Key: replay, mismatch, concurrency, stored refusals."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from engine.idempotency.store import delete_expired_idempotency_keys
from tests.api.conftest import Api, order_no


def _payment(customer: str, amount: int = 100) -> dict[str, object]:
    return {"merchant_order_no": order_no(), "amount": amount, "currency": "CNY", "method": "wallet",
            "customer_id": customer}


async def test_retry_with_same_key_and_body_replays_the_first_response(api: Api) -> None:
    client = await api.merchant()
    customer = await api.funded_customer(client, 1000)
    body, key = _payment(customer), uuid.uuid4().hex
    first = await client.create_payment(body, idempotency_key=key)
    again = await client.create_payment(body, idempotency_key=key)
    assert first.status == again.status == 201
    assert again.body == first.body and again.replayed and not first.replayed
    assert (await client.get_customer(customer)).body["balance"] == 900


async def test_same_key_with_another_body_is_422(api: Api) -> None:
    client = await api.merchant()
    customer = await api.funded_customer(client, 1000)
    key = uuid.uuid4().hex
    await client.create_payment(_payment(customer), idempotency_key=key)
    other = await client.create_payment(_payment(customer, 200), idempotency_key=key)
    assert other.status == 422 and other.body["error"]["type"] == "idempotency_error"
    assert (await client.get_customer(customer)).body["balance"] == 900


async def test_refusals_are_stored_and_replayed_too(api: Api) -> None:
    client = await api.merchant()
    customer = await api.funded_customer(client, 50)
    body, key = _payment(customer, 100), uuid.uuid4().hex
    first = await client.create_payment(body, idempotency_key=key)
    await client.topup(customer, 1000, "later")
    again = await client.create_payment(body, idempotency_key=key)
    assert first.status == again.status == 402 and again.replayed


async def test_concurrent_requests_with_one_key_run_once(api: Api) -> None:
    client = await api.merchant()
    customer = await api.funded_customer(client, 1000)
    body, key = _payment(customer), uuid.uuid4().hex
    client.retries_max = 0  # see the raw 409s instead of retrying them
    results = await asyncio.gather(*(client.create_payment(body, idempotency_key=key) for _ in range(20)))
    statuses = sorted(r.status for r in results)
    assert statuses.count(201) >= 1
    assert set(statuses) <= {201, 409}
    fresh = [r for r in results if r.status == 201 and not r.replayed]
    assert len(fresh) == 1
    assert all(r.error_code == "idempotency_key_in_use" for r in results if r.status == 409)
    assert (await client.get_customer(customer)).body["balance"] == 900


async def test_the_client_retries_in_flight_conflicts_until_it_gets_the_replay(api: Api) -> None:
    client = await api.merchant()
    customer = await api.funded_customer(client, 1000)
    client.retries_max = 8
    body, key = _payment(customer), uuid.uuid4().hex
    results = await asyncio.gather(*(client.create_payment(body, idempotency_key=key) for _ in range(10)))
    assert {r.status for r in results} == {201}
    assert len({r.body["id"] for r in results}) == 1


async def test_bad_keys_are_400_and_old_keys_are_cleaned_up(api: Api, pool: asyncpg.Pool) -> None:
    client = await api.merchant()
    customer = await api.funded_customer(client, 1000)
    too_long = await client.create_payment(_payment(customer), idempotency_key="k" * 256)
    assert too_long.status == 400 and too_long.body["error"]["param"] == "Idempotency-Key"
    key = uuid.uuid4().hex
    await client.create_payment(_payment(customer), idempotency_key=key)
    async with pool.acquire() as conn:
        await conn.execute("UPDATE idempotency_keys SET created_at = now() - interval '25 hours'"
                           " WHERE merchant_id = $1 AND key = $2", client.merchant_id, key)
        assert await delete_expired_idempotency_keys(conn, 24 * 3600, 1000) >= 1
        assert await conn.fetchval("SELECT count(*) FROM idempotency_keys WHERE key = $1", key) == 0
