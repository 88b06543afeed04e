"""The batch statement itself: a released admission refuses only its own payment, and a batch much larger
than any test's HTTP batch books in one statement with every outcome and balance in order."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

import asyncpg
import pytest

from engine.controls.errors import AdmissionReleased
from engine.payments.batch_store import book_batch
from engine.payments.batcher import PaymentBatcher
from engine.services import SERVICES
from tests.api.conftest import Api
from tests.api.ledger import snapshot
from tests.batch.conftest import prepared_payments


async def test_a_released_admission_refuses_only_its_payment(batched: Api, pool: asyncpg.Pool) -> None:
    client = await batched.merchant()
    customer = await batched.funded_customer(client, 1_000)
    live = "adm_" + uuid.uuid4().hex[:24]
    await pool.execute("INSERT INTO limit_usage (id, merchant_id, customer_id, kind, method, currency, amount, day)"
                       " VALUES ($1, $2, $3, 'payment', 'wallet', 'CNY', 100, current_date)",
                       live, client.merchant_id, customer)
    released = "adm_" + uuid.uuid4().hex[:24]
    items = await prepared_payments(batched, pool, customer, [100, 200, 300], [live, released, None])
    async with pool.acquire() as conn, conn.transaction():
        results = await book_batch(conn, items)
    assert results[0].error is None and results[2].error is None
    assert isinstance(results[1].error, AdmissionReleased)
    wallet = await pool.fetchval("SELECT a.balance FROM customers c JOIN accounts a ON a.id = c.wallet_account_id"
                                 " WHERE c.id = $1", customer)
    assert wallet == 1_000 - 100 - 300
    controls = await pool.fetchval("SELECT controls->>'admission' FROM payments WHERE id = $1", items[0].row.id)
    assert controls == live


async def test_a_large_batch_books_in_arrival_order_until_the_wallet_runs_dry(batched: Api,
                                                                            pool: asyncpg.Pool) -> None:
    client = await batched.merchant()
    customer = await batched.funded_customer(client, 1_500 * 3 + 7)
    items = await prepared_payments(batched, pool, customer, [3] * 1_500 + [8, 7, 1], [None] * 1_503)
    async with pool.acquire() as conn, conn.transaction():
        results = await book_batch(conn, items)
    assert all(r.error is None for r in results[:1_500])
    assert [type(r.error).__name__ if r.error else "ok" for r in results[1_500:]] == \
        ["InsufficientFunds", "ok", "InsufficientFunds"]
    wallet = results[0].payer
    # The wallet's statement: one leg per booked payment, numbered in arrival order, running balance exact.
    legs = [leg for r in results if r.posted for leg in r.posted.legs if leg.account_id == wallet]
    assert [leg.seq for leg in legs] == list(range(legs[0].seq, legs[0].seq + 1_501))
    assert [leg.balance_after for leg in legs][-2:] == [7, 0]
    assert await pool.fetchval("SELECT balance FROM accounts WHERE id = $1", wallet) == 0
    await snapshot(pool, [])


async def test_a_poisoned_payment_fails_alone_when_the_batch_splits(batched: Api, pool: asyncpg.Pool) -> None:
    """Driven through PaymentBatcher's public interface (as the bench's batched mode drives it)."""
    client = await batched.merchant()
    customer = await batched.funded_customer(client, 10_000)
    ctx = batched.app[SERVICES]
    batcher = PaymentBatcher(ctx.pool, ctx.buffer_sink, ctx.booker.splits, batch_max=64, linger_us=0,
                             queue_max=64, bookers=1)
    first, *rest = await prepared_payments(batched, pool, customer, [100] * 8, [None] * 8)
    task = asyncio.create_task(batcher.run())
    try:
        assert (await batcher.submit(first)).error is None
        # The poison: a transaction number already booked (a unique violation, not a refusal the walk knows).
        poison = dataclasses.replace(rest[3], entry=dataclasses.replace(rest[3].entry, txn_no=first.entry.txn_no))
        rest[3] = poison
        results = await asyncio.gather(*(batcher.submit(item) for item in rest), return_exceptions=True)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert isinstance(results[3], asyncpg.UniqueViolationError), results[3]
    assert all(not isinstance(r, BaseException) and r.error is None for n, r in enumerate(results) if n != 3)
    wallet = await pool.fetchval("SELECT a.balance FROM customers c JOIN accounts a ON a.id = c.wallet_account_id"
                                 " WHERE c.id = $1", customer)
    assert wallet == 10_000 - 100 * 7
    await snapshot(pool, [])
