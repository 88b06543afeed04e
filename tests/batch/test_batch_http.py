"""Wallet payments through the batcher over HTTP: in-batch and cross-process duplicates, the full queue,
and two APIs hammering the same customers and hot merchant."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator

import aiohttp
import asyncpg
import pytest

from engine.bootstrap import create_app
from engine.client import ApiResult, PayEngineClient
from engine.settings import Settings
from tests.api.conftest import ADMIN_TOKEN, Api
from tests.api.ledger import snapshot
from tests.batch.conftest import gather_batch, send_payment
from tests.buffer.world import check_ledger
from tests.conftest import Servers
from tests.serving import serving


def _pay(customer: str, amount: int, order: str) -> dict[str, object]:
    return {"method": "wallet", "amount": amount, "currency": "CNY", "customer_id": customer,
            "merchant_order_no": order}


async def test_duplicate_order_and_reused_key_inside_one_batch(batched: Api, pool: asyncpg.Pool) -> None:
    client = await batched.merchant()
    customer = await batched.funded_customer(client, 10_000)
    body = _pay(customer, 100, "o-1")
    results = await gather_batch(batched, pool, [
        lambda: send_payment(client, body, "k-1"),
        lambda: send_payment(client, _pay(customer, 200, "o-1"), "k-2"),   # same order number: 409
        lambda: send_payment(client, body, "k-1"),                         # same key and body: the replay
        lambda: send_payment(client, _pay(customer, 300, "o-3"), "k-1"),   # same key, other body: 422
        lambda: send_payment(client, _pay(customer, 400, "o-4"), "k-2"),   # k-2 kept its refusal: replayed
    ])
    first = results[0]
    assert first.status == 201 and first.body["status"] == "succeeded", first.body
    assert (results[1].status, results[1].error_code, results[1].body["error"]["existing_id"]) == \
        (409, "duplicate_order", first.body["id"])
    assert (results[2].status, results[2].body, results[2].headers.get("Idempotent-Replayed")) == \
        (201, first.body, "true")
    assert results[3].status == 422 and results[3].body["error"]["type"] == "idempotency_error", results[3].body
    assert results[4].status == 422, results[4].body  # k-2 holds the refusal of another body
    wallet = await pool.fetchval("SELECT a.balance FROM customers c JOIN accounts a ON a.id = c.wallet_account_id"
                                 " WHERE c.id = $1", customer)
    assert wallet == 10_000 - 100
    assert await pool.fetchval("SELECT count(*) FROM payments WHERE merchant_id = $1", client.merchant_id) == 1
    async with batched.session.get(batched.url + "/metrics") as resp:
        metrics = await resp.text()
    sizes = [line for line in metrics.splitlines() if line.startswith('payengine_payment_batch_size_bucket{le="4.0"}')]
    assert sizes and float(sizes[0].split()[-1]) < _count(metrics, "payengine_payment_batch_size_count"), sizes
    assert _count(metrics, "payengine_payment_batch_queue_wait_seconds_count") >= 5
    assert _count(metrics, 'payengine_payment_batches_total{result="booked"}') >= 1


def _count(metrics: str, name: str) -> float:
    return next(float(line.split()[-1]) for line in metrics.splitlines() if line.startswith(name + " "))


@pytest.fixture
async def second(servers: Servers) -> AsyncIterator[Api]:
    """Another batched API process on the same database (its own pools, batcher, node id)."""
    settings = Settings(admin_token=ADMIN_TOKEN, db_pool_max=20, batch_max=64, gateway_in_process=False,
                        webhooks_in_process=False)
    app = create_app(settings, servers.database_url, servers.redis_url)
    async with serving(app) as served, aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        yield Api(served.url, settings, session, app)


def _same_merchant(client: PayEngineClient, api: Api) -> PayEngineClient:
    return PayEngineClient(api.url, client.merchant_id, client.secret, session=api.session, retries_max=0)


async def test_duplicate_orders_and_keys_across_two_processes_batches(batched: Api, second: Api,
                                                                      pool: asyncpg.Pool) -> None:
    one = await batched.merchant()
    two = _same_merchant(one, second)
    customer = await batched.funded_customer(one, 1_000_000)
    rounds = 40
    sends = []
    for n in range(rounds):  # each order number and each key sent to both processes at once
        body = _pay(customer, 10 + n, f"x-{n}")
        sends += [send_payment(one, body, f"key-{n}"), send_payment(two, body, f"key-{n}"),
                  send_payment(one, _pay(customer, 7, f"y-{n}"), None),
                  send_payment(two, _pay(customer, 8, f"y-{n}"), None)]
    results = await asyncio.gather(*sends)
    for n in range(rounds):
        a, b, c, d = results[4 * n: 4 * n + 4]
        same_key = sorted((a.status, b.status))
        assert same_key in ([201, 201], [201, 409]), (a.body, b.body)
        fresh = [r for r in (a, b) if r.headers.get("Idempotent-Replayed") is None and r.status == 201]
        assert len(fresh) == 1, (a.body, b.body)  # exactly one booked; the other replayed it or saw it running
        other = b if fresh[0] is a else a
        assert (other.status == 201 and other.body == fresh[0].body) or other.error_code == "idempotency_key_in_use"
        assert sorted((c.status, d.status)) == [201, 409], (c.body, d.body)
        loser = c if c.status == 409 else d
        assert loser.error_code == "duplicate_order", loser.body
    booked = await pool.fetchval("SELECT count(*) FROM payments WHERE merchant_id = $1", one.merchant_id)
    assert booked == 2 * rounds
    spent = sum(10 + n for n in range(rounds)) + sum(r.body["amount"] for r in results[2::4] + results[3::4]
                                                     if r.status == 201)
    wallet = await pool.fetchval("SELECT a.balance FROM customers c JOIN accounts a ON a.id = c.wallet_account_id"
                                 " WHERE c.id = $1", customer)
    assert wallet == 1_000_000 - spent


async def test_two_processes_hammering_the_same_customers_and_hot_merchant(batched: Api, second: Api,
                                                                            pool: asyncpg.Pool) -> None:
    one = await batched.merchant(hot=True)
    two = _same_merchant(one, second)
    customers = [await batched.funded_customer(one, 20_000) for _ in range(6)]
    rng = random.Random(7)
    plan = [(rng.choice((one, two)), rng.choice(customers), rng.randint(1, 900), f"h-{n}") for n in range(600)]

    async def worker(lane: int) -> list[tuple[str, int, int]]:
        done = []
        for client, customer, amount, order in plan[lane::32]:
            r = await send_payment(client, _pay(customer, amount, order), uuid.uuid4().hex)
            assert r.status in (201, 402), r.body  # booked, or the wallet ran dry: never a deadlock or a 5xx
            done.append((customer, amount, r.status))
        return done

    outcomes = [o for lane in await asyncio.gather(*(worker(n) for n in range(32))) for o in lane]
    assert any(s == 402 for _, _, s in outcomes) and any(s == 201 for _, _, s in outcomes)
    spent = {c: sum(a for cc, a, s in outcomes if cc == c and s == 201) for c in customers}
    accounts = [a["id"] for a in (await one.accounts()).body["data"]]
    wallets = {c: await pool.fetchval("SELECT wallet_account_id FROM customers WHERE id = $1", c) for c in customers}
    ids = [r["id"] for r in await pool.fetch("SELECT id FROM accounts WHERE id = ANY($1::text[])"
                                             " OR parent_id = ANY($1::text[])", accounts)]
    deadline = asyncio.get_running_loop().time() + 60
    while await pool.fetchval("SELECT count(*) FROM journal_legs WHERE status = 'buffered'"
                              " AND account_id = ANY($1::text[])", ids):
        assert asyncio.get_running_loop().time() < deadline, "the flushers did not drain the hot merchant"
        await asyncio.sleep(0.1)
    async with pool.acquire() as conn:
        await check_ledger(conn, [*ids, *wallets.values()], floors=dict.fromkeys(wallets.values(), 0))
        for c, wallet in wallets.items():
            assert await conn.fetchval("SELECT balance FROM accounts WHERE id = $1", wallet) == 20_000 - spent[c]
        booked = await conn.fetchval("SELECT count(*) FROM payments WHERE merchant_id = $1", one.merchant_id)
        assert booked == sum(1 for *_, s in outcomes if s == 201)
    await snapshot(pool, [])


@pytest.fixture
async def tiny(servers: Servers) -> AsyncIterator[Api]:
    """A batched API whose queue holds one payment."""
    settings = Settings(admin_token=ADMIN_TOKEN, db_pool_max=10, batch_max=1, batch_queue_max=1, batch_bookers=1,
                        gateway_in_process=False, webhooks_in_process=False)
    app = create_app(settings, servers.database_url, servers.redis_url)
    async with serving(app) as served, aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        yield Api(served.url, settings, session, app)


async def test_a_full_queue_answers_503_with_retry_after_and_writes_nothing(tiny: Api, pool: asyncpg.Pool) -> None:
    client = await tiny.merchant()
    customer = await tiny.funded_customer(client, 10_000)
    refused: list[ApiResult] = []

    async def one_more() -> None:
        refused.append(await send_payment(client, _pay(customer, 300, "full-1"), "full-key"))

    # The blocker's batch is held and one payment waits in the queue: the next one finds it full.
    results = await gather_batch(tiny, pool, [lambda: send_payment(client, _pay(customer, 200, "queued-1"),
                                                                   "queued-key")], one_more)
    assert results[0].status == 201
    r = refused[0]
    assert r.status == 503 and r.error_code == "batch_queue_full" and r.headers.get("Retry-After") == "1", r.body
    assert await pool.fetchval("SELECT count(*) FROM payments WHERE merchant_order_no = 'full-1'"
                               " AND merchant_id = $1", client.merchant_id) == 0
    assert await pool.fetchval("SELECT count(*) FROM idempotency_keys WHERE key = 'full-key'"
                               " AND merchant_id = $1", client.merchant_id) == 0
    again = await send_payment(client, _pay(customer, 300, "full-1"), "full-key")  # the retry books it
    assert again.status == 201, again.body
