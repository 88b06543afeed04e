"""Unpaid payments close at their deadline: via the Redis delay queue, and via the PostgreSQL sweep when
Redis lost the queue or was down when the payment was made."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime

import msgspec

from engine import embedded
from engine.background import cancel_and_wait
from engine.keys import expiry_member, expiry_queue_key
from engine.payments.expiry import ExpiryWorker, sweep_expired
from engine.payments.store import transitions_of
from tests.expiry.conftest import SETTINGS, ExpiryWorld


def _worker(world: ExpiryWorld, **changes: object) -> ExpiryWorker:
    return ExpiryWorker(world.pool, world.queue, dataclasses.replace(SETTINGS, **changes))


async def _closed_events(world: ExpiryWorld, payment_id: str) -> list[dict[str, object]]:
    rows = await world.pool.fetch("SELECT payload::text FROM outbox_events WHERE object_id = $1"
                                  " AND type = 'payment.closed'", payment_id)
    return [msgspec.json.decode(r["payload"]) for r in rows]


async def _close_jobs(world: ExpiryWorld, payment_id: str) -> int:
    count: int = await world.pool.fetchval(
        "SELECT count(*) FROM jobs WHERE kind = 'close_order' AND ref_id = $1 AND status = 'queued'", payment_id)
    return count


async def test_channel_payment_enters_the_delay_queue_at_its_deadline(world: ExpiryWorld) -> None:
    client = await world.merchant()
    payment = await world.channel_payment(client)
    score = await world.redis.zscore(expiry_queue_key(), expiry_member(client.merchant_id, payment['id']))
    assert score is not None
    assert abs(score - datetime.fromisoformat(payment["expires_at"]).timestamp()) < 0.001
    assert await _worker(world).drain_queue(datetime.now(UTC)) == 0  # not due: stays queued
    assert await world.redis.zscore(expiry_queue_key(), expiry_member(client.merchant_id, payment['id'])) is not None


async def test_due_payment_closed_via_delay_queue_with_event_and_channel_close_job(world: ExpiryWorld) -> None:
    client = await world.merchant()
    payment = await world.channel_payment(client)
    await world.backdate(payment["id"], 1)

    assert await _worker(world).drain_queue(datetime.now(UTC)) >= 1
    got = await client.get_payment(payment["id"])
    assert got.body["status"] == "closed" and got.body["voucher"]["status"] == "expired"
    moves = await transitions_of(world.pool, payment["id"])
    assert (moves[-1].from_status, moves[-1].to_status, moves[-1].event, moves[-1].reason) == \
        ("pending_voucher", "closed", "expire", "expired")
    events = await _closed_events(world, payment["id"])
    assert len(events) == 1 and events[0]["status"] == "closed"
    assert await _close_jobs(world, payment["id"]) == 1
    assert await world.redis.zscore(expiry_queue_key(), expiry_member(client.merchant_id, payment['id'])) is None


async def test_sweep_closes_deadlines_redis_lost(world: ExpiryWorld) -> None:
    client = await world.merchant()
    payment = await world.channel_payment(client)
    # Redis crashes and comes back empty (no persistence): the queue forgot this deadline.
    embedded.stop_redis(world.iso.redis_dir, kill=True)
    embedded.wipe_redis_data(world.iso.redis_dir)
    embedded.start_redis(world.iso.redis_dir, appendonly=False)
    await world.backdate(payment["id"], 1, in_queue=False)

    assert await _worker(world).drain_queue(datetime.now(UTC)) == 0
    assert (await client.get_payment(payment["id"])).body["status"] == "pending_voucher"
    assert await sweep_expired(world.pool, datetime.now(UTC), SETTINGS.expiry_batch_max) >= 1
    assert (await client.get_payment(payment["id"])).body["status"] == "closed"
    assert len(await _closed_events(world, payment["id"])) == 1


async def test_payment_made_while_redis_down_is_created_and_swept_later(world: ExpiryWorld) -> None:
    client = await world.merchant()
    embedded.stop_redis(world.iso.redis_dir, kill=True)
    try:
        payment = await world.channel_payment(client)  # the queue is unavailable: the payment is not refused
    finally:
        embedded.start_redis(world.iso.redis_dir, appendonly=False)
    assert await world.redis.zscore(expiry_queue_key(), expiry_member(client.merchant_id, payment['id'])) is None
    await world.backdate(payment["id"], 1, in_queue=False)
    await sweep_expired(world.pool, datetime.now(UTC), SETTINGS.expiry_batch_max)
    assert (await client.get_payment(payment["id"])).body["status"] == "closed"


async def test_merchant_close_first_then_deadline_changes_nothing(world: ExpiryWorld) -> None:
    client = await world.merchant()
    payment = await world.channel_payment(client)
    assert (await client.close_payment(payment["id"])).status == 200
    await world.backdate(payment["id"], 1)

    await _worker(world).drain_queue(datetime.now(UTC))
    await sweep_expired(world.pool, datetime.now(UTC), SETTINGS.expiry_batch_max)
    assert len(await _closed_events(world, payment["id"])) == 1
    assert await _close_jobs(world, payment["id"]) == 1
    assert [t.event for t in await transitions_of(world.pool, payment["id"])].count("expire") == 0


async def test_queue_and_sweep_work_in_bounded_batches(world: ExpiryWorld) -> None:
    client = await world.merchant()
    payments = await asyncio.gather(*(world.channel_payment(client) for _ in range(60)))
    for p in payments:
        await world.backdate(p["id"], 1, in_queue=False)
    queued = payments[:55]
    for p in queued:
        await world.backdate(p["id"], 1)

    worker = _worker(world)
    assert await worker.drain_queue(datetime.now(UTC)) == SETTINGS.expiry_batch_max  # one bounded batch
    assert await worker.drain_queue(datetime.now(UTC)) == 55 - SETTINGS.expiry_batch_max
    await sweep_expired(world.pool, datetime.now(UTC), 2)  # many rounds of two
    statuses = [(await client.get_payment(p["id"])).body["status"] for p in payments]
    assert statuses == ["closed"] * 60


async def test_running_worker_closes_in_the_background(world: ExpiryWorld) -> None:
    client = await world.merchant()
    payment = await world.channel_payment(client)
    task = asyncio.create_task(_worker(world, expiry_poll_interval_ms=20).run())
    try:
        await world.backdate(payment["id"], 0.5)
        for _ in range(200):
            if (await client.get_payment(payment["id"])).body["status"] == "closed":
                break
            await asyncio.sleep(0.02)
        assert (await client.get_payment(payment["id"])).body["status"] == "closed"
    finally:
        await cancel_and_wait([task])  # again if a cancel is lost (engine/background.py)
