"""A payment's references, checked once per statement (migration 090) instead of by foreign keys, still
hold for any writer: a payment or outbox event naming an unknown merchant, customer or payer account is
refused, those columns never change, and merchants and customers are never deleted."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import asyncpg
import pytest

from engine.customers.store import insert_customer
from engine.merchants.pricing import Pricing
from engine.merchants.store import insert_merchant
from tests.factories import rand_id

_PAYMENT = (
    "INSERT INTO payments (id, merchant_id, merchant_order_no, amount, currency, method, customer_id,"
    " payer_account_id, status, fee, txn_no, metadata, expires_at, created_at, updated_at)"
    " VALUES ($1::text, $2, $1::text, 100, 'CNY', 'wallet', $3, $4, 'succeeded', 0, $1::text, '{}', now(), now(),"
    " now())"
)


@asynccontextmanager
async def world(pool: asyncpg.Pool) -> AsyncIterator[tuple[asyncpg.Connection, str, str, str]]:
    """A merchant and its customer (with wallet) in a transaction that never commits."""
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            merchant = rand_id("mch")
            assert await insert_merchant(conn, merchant, "refs", os.urandom(16), Pricing())
            customer = rand_id("cus")
            record = await insert_customer(conn, customer, merchant, customer, "CNY", rand_id("acct"),
                                           datetime.now(UTC))
            yield conn, merchant, customer, record.wallet_account_id
        finally:
            await tx.rollback()


async def test_a_payment_with_known_references_is_accepted(pool: asyncpg.Pool) -> None:
    async with world(pool) as (conn, merchant, customer, wallet):
        await conn.execute(_PAYMENT, rand_id("pay"), merchant, customer, wallet)


@pytest.mark.parametrize("unknown", ["merchant", "customer", "account"])
async def test_a_payment_naming_an_unknown_merchant_customer_or_account_is_refused(pool: asyncpg.Pool,
                                                                                  unknown: str) -> None:
    async with world(pool) as (conn, merchant, customer, wallet):
        refs = {"merchant": merchant, "customer": customer, "account": wallet}
        refs[unknown] = rand_id("nobody")
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            await conn.execute(_PAYMENT, rand_id("pay"), refs["merchant"], refs["customer"], refs["account"])


async def test_an_outbox_event_of_an_unknown_merchant_is_refused(pool: asyncpg.Pool) -> None:
    async with world(pool) as (conn, _, _, _):
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            await conn.execute("INSERT INTO outbox_events (id, merchant_id, type, object_id, payload, created_at)"
                               " VALUES ($1, $2, 'payment.succeeded', 'x', '{}', now())", rand_id("evt"),
                               rand_id("nobody"))


@pytest.mark.parametrize("statement", [
    "UPDATE payments SET merchant_id = merchant_id WHERE id = $1",
    "UPDATE payments SET customer_id = customer_id WHERE id = $1",
    "UPDATE payments SET payer_account_id = payer_account_id WHERE id = $1",
    "UPDATE outbox_events SET merchant_id = merchant_id WHERE object_id = $1",
    "DELETE FROM merchants WHERE id = (SELECT merchant_id FROM payments WHERE id = $1)",
    "DELETE FROM customers WHERE id = (SELECT customer_id FROM payments WHERE id = $1)",
])
async def test_what_a_payment_refers_to_never_changes_nor_goes(pool: asyncpg.Pool, statement: str) -> None:
    async with world(pool) as (conn, merchant, customer, wallet):
        payment = rand_id("pay")
        await conn.execute(_PAYMENT, payment, merchant, customer, wallet)
        await conn.execute("INSERT INTO outbox_events (id, merchant_id, type, object_id, payload, created_at)"
                           " VALUES ($1, $2, 'payment.succeeded', $3, '{}', now())", rand_id("evt"), merchant, payment)
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            await conn.execute(statement, payment)
