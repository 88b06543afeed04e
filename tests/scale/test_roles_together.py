"""Every role as its own process against one PostgreSQL and one Redis: `payengine serve --workers 2`,
two `payengine flush`, one `payengine gateway`, a `wxsim` channel simulator. A mixed load (wallet
payments and partial refunds, i.e. credits and hot debits of one hot merchant) goes through the HTTP
API with the signed client; one flusher is SIGKILLed mid-run. Then: every booking applied exactly
once, per-account order and running balances exact, entries balanced, and what the clients saw is
what the ledger holds; the gateway process is still up.

Channel payments are left out here: gateway jobs live in the shared session database and any
gateway of another test's app may claim them (one deployment has one set of channels, a test
session has several), so their vouchers would not reliably come from this test's simulator.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from engine.client import PayEngineClient, create_merchant
from tests.buffer.world import check_ledger
from tests.conftest import Servers
from tests.scale.procs import Roles, free_port, wait_http

ADMIN = "scale-admin-token"
SIM_MERCHANT, SIM_KEY = "sim-merchant", "sim-secret-key-0123456789abcdef"
CUSTOMERS, FUNDS = 12, 10_000_000
PAYERS, PAYMENTS_EACH = 12, 12


@pytest.fixture
async def roles(servers: Servers, pool: asyncpg.Pool, tmp_path: Path) -> Any:
    api_port, sim_port = free_port(), free_port()
    api = f"http://127.0.0.1:{api_port}"
    env = {
        "PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
        "PAYENGINE_DATABASE_URL": servers.database_url, "PAYENGINE_REDIS_URL": servers.redis_url,
        "PAYENGINE_DATA_DIR": str(tmp_path / "data"), "PAYENGINE_ADMIN_TOKEN": ADMIN, "PAYENGINE_LOG_LEVEL": "WARNING",
        "PAYENGINE_DB_POOL_MAX": "16", "PAYENGINE_PUBLIC_URL": api,
        "PAYENGINE_CHANNELS": f"wxsim=wxsim,http://127.0.0.1:{sim_port},{SIM_MERCHANT},{SIM_KEY}",
        "PAYENGINE_GATEWAY_IN_PROCESS": "0", "PAYENGINE_WEBHOOKS_IN_PROCESS": "0",
        "PAYENGINE_BUFFER_IN_PROCESS_FLUSHERS": "0", "PAYENGINE_BUFFER_FLUSH_INTERVAL_MS": "5",
        "PAYENGINE_BUFFER_BATCH_SIZE": "50", "PAYENGINE_BUFFER_RECOVERY_GRACE_MS": "500",
    }
    running = Roles(tmp_path, env)
    try:
        sim = await running.start("wxsim", "channel-sim", "--profile", "wxsim", "--port", str(sim_port),
                                  "--notify-base-url", api)
        await wait_http(f"http://127.0.0.1:{sim_port}/", sim)
        server = await running.start("api", "serve", "--workers", "2", "--port", str(api_port))
        await wait_http(f"{api}/readyz", server)
        await running.start("flush-1", "flush")
        await running.start("flush-2", "flush")
        await running.start("gateway", "gateway")
        yield running, api, f"http://127.0.0.1:{sim_port}"
    finally:
        await running.stop_all()


@pytest.mark.slow
async def test_roles_as_processes_with_a_flusher_killed(roles: Any, pool: asyncpg.Pool) -> None:
    running, api, _sim = roles
    rng = random.Random(9)
    async with aiohttp.ClientSession() as http:
        merchant = await create_merchant(api, ADMIN, {"name": "scale hot", "currencies": ["CNY"], "fee_bps": 60,
                                                      "hot": True}, http)
        client = PayEngineClient(api, merchant["id"], merchant["secret"], session=http)
        customers = []
        for i in range(CUSTOMERS):
            c = await client.create_customer(f"scale-{uuid.uuid4().hex[:8]}-{i}")
            assert (await client.topup(c.body["id"], FUNDS, f"fund-{i}")).status in (200, 201)
            customers.append(c.body["id"])
        paid: dict[str, int] = {}  # payment id -> amount, as the client saw them succeed
        refunded: dict[str, int] = {}
        spent = dict.fromkeys(customers, 0)
        done, third = 0, asyncio.Event()

        async def payer(n: int) -> None:
            nonlocal done
            for i in range(PAYMENTS_EACH):
                customer = customers[(n + i) % CUSTOMERS]
                amount = rng.randint(100, 20_000)
                r = await client.create_payment({"merchant_order_no": f"w-{n}-{i}", "amount": amount,
                                                 "currency": "CNY", "method": "wallet", "customer_id": customer})
                assert r.status == 201 and r.body["status"] == "succeeded", r.body
                paid[r.body["id"]], spent[customer] = amount, spent[customer] + amount
                if i % 4 == 3:  # a partial refund of this payment: a debit of the hot merchant account
                    part = amount // 3
                    rf = await client.refund(r.body["id"], part, f"rf-{n}-{i}")
                    assert rf.status in (200, 201) and rf.body["status"] == "succeeded", rf.body
                    refunded[r.body["id"]], spent[customer] = part, spent[customer] - part
                done += 1
                if done >= PAYERS * PAYMENTS_EACH // 3:
                    third.set()

        killed_at: list[Any] = []

        async def killer() -> None:
            await third.wait()
            running.kill("flush-1")  # mid-run, whatever it was doing
            killed_at.append(await pool.fetchval("SELECT clock_timestamp()"))

        await asyncio.gather(*(payer(n) for n in range(PAYERS)), killer())
        accounts = [a["id"] for a in (await client.accounts()).body["data"]]
    assert await running.procs["flush-1"].wait() == -9
    assert running.procs["gateway"].returncode is None, running.tail("gateway")

    merchant_accounts = await pool.fetch("SELECT id FROM accounts WHERE id = ANY($1::text[])"
                                         " OR parent_id = ANY($1::text[])", accounts)
    ids = [r["id"] for r in merchant_accounts]
    hot = [r["id"] for r in await pool.fetch("SELECT id FROM accounts WHERE id = ANY($1::text[]) AND hot", ids)]
    assert hot, "the merchant's pending account should be hot (buffered)"
    deadline = asyncio.get_running_loop().time() + 30
    while await pool.fetchval("SELECT count(*) FROM journal_legs WHERE status = 'buffered' AND txn_no IN"
                              " (SELECT txn_no FROM journal_legs WHERE account_id = ANY($1::text[]))", ids):
        assert asyncio.get_running_loop().time() < deadline, "the surviving flusher did not drain the buffers\n" + \
            running.tail("flush-2")
        await asyncio.sleep(0.1)

    wallets = [r["wallet_account_id"] for r in await pool.fetch(
        "SELECT wallet_account_id FROM customers WHERE id = ANY($1::text[])", customers)]
    async with pool.acquire() as conn:
        # every leg applied once, seq 1..n with running balances exact, balance = Σ legs, entries balanced
        await check_ledger(conn, [*ids, *wallets], floors=dict.fromkeys(ids, 0))
        for customer, wallet in zip(customers, wallets, strict=True):
            balance = await conn.fetchval("SELECT balance FROM accounts WHERE id = $1", wallet)
            assert balance == FUNDS - spent[customer], customer
        row = await conn.fetchrow("SELECT count(*) AS n, sum(amount) AS amount, sum(amount_refunded) AS refunded"
                                  " FROM payments WHERE merchant_id = $1 AND status = 'succeeded'", merchant["id"])
        assert (row["n"], row["amount"], row["refunded"]) == (len(paid), sum(paid.values()), sum(refunded.values()))
        entries = await conn.fetchval("SELECT count(DISTINCT txn_no) FROM journal_legs WHERE account_id ="
                                      " ANY($1::text[])", ids)
        assert entries == len(paid) + len(refunded)  # each booking once: no replay booked twice
        # the buffered legs went through the flushers, and the survivor kept applying after the kill
        after = await conn.fetchval("SELECT count(*) FROM journal_legs WHERE account_id = ANY($1::text[])"
                                    " AND applied_at > $2", hot, killed_at[0])
        assert after > 0, running.tail("flush-2")
