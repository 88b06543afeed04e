"""Transfers pass the control gate before booking: a limit refuses with 402 limit_exceeded and nothing
booked or counted; an admitted transfer stores the gate's record (risk decisions, limits) with its row."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import asyncpg
import msgspec
import pytest

from engine.booking import Booker, BookingTransaction
from engine.controls.limits import LimitRule
from engine.controls.store import replace_limit_rules
from engine.merchants.store import get_merchant
from engine.services import SERVICES
from engine.transfers.flow import create_transfer
from engine.transfers.wire import CreateTransfer
from tests.api.conftest import AdminHttp, Api
from tests.transfers.conftest import c2c, money_of


async def test_transfer_limits_refuse_before_booking_and_the_record_is_stored_with_the_transfer(
        api: Api, pool: asyncpg.Pool) -> None:
    client = await api.merchant()
    alice = await api.funded_customer(client, 10_000)
    bob = await api.funded_customer(client, 0)
    async with pool.acquire() as conn, conn.transaction():
        await replace_limit_rules(conn, client.merchant_id, [
            LimitRule("customer", "single", "transfer", "*", amount_max=1_000),
            LimitRule("customer", "daily", "transfer", "*", count_max=2)])
    api.app[SERVICES].gate.config.invalidate()
    before = await money_of(pool, client.merchant_id, [alice, bob])
    too_big = await client.create_transfer(c2c(alice, bob, 1_001))
    assert too_big.status == 402 and too_big.error_code == "limit_exceeded", too_big.body
    assert await money_of(pool, client.merchant_id, [alice, bob]) == before
    poor = await client.create_transfer(c2c(bob, alice, 10))  # counted, then given back: not booked
    assert poor.status == 402 and poor.error_code == "insufficient_funds", poor.body
    sent = [await client.create_transfer(c2c(alice, bob, 1_000)) for _ in range(3)]
    assert [r.status for r in sent] == [201, 201, 402] and sent[2].error_code == "limit_exceeded"
    async with pool.acquire() as conn:
        risk = await conn.fetchval("SELECT risk::text FROM transfers WHERE id = $1", sent[0].body["id"])
        usage = await conn.fetchval("SELECT count(*) FROM limit_usage WHERE merchant_id = $1", client.merchant_id)
    record = msgspec.json.decode(risk)
    assert record["admission"].startswith("adm_") and record["review"] is False
    assert {(r["window"], r["amount_max"], r["count_max"]) for r in record["limits"]} >= {("daily", None, 2)}
    assert usage == 2  # the two booked transfers; every refused attempt gave its usage back
    assert (await client.get_customer(alice)).body["balance"] == 8_000


class _CommitThenFail(Booker):
    """The app's booker (same pool and buffer) whose transaction raises once it has committed: what the flow
    sees when the connection dies with COMMIT's answer in flight, or the request is cancelled after it."""

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[BookingTransaction]:
        async with super().transaction() as tx:
            yield tx
        raise ConnectionResetError("connection lost after COMMIT")


async def test_usage_of_a_transfer_that_committed_stays_counted_when_the_request_fails_after_commit(
        api: Api, pool: asyncpg.Pool) -> None:
    client = await api.merchant()
    alice = await api.funded_customer(client, 10_000)
    bob = await api.funded_customer(client, 0)
    async with pool.acquire() as conn, conn.transaction():
        await replace_limit_rules(conn, client.merchant_id, [LimitRule("customer", "daily", "transfer", "*",
                                                                       count_max=2)])
        merchant = await get_merchant(conn, client.merchant_id)
    assert merchant is not None
    api.app[SERVICES].gate.config.invalidate()
    real = api.app[SERVICES].booker
    req = msgspec.json.decode(msgspec.json.encode(c2c(alice, bob, 1_000)), type=CreateTransfer)
    with pytest.raises(ConnectionResetError):
        await create_transfer(api.app[SERVICES], _CommitThenFail(real.pool, real.sink, real.splits), merchant, req,
                              None, datetime.now(UTC))
    async with pool.acquire() as conn:
        booked = await conn.fetchval("SELECT count(*) FROM transfers WHERE merchant_id = $1", client.merchant_id)
        usage = await conn.fetchval("SELECT count(*) FROM limit_usage WHERE merchant_id = $1", client.merchant_id)
    assert (booked, usage) == (1, 1)  # the transfer committed, and its usage was not given back
    assert (await client.create_transfer(c2c(alice, bob, 1_000))).status == 201
    third = await client.create_transfer(c2c(alice, bob, 1_000))
    assert third.status == 402 and third.error_code == "limit_exceeded", third.body
    assert third.body["error"]["details"]["used"] == 2


async def test_the_admin_api_shows_the_limits_record_stored_with_a_transfer(api: Api) -> None:
    admin = AdminHttp(api)
    client = await api.merchant()
    alice = await api.funded_customer(client, 5_000)
    bob = await api.funded_customer(client, 0)
    limits = {"limits": [{"scope": "customer", "window": "daily", "method": "transfer", "amount_max": 4_000}]}
    set_ = await admin.call("PUT", f"/admin/merchants/{client.merchant_id}/limits", limits)
    assert set_.status == 200, set_.body
    sent = await client.create_transfer(c2c(alice, bob, 1_000))
    assert sent.status == 201, sent.body
    reply = await admin.call("GET", f"/admin/transfers/{sent.body['id']}/controls")
    assert reply.status == 200 and reply.body["transfer_id"] == sent.body["id"], reply.body
    record = reply.body["controls"]
    assert record["admission"].startswith("adm_") and record["review"] is False, record
    assert {(r["window"], r["method"], r["amount_max"]) for r in record["limits"]} >= {("daily", "transfer", 4_000)}
    missing = await admin.call("GET", "/admin/transfers/tr_no_such_transfer/controls")
    assert missing.status == 404 and missing.code == "resource_missing", missing.body
    # One endpoint per kind: a transfer's id is no payment and no payout.
    for kind in ("payments", "payouts"):
        other = await admin.call("GET", f"/admin/{kind}/{sent.body['id']}/controls")
        assert other.status == 404 and other.code == "resource_missing", other.body
    unauthorised = await admin.call("GET", f"/admin/transfers/{sent.body['id']}/controls", token="wrong")
    assert unauthorised.status == 401, unauthorised.body
