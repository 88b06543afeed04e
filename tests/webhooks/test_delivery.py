"""Delivery end to end: real app, real receiver, signatures checked on every request."""

from __future__ import annotations

import asyncio
import itertools
import random
from datetime import UTC, datetime

import aiohttp

from engine.background import cancel_and_wait
from engine.webhooks.store import attempts_of
from engine.webhooks.worker import DeliveryWorker
from tests.webhooks.conftest import SETTINGS, WebhookWorld, eventually


async def test_event_retried_with_backoff_then_delivered_once(world: WebhookWorld) -> None:
    client, endpoint = await world.merchant(fail_first=3)
    assert endpoint is not None
    payment_id = await world.wallet_payment(client)
    event_id = await world.event_of(payment_id)

    await eventually(lambda: len(endpoint.processed) == 1)

    async def delivered() -> bool:
        return await world.status_of(event_id) == "delivered"

    await eventually(delivered, timeout_s=5)
    assert endpoint.bad_signatures == 0
    assert endpoint.received[event_id] == 4 and not endpoint.duplicates
    event = endpoint.processed[0]
    assert set(event) == {"id", "type", "created_at", "data"}
    assert (event["id"], event["type"], event["data"]["id"]) == (event_id, "payment.succeeded", payment_id)
    assert event["data"]["status"] == "succeeded"

    attempts = await attempts_of(world.pool, event_id)
    assert [a.status_code for a in attempts] == [500, 500, 500, 200]
    assert [a.succeeded for a in attempts] == [False, False, False, True]
    # Backoff: each wait is at least half its exponential ceiling (equal jitter), 100 ms doubling to 400.
    gaps = [(b.started_at - a.started_at).total_seconds() for a, b in itertools.pairwise(attempts)]
    for gap, ceiling in zip(gaps, (0.1, 0.2, 0.4), strict=True):
        assert gap >= ceiling / 2 - 0.01, gaps


async def test_event_dead_after_retry_window_and_not_tried_again(world: WebhookWorld) -> None:
    client, endpoint = await world.merchant(always_fail=True)
    assert endpoint is not None
    payment_id = await world.wallet_payment(client)
    event_id = await world.event_of(payment_id)

    async def dead() -> bool:
        return await world.status_of(event_id) == "dead"

    await eventually(dead, timeout_s=10)
    attempts = await attempts_of(world.pool, event_id)
    created_at = await world.pool.fetchval("SELECT created_at FROM outbox_events WHERE id = $1", event_id)
    assert len(attempts) >= 4 and not any(a.succeeded for a in attempts)
    # Given up only by a failure after the whole window: retries spanned at least the window.
    assert (attempts[-1].started_at - created_at).total_seconds() >= SETTINGS.webhook_retry_window_s
    tried = endpoint.received[event_id]
    await asyncio.sleep(0.5)
    assert endpoint.received[event_id] == tried
    listed = await client.request("GET", "/v1/events?type=payment.succeeded")
    assert listed.status == 200
    assert listed.body["data"][0]["delivery_status"] == "dead"
    assert listed.body["data"][0]["last_error"] == "HTTP 500"

    # The merchant fixes its endpoint and asks for the event again: a fresh window, delivered.
    endpoint.always_fail = False
    resent = await client.request("POST", f"/v1/events/{event_id}/resend")
    assert resent.status == 200, resent.body
    assert (resent.body["delivery_status"], resent.body["attempts"]) == ("pending", 0)
    await eventually(lambda: len(endpoint.processed) == 1)
    assert endpoint.processed[0]["id"] == event_id


async def test_resend_of_delivered_event_comes_again_with_same_id(world: WebhookWorld) -> None:
    client, endpoint = await world.merchant()
    assert endpoint is not None
    payment_id = await world.wallet_payment(client)
    event_id = await world.event_of(payment_id)
    await eventually(lambda: endpoint.received[event_id] == 1)

    resent = await client.request("POST", f"/v1/events/{event_id}/resend", idempotency_key="again-1")
    assert resent.status == 200
    await eventually(lambda: endpoint.received[event_id] == 2)
    assert endpoint.duplicates[event_id] == 1 and len(endpoint.processed) == 1  # the merchant deduped by id
    replay = await client.request("POST", f"/v1/events/{event_id}/resend", idempotency_key="again-1")
    assert replay.status == 200 and replay.replayed
    await asyncio.sleep(0.3)
    assert endpoint.received[event_id] == 2  # a replayed request does not send again

    other, _ = await world.merchant()
    assert (await other.request("POST", f"/v1/events/{event_id}/resend")).status == 404
    assert (await client.request("POST", "/v1/events/evt_missing/resend")).status == 404


