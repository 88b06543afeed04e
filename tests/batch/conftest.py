"""A second API on the session's servers with wallet payments batched, beside the serial one of tests/api.

``gather_batch`` makes the batcher take a chosen list of requests as ONE batch in a chosen arrival order: a
payment whose payer's wallet the test holds locked keeps the booking task busy while the requests queue one
by one; releasing the lock lets the next batch take them all.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
import msgspec
import pytest

from accounts.rules import build_entry
from engine.bootstrap import create_app
from engine.client import ApiResult, PayEngineClient
from engine.keys import EVENT, PAYMENT, new_id
from engine.payments.batch_store import PAYER, BatchPayment
from engine.payments.batcher import PaymentBatcher
from engine.payments.store import NewPayment, OutboxEvent, Transition
from engine.services import SERVICES
from engine.settings import Settings
from tests.api.conftest import ADMIN_TOKEN, Api, api
from tests.conftest import Servers
from tests.serving import serving

__all__ = ["api"]  # the serial API, a fixture here too

BATCH_MAX = 64
QUEUE_WAIT_S = 20.0


@pytest.fixture(scope="session")
async def batched(servers: Servers) -> AsyncIterator[Api]:
    settings = Settings(admin_token=ADMIN_TOKEN, db_pool_max=40, batch_max=BATCH_MAX, batch_queue_max=BATCH_MAX * 4,
                        batch_bookers=1)  # one booker: gather_batch holds it busy
    app = create_app(settings, servers.database_url, servers.redis_url)
    async with serving(app) as served, aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        yield Api(served.url, settings, session, app)


def batcher_of(api: Api) -> PaymentBatcher:
    batcher = api.app[SERVICES].payment_batcher
    assert batcher is not None
    return batcher


async def until(check: Callable[[], bool], what: str, timeout_s: float = QUEUE_WAIT_S) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not check():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.002)


async def send_payment(client: PayEngineClient, body: dict[str, Any], key: str | None) -> ApiResult:
    """One attempt, exactly as a merchant sends it (no retries, a key only when given)."""
    raw = msgspec.json.encode(body)
    headers = client.signed_headers("POST", "/v1/payments", raw)
    if key is not None:
        headers["Idempotency-Key"] = key
    return await client.send_raw("POST", "/v1/payments", raw, headers)


async def gather_batch(api: Api, pool: asyncpg.Pool, sends: Sequence[Callable[[], Awaitable[ApiResult]]],
                       while_queued: Callable[[], Awaitable[object]] | None = None) -> list[ApiResult]:
    """Run ``sends`` so that the batcher books them as one batch, queued in this order (the blocking payment
    goes to a merchant of its own, so it moves none of the test's money); ``while_queued`` runs once they all
    wait, before the batch may start."""
    assert len(sends) <= BATCH_MAX
    batcher = batcher_of(api)
    client = await api.merchant()
    blocker = await api.funded_customer(client, 100)
    wallet = await pool.fetchval("SELECT wallet_account_id FROM customers WHERE id = $1", blocker)
    conn = await pool.acquire()
    tx = conn.transaction()
    await tx.start()
    try:
        await conn.execute("SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE", wallet)
        held = asyncio.create_task(send_payment(client, {"method": "wallet", "amount": 1, "currency": "CNY",
                                                         "customer_id": blocker,
                                                         "merchant_order_no": "blk-" + uuid.uuid4().hex}, None))
        await _until_blocked(pool, wallet)
        tasks: list[asyncio.Task[ApiResult]] = []
        for n, send in enumerate(sends, 1):
            task = asyncio.create_task(send())
            tasks.append(task)
            await until(functools.partial(_queued, batcher, n, task), "a request to queue")
        if while_queued is not None:
            await while_queued()
        await tx.commit()
    except BaseException:
        await tx.rollback()
        raise
    finally:
        await pool.release(conn)
    assert (await held).status == 201
    return list(await asyncio.gather(*tasks))


def _queued(batcher: PaymentBatcher, count: int, task: asyncio.Task[ApiResult]) -> bool:
    return batcher.waiting >= count or task.done()


async def _until_blocked(pool: asyncpg.Pool, wallet: str) -> None:
    """The blocker's batch is waiting for the wallet lock the test holds."""
    for _ in range(int(QUEUE_WAIT_S / 0.005)):
        waiting = await pool.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE wait_event_type = 'Lock' AND query LIKE '%payment_batch_book%'")
        if waiting:
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"the blocker's batch never waited for {wallet}")


async def prepared_payments(api: Api, pool: asyncpg.Pool, customer: str, amounts: list[int],
                 admissions: list[str | None]) -> list[BatchPayment]:
    ctx = api.app[SERVICES]
    merchant_id = await pool.fetchval("SELECT merchant_id FROM customers WHERE id = $1", customer)
    pending = await pool.fetchval("SELECT id FROM accounts WHERE owner_id = $1 AND role = 'merchant_pending'"
                                  " AND currency = 'CNY'", merchant_id)
    platform = await ctx.platform_accounts("CNY")
    now = datetime.now(UTC)
    items = []
    for amount, admission in zip(amounts, admissions, strict=True):
        pid, txn_no = new_id(PAYMENT), ctx.txn_nos.next(now)
        entry = build_entry("PAY_WALLET", txn_no, now.date(), "CNY",
                            {"customer_wallet": PAYER, "gateway_transit": platform["gateway_transit"],
                             "merchant_pending": pending, "fee_income": platform["fee_income"]},
                            {"amount": amount, "fee": 0}, ref=pid)
        row = NewPayment(pid, merchant_id, "st-" + uuid.uuid4().hex, amount, "CNY", "wallet", None, customer,
                         "succeeded", 0, txn_no, None, {}, now + timedelta(minutes=15), now, None)
        items.append(BatchPayment(row, Transition("created", "succeeded", "wallet_debited"),
                                  OutboxEvent(new_id(EVENT), "payment.succeeded", b'{"id": "%s"}' % pid.encode()),
                                  entry, None, None, admission,
                                  None if admission is None else {"admission": admission}))
    return items
