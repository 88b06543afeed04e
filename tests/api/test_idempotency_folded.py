"""The payment's idempotency claim folded into its effect statement: same answers as a separate claim,
one round trip less. (The general replay/422/409 behaviour is in test_idempotency.py.)"""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from tests.api.conftest import Api, order_no


def _payment(customer: str, amount: int = 100, order: str | None = None) -> dict[str, object]:
    return {"merchant_order_no": order or order_no(), "amount": amount, "currency": "CNY", "method": "wallet",
            "customer_id": customer}


async def test_key_used_by_another_endpoint_is_422_for_a_payment_and_nothing_is_booked(api: Api) -> None:
    client = await api.merchant()
    customer = await api.funded_customer(client, 1000)
    key = uuid.uuid4().hex
    assert (await client.create_customer("ext-" + uuid.uuid4().hex, idempotency_key=key)).status == 201
    paid = await client.create_payment(_payment(customer), idempotency_key=key)
    assert paid.status == 422 and paid.error_code == "idempotency_key_reused"
    assert (await client.get_customer(customer)).body["balance"] == 1000


async def test_refusal_before_the_database_is_stored_and_replayed(api: Api) -> None:
    client = await api.merchant(currencies=["CNY"])
    customer = await api.funded_customer(client, 1000)
    body, key = {**_payment(customer), "currency": "USD"}, uuid.uuid4().hex
    first = await client.create_payment(body, idempotency_key=key)
    again = await client.create_payment(body, idempotency_key=key)
    assert first.status == again.status == 400 and again.replayed and not first.replayed
    other = await client.create_payment(_payment(customer), idempotency_key=key)
    assert other.status == 422


async def test_duplicate_order_under_a_new_key_is_409_and_stored(api: Api, pool: asyncpg.Pool) -> None:
    client = await api.merchant()
    customer = await api.funded_customer(client, 1000)
    order = order_no()
    first = await client.create_payment(_payment(customer, order=order))
    key = uuid.uuid4().hex
    dup = await client.create_payment(_payment(customer, order=order), idempotency_key=key)
    assert dup.status == 409 and dup.body["error"]["existing_id"] == first.body["id"]
    stored = await pool.fetchval("SELECT status_code FROM idempotency_keys WHERE merchant_id = $1 AND key = $2",
                                 client.merchant_id, key)
    assert stored == 409
    assert (await client.get_customer(customer)).body["balance"] == 900


async def test_concurrent_keys_each_pay_once_and_replays_agree(api: Api) -> None:
    client = await api.merchant()
    customer = await api.funded_customer(client, 10_000)
    client.retries_max = 8
    bodies = [(_payment(customer), uuid.uuid4().hex) for _ in range(10)]
    calls = [client.create_payment(body, idempotency_key=key) for body, key in bodies for _ in range(3)]
    results = await asyncio.gather(*calls)
    assert {r.status for r in results} == {201}
    by_key: dict[str, set[str]] = {}
    for (_, key), r in zip([b for b in bodies for _ in range(3)], results, strict=True):
        by_key.setdefault(key, set()).add(r.body["id"])
    assert all(len(ids) == 1 for ids in by_key.values()) and len(by_key) == 10
    assert (await client.get_customer(customer)).body["balance"] == 10_000 - 10 * 100