async def test_events_listed_newest_first_with_type_filter_and_pages(world: WebhookWorld) -> None:
    client, endpoint = await world.merchant()
    assert endpoint is not None
    payments = [await world.wallet_payment(client) for _ in range(3)]
    refund = await client.refund(payments[0], 100, "rf-1")
    assert refund.status == 201

    page1 = await client.request("GET", "/v1/events?type=payment.succeeded&limit=2")
    assert page1.status == 200, page1.body
    assert [e["data"]["id"] for e in page1.body["data"]] == [payments[2], payments[1]]
    assert page1.body["has_more"] is True
    page2 = await client.request("GET", f"/v1/events?type=payment.succeeded&limit=2"
                                        f"&starting_after={page1.body['data'][-1]['id']}")
    assert [e["data"]["id"] for e in page2.body["data"]] == [payments[0]] and page2.body["has_more"] is False
    everything = await client.request("GET", "/v1/events?limit=100")
    assert everything.body["data"][0]["type"] == "refund.succeeded"
    assert len(everything.body["data"]) == 4
    assert (await client.request("GET", "/v1/events?type=Not-A-Type")).status == 400
    assert (await client.request("GET", "/v1/events?starting_after=evt_nope")).status == 404


async def test_merchant_without_endpoint_gets_no_attempts_but_events_stay_listable(world: WebhookWorld) -> None:
    client, _ = await world.merchant(with_endpoint=False)
    payment_id = await world.wallet_payment(client)
    event_id = await world.event_of(payment_id)

    async def dead() -> bool:
        return await world.status_of(event_id) == "dead"

    await eventually(dead)
    assert await attempts_of(world.pool, event_id) == []  # nothing was sent anywhere
    listed = await client.request("GET", "/v1/events")
    assert listed.body["data"][0]["id"] == event_id
    assert listed.body["data"][0]["last_error"] == "merchant has no webhook_url"


async def test_competing_workers_deliver_each_event_once(world: WebhookWorld) -> None:
    """Two more workers race the app's own over the same outbox: SKIP LOCKED + lease, one POST each."""
    client, endpoint = await world.merchant()
    assert endpoint is not None
    async with aiohttp.ClientSession() as session:
        workers = [DeliveryWorker(world.pool, session, SETTINGS, random.Random(n)) for n in range(2)]
        tasks = [asyncio.create_task(w.run()) for w in workers]
        try:
            payment_ids = await asyncio.gather(*(world.wallet_payment(client) for _ in range(20)))
            await eventually(lambda: len(endpoint.processed) == 20)
            await asyncio.sleep(0.3)
        finally:
            await cancel_and_wait(tasks)  # again if a cancel is lost (engine/background.py)
    assert not endpoint.duplicates and endpoint.bad_signatures == 0
    assert sorted(e["data"]["id"] for e in endpoint.processed) == sorted(payment_ids)
    assert set(endpoint.received.values()) == {1}


async def test_unreachable_endpoint_is_recorded_as_transport_error(world: WebhookWorld) -> None:
    client, endpoint = await world.merchant()
    assert endpoint is not None
    await world.pool.execute("UPDATE merchants SET webhook_url = 'http://127.0.0.1:9/nothing' WHERE id = $1",
                             client.merchant_id)
    payment_id = await world.wallet_payment(client)
    event_id = await world.event_of(payment_id)

    async def tried() -> bool:
        return len(await attempts_of(world.pool, event_id)) >= 1

    await eventually(tried)
    first = (await attempts_of(world.pool, event_id))[0]
    assert first.status_code is None and first.error and "Error" in first.error
    assert first.started_at <= datetime.now(UTC)
