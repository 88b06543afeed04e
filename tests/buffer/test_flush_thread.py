"""In-process flushers on their own thread: they drain what the serving loop books, and stop cleanly."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Sequence

import aiohttp
import asyncpg
import redis.asyncio as aioredis

from accounts.model import AccountId
from buffer.flush_thread import FlusherThread
from buffer.sink import RedisHotLegSink
from buffer.store import flush_lock_key
from buffer.tuning import BufferTuning
from engine.booking import Booker
from engine.bootstrap import create_app
from engine.settings import Settings
from tests.api.conftest import ADMIN_TOKEN, Api, order_no
from tests.buffer.world import check_ledger, open_world, pay, redis_matches_pg, wait_drained
from tests.conftest import Servers
from tests.serving import serving
from tests.webhooks.isolated import isolated_servers


async def _lock_holders(pool: asyncpg.Pool, accounts: Sequence[str]) -> list[int]:
    """The backend of every granted flush lock of ``accounts`` (one entry per lock)."""
    rows = await pool.fetch(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1"
        " AND ((classid::bigint << 32) | objid::bigint) = ANY($1::bigint[])", [flush_lock_key(a) for a in accounts])
    return [r["pid"] for r in rows]


async def test_flusher_thread_drains_bookings_made_on_the_serving_loop_and_stops_cleanly(
        pool: asyncpg.Pool, redis_client: aioredis.Redis, servers: Servers, sink: RedisHotLegSink,
        booker: Booker, owner: asyncpg.Connection) -> None:
    world = await open_world(pool, customers=8, owner=owner)
    await sink.hot.refresh()
    # Queued for the locks the test holds (standby), so the thread takes the accounts the moment they are
    # let go, before the flushers of any other app on this database look again.
    flushers = FlusherThread(servers.database_url,
                             lambda: aioredis.Redis.from_url(servers.redis_url, decode_responses=False),
                             BufferTuning(batch_size=50, flush_interval_ms=5), only_accounts=world.hot, grace_ms=0,
                             standby_wait_ms=200)
    flushers.start()
    try:
        await asyncio.sleep(0.3)
        await owner.execute("SELECT pg_advisory_unlock_all()")
        for _ in range(1500):  # up to 30 s
            if set(world.hot) <= flushers.owned:
                break
            await asyncio.sleep(0.02)
        thread_backends = set(await _lock_holders(pool, world.hot))
        assert len(await _lock_holders(pool, world.hot)) == len(world.hot)  # owned through PostgreSQL, as any flusher

        async def payer(customer: AccountId) -> None:
            for i in range(25):
                await pay(booker, world, customer, 1_000 + i, 10)

        await asyncio.gather(*(payer(c) for c in world.customers))  # 200 payments while the thread flushes
        await wait_drained(pool, world.hot)
    finally:
        await flushers.stop()
    assert flushers.failed is None
    # Stopping let go of every account: none is held by the thread's backends any more. (The in-process flushers
    # of another app on this database, e.g. the API tests' session app, may claim a released account at once.)
    assert not thread_backends & set(await _lock_holders(pool, world.hot))
    async with pool.acquire() as conn:
        await check_ledger(conn, world.all, floors={a: 0 for a in world.hot})
        for account_id in world.hot:
            await redis_matches_pg(conn, redis_client, account_id)
        applied = await conn.fetchval("SELECT count(*) FROM journal_legs WHERE account_id = $1 AND status = 'applied'",
                                      world.merchant)
        assert applied == 200


async def test_flusher_thread_keeps_trying_while_postgres_is_unreachable_and_still_stops(
        servers: Servers) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # a port nobody listens on
    port = sock.getsockname()[1]
    try:
        flushers = FlusherThread(f"postgresql://postgres@127.0.0.1:{port}/payengine",
                                 lambda: aioredis.Redis.from_url(servers.redis_url, decode_responses=False),
                                 BufferTuning())
        flushers.start()
        await asyncio.sleep(1.5)  # at least one failed start and one retry
        started = time.monotonic()
        await flushers.stop()
        assert time.monotonic() - started < 5
    finally:
        sock.close()
    assert flushers.failed is None and flushers.owned == frozenset()


async def test_serve_with_flusher_thread_applies_a_hot_merchants_payments(servers: Servers) -> None:
    """PAYENGINE_BUFFER_FLUSHER_THREAD=1 through the app: a database of its own, so these flushers are the
    only ones that can have applied the legs."""
    settings = Settings(admin_token=ADMIN_TOKEN, buffer_flusher_thread=True, db_pool_max=10)
    async with isolated_servers(servers.database_url, "pe_flthread") as iso:
        app = create_app(settings, iso.database_url, iso.redis_url)
        async with serving(app) as served, aiohttp.ClientSession() as session:
            api = Api(served.url, settings, session, app)
            client = await api.merchant(fee_bps=0, hot=True)
            customer = await api.funded_customer(client, 10_000)
            for _ in range(5):
                paid = await client.create_payment({"merchant_order_no": order_no(), "amount": 700,
                                                    "currency": "CNY", "method": "wallet",
                                                    "customer_id": customer})
                assert paid.status == 201, paid.body
            for _ in range(500):
                pending = next(a for a in (await client.accounts()).body["data"]
                               if a["currency"] == "CNY" and a["role"] == "merchant_pending")
                # One snapshot per read: a flush landing between reading the balance and the buffered legs
                # would otherwise show the money in neither (or both).
                assert pending["projected"] == pending["balance"] + pending["pending"] == 3_500, pending
                if pending["pending"] == 0:
                    break
                await asyncio.sleep(0.02)
            assert pending["hot"] and (pending["balance"], pending["pending"]) == (3_500, 0), pending
        # Leaving serving() ran the app's cleanup, which stops the flusher thread.
        assert not any(t.name == "buffer-flushers" and t.is_alive() for t in threading.enumerate())
