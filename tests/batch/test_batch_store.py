"""The batch statement itself: a released admission refuses only its own payment, and a batch much larger
than any test's HTTP batch books in one statement with every outcome and balance in order."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

from accounts.rules import build_entry
from engine.controls.errors import AdmissionReleased
from engine.keys import EVENT, PAYMENT, new_id
from engine.payments.batch_store import PAYER, BatchPayment, book_batch
from engine.payments.store import NewPayment, OutboxEvent, Transition
from engine.services import SERVICES
from tests.api.conftest import Api
from tests.api.ledger import snapshot


async def _items(api: Api, pool: asyncpg.Pool, customer: str, amounts: list[int],
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


async def test_a_released_admission_refuses_only_its_payment(batched: Api, pool: asyncpg.Pool) -> None:
    client = await batched.merchant()
    customer = await batched.funded_customer(client, 1_000)
    live = "adm_" + uuid.uuid4().hex[:24]
    await pool.execute("INSERT INTO limit_usage (id, merchant_id, customer_id, kind, method, currency, amount, day)"
                       " VALUES ($1, $2, $3, 'payment', 'wallet', 'CNY', 100, current_date)",
                       live, client.merchant_id, customer)
    items = await _items(batched, pool, customer, [100, 200, 300], [live, "adm_" + uuid.uuid4().hex[:24], None])
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
    items = await _items(batched, pool, customer, [3] * 1_500 + [8, 7, 1], [None] * 1_503)
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
