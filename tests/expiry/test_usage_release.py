"""A channel payment that expires unpaid gives back the limit usage it counted: at once when the expiry
worker has the gate's release, and through the release loop when the process that closed it never released
(it died right after the close committed)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec

from engine.client import PayEngineClient
from engine.controls.usage_release import release_owed
from engine.payments.expiry import ExpiryWorker, sweep_expired
from engine.services import SERVICES
from tests.expiry.conftest import ADMIN_TOKEN, SETTINGS, ExpiryWorld

TWO_A_DAY = {"scope": "customer", "window": "daily", "method": "channel", "count_max": 2}


async def _limited_customer(world: ExpiryWorld) -> tuple[PayEngineClient, str]:
    client = await world.merchant()
    created = await client.create_customer("ext-" + uuid.uuid4().hex)
    assert created.status == 201, created.body
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"}
    async with world.session.put(f"{world.url}/admin/merchants/{client.merchant_id}/limits", headers=headers,
                                 data=msgspec.json.encode({"limits": [TWO_A_DAY]})) as r:
        assert r.status == 200, await r.text()
    return client, created.body["id"]


async def _attempt(client: PayEngineClient, customer: str) -> int:
    """The status of one more channel payment for the customer (402: the daily count limit refused it)."""
    created = await client.create_payment({"merchant_order_no": "o-" + uuid.uuid4().hex, "amount": 500,
                                           "currency": "CNY", "method": "channel", "channel": "wxsim",
                                           "expires_in_s": 60, "customer_id": customer})
    return created.status


async def _two_then_refused(world: ExpiryWorld, client: PayEngineClient, customer: str) -> dict[str, Any]:
    first = await world.channel_payment(client, customer_id=customer)
    await world.channel_payment(client, customer_id=customer)
    assert await _attempt(client, customer) == 402
    return first


async def test_payment_expired_by_the_worker_gives_its_usage_back(world: ExpiryWorld) -> None:
    client, customer = await _limited_customer(world)
    first = await _two_then_refused(world, client, customer)
    await world.backdate(first["id"], 1)

    worker = ExpiryWorker(world.pool, world.queue, SETTINGS, release_usage=world.app[SERVICES].release_usage)
    assert await worker.drain_queue(datetime.now(UTC)) >= 1
    assert (await client.get_payment(first["id"])).body["status"] == "closed"
    assert await world.pool.fetchval("SELECT count(*) FROM usage_releases WHERE movement_id = $1", first["id"]) == 0
    assert await _attempt(client, customer) == 201
    assert await _attempt(client, customer) == 402


async def test_expiry_whose_process_died_before_releasing_is_given_back_by_the_release_loop(
        world: ExpiryWorld) -> None:
    client, customer = await _limited_customer(world)
    first = await _two_then_refused(world, client, customer)
    await world.backdate(first["id"], 1, in_queue=False)

    # No release with the sweep: the close commits and nothing gives the usage back, as when the process
    # dies right after the commit.
    await sweep_expired(world.pool, datetime.now(UTC), SETTINGS.expiry_batch_max)
    assert (await client.get_payment(first["id"])).body["status"] == "closed"
    assert await _attempt(client, customer) == 402
    release = world.app[SERVICES].release_usage
    assert await release_owed(world.pool, release, grace_s=3600, batch_max=100) == 0  # not owed long enough yet

    assert await release_owed(world.pool, release, grace_s=0, batch_max=100) >= 1
    assert await _attempt(client, customer) == 201
    assert await release_owed(world.pool, release, grace_s=0, batch_max=100) == 0
    assert await _attempt(client, customer) == 402  # given back once
