"""A `payengine gateway` process killed (SIGKILL) while the channel is creating a voucher: after the job's
lease runs out another gateway process takes it, and the channel still ends up with exactly one order.

Runs on a database of its own, so the session's in-process gateway cannot take the job first.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from channels.sim import Latency, SimFaults, SimKind, SimProfile, start_simulator
from engine.keys import PAYMENT, VOUCHER, new_id
from engine.merchants.pricing import Pricing
from engine.merchants.store import insert_merchant
from engine.payments.store import Job, NewPayment, Transition, insert_payment
from tests.conftest import Servers
from tests.databases import private_database
from tests.factories import new_txn_no

pytestmark = pytest.mark.slow
SIM_KEY = "gw-kill-key"


@pytest.fixture(scope="module")
async def private_db(servers: Servers) -> AsyncIterator[str]:
    async with private_database(servers.database_url, "gateway_kill") as url:
        yield url


def _gateway(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "engine.cli.main", "gateway"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def _until(check: object, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition never held")
        await asyncio.sleep(0.05)


async def test_voucher_survives_a_killed_gateway_process_without_a_second_channel_order(
        servers: Servers, private_db: str) -> None:
    # Creating takes 1.5 s here, so the kill lands while the first process waits for the channel.
    sim = await start_simulator(SimProfile(name="wx-kill", kind=SimKind.WALLET, key=SIM_KEY,
                                           faults=SimFaults(create_latency=Latency(1500.0, 0.0))))
    env = {**os.environ, "PAYENGINE_DATABASE_URL": private_db, "PAYENGINE_REDIS_URL": servers.redis_url,
           "PAYENGINE_CHANNELS": f"wxsim=wxsim,{sim.url},sim-merchant,{SIM_KEY}",
           "PAYENGINE_GATEWAY_JOB_LEASE_S": "5", "PAYENGINE_JANITOR_INTERVAL_MS": "200",
           "PAYENGINE_GATEWAY_POLL_INTERVAL_MS": "10", "PAYENGINE_GATEWAY_CALL_TIMEOUT_MS": "5000",
           "PAYENGINE_LOG_LEVEL": "WARNING"}
    pool = await asyncpg.create_pool(private_db, min_size=1, max_size=4)
    assert pool is not None
    first = second = None
    try:
        merchant_id, payment_id, voucher_id, txn_no = "mch_" + uuid.uuid4().hex[:12], new_id(PAYMENT), \
            new_id(VOUCHER), new_txn_no()
        now = datetime.now(UTC)
        async with pool.acquire() as conn, conn.transaction():
            await insert_merchant(conn, merchant_id, "kill test", b"salt", Pricing(60, 0))
            await insert_payment(conn, NewPayment(
                payment_id, merchant_id, "ord-1", 4200, "CNY", "channel", "wxsim", None, "pending_voucher", 25,
                txn_no, None, {}, now + timedelta(minutes=15), now, voucher_id),
                Transition("created", "pending_voucher", "channel_order_created"),
                Job("create_voucher", voucher_id, json.dumps({"payment_id": payment_id}).encode()), None, None)
        first = _gateway(env)

        async def asked() -> bool:  # the attempt is recorded just before the call; the channel takes 1.5 s
            async with pool.acquire() as conn:
                return bool(await conn.fetchval("SELECT count(*) FROM channel_orders WHERE out_trade_no = $1",
                                                txn_no))

        await _until(asked, 30.0)
        await asyncio.sleep(0.3)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT status FROM jobs WHERE ref_id = $1", voucher_id) == "running"
            assert await conn.fetchval("SELECT status FROM vouchers WHERE id = $1", voucher_id) == "pending"
        second = _gateway(env)

        async def ready() -> bool:
            async with pool.acquire() as conn:
                return await conn.fetchval("SELECT status FROM vouchers WHERE id = $1", voucher_id) == "ready"

        await _until(ready, 30.0)
        async with pool.acquire() as conn:
            job = await conn.fetchrow("SELECT status, attempts FROM jobs WHERE ref_id = $1", voucher_id)
            order = await conn.fetchrow("SELECT status, attempts, channel_order_id FROM channel_orders"
                                        " WHERE out_trade_no = $1", txn_no)
        assert job["status"] == "done" and job["attempts"] == 2
        assert order["status"] == "created" and order["attempts"] == 2
        assert [o.channel_order_id for o in sim.runtime.store.orders.values()] == [order["channel_order_id"]]
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)
        await pool.close()
        await sim.close()
