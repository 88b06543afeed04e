"""The API process killed (SIGKILL) while batches are in flight, then restarted: every payment is booked
whole with its response stored, or not at all; every acknowledged payment is there; the ledger holds."""

from __future__ import annotations

import asyncio
import random
import sys
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import msgspec
import pytest

from engine.client import ApiResult, PayEngineClient, create_merchant
from tests.api.ledger import snapshot
from tests.batch.conftest import send_payment
from tests.buffer.world import check_ledger
from tests.conftest import Servers
from tests.packaging.entrypoint_run import REPO
from tests.scale.procs import Roles, free_port, wait_http

ADMIN = "batch-fault-admin"
CUSTOMERS, FUNDS = 8, 10_000_000
LANES = 48


class ApiProcesses(Roles):
    """``payengine`` of this checkout, run by the interpreter running the tests (no venv of its own needed)."""

    async def start(self, name: str, *argv: str) -> asyncio.subprocess.Process:
        log = (self.logs / f"{name}.log").open("wb")
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "engine.cli.main", *argv, env=self.env,
                                                    cwd=REPO, stdout=log, stderr=log, start_new_session=True)
        log.close()
        self.procs[name] = proc
        return proc


@pytest.fixture
async def roles(servers: Servers, tmp_path: Path) -> Any:
    port = free_port()
    env = {
        "PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
        "PAYENGINE_DATABASE_URL": servers.database_url, "PAYENGINE_REDIS_URL": servers.redis_url,
        "PAYENGINE_DATA_DIR": str(tmp_path / "data"), "PAYENGINE_ADMIN_TOKEN": ADMIN, "PAYENGINE_LOG_LEVEL": "WARNING",
        "PAYENGINE_DB_POOL_MAX": "16", "PAYENGINE_GATEWAY_IN_PROCESS": "0", "PAYENGINE_WEBHOOKS_IN_PROCESS": "0",
        "PAYENGINE_BUFFER_RECOVERY_GRACE_MS": "500", "PAYENGINE_BATCH_MAX": "64",
    }
    env["PYTHONPATH"] = str(REPO)
    running = ApiProcesses(tmp_path, env)
    try:
        yield running, port
    finally:
        await running.stop_all()


@pytest.mark.slow
async def test_api_killed_mid_batch_books_each_payment_whole_or_not_at_all(roles: Any, pool: asyncpg.Pool) -> None:
    running, port = roles
    url = f"http://127.0.0.1:{port}"
    await wait_http(f"{url}/readyz", await running.start("api", "serve", "--port", str(port)))
    rng = random.Random(11)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        merchant = await create_merchant(url, ADMIN, {"name": "batch kill", "currencies": ["CNY"], "fee_bps": 60,
                                                      "hot": True}, http)
        client = PayEngineClient(url, merchant["id"], merchant["secret"], session=http, retries_max=0)
        customers = []
        for i in range(CUSTOMERS):
            c = await client.create_customer(f"kill-{uuid.uuid4().hex[:8]}-{i}")
            assert (await client.topup(c.body["id"], FUNDS, f"fund-{i}")).status == 201
            customers.append(c.body["id"])
        sent: dict[str, dict[str, Any]] = {}  # key -> body
        acked: dict[str, ApiResult] = {}  # key -> the 201 the client saw
        enough = asyncio.Event()

        async def lane(n: int) -> None:
            for i in range(10_000):
                key = f"kill-{n}-{i}"
                sent[key] = {"method": "wallet", "amount": rng.randint(100, 5_000), "currency": "CNY",
                             "customer_id": customers[rng.randrange(CUSTOMERS)], "merchant_order_no": key}
                try:
                    r = await send_payment(client, sent[key], key)
                except (aiohttp.ClientError, TimeoutError):
                    return  # the process died under this request: its fate is checked below
                assert r.status == 201, r.body
                acked[key] = r
                if len(acked) >= 600:
                    enough.set()

        lanes = [asyncio.create_task(lane(n)) for n in range(LANES)]
        await asyncio.wait_for(enough.wait(), 120)
        running.kill("api")  # batches in flight: some committing, some queued, some answered
        await asyncio.gather(*lanes)
        assert await running.procs["api"].wait() == -9
        unanswered = [k for k in sent if k not in acked]
        assert unanswered, "the kill should have cut some requests off"

        await wait_http(f"{url}/readyz", await running.start("api-2", "serve", "--port", str(port)))
        rows = {r["merchant_order_no"]: r for r in await pool.fetch(
            "SELECT p.id, p.merchant_order_no, p.amount, p.customer_id, k.status_code, k.response_body"
            " FROM payments p LEFT JOIN idempotency_keys k ON k.merchant_id = p.merchant_id"
            "  AND k.key = p.merchant_order_no WHERE p.merchant_id = $1", merchant["id"])}
        keys = {r["key"]: r for r in await pool.fetch(
            "SELECT key, status_code, response_body FROM idempotency_keys WHERE merchant_id = $1 AND key LIKE 'kill-%'",
            merchant["id"])}
        for key, r in acked.items():  # every acknowledged payment is booked, with the answer it got stored
            assert rows[key]["id"] == r.body["id"]
            assert msgspec.json.decode(rows[key]["response_body"]) == r.body
        for key, row in rows.items():  # nothing booked without its stored response, nothing stored without it
            assert row["status_code"] == 201, key
        assert {k for k, v in keys.items() if v["status_code"] == 201} == set(rows)
        # Every cut-off request, retried with its key, gets one answer: its payment (replayed or booked now).
        for key in unanswered:
            again = await send_payment(client, sent[key], key)
            assert again.status == 201, again.body
            if key in rows:
                assert again.body["id"] == rows[key]["id"] and again.headers.get("Idempotent-Replayed") == "true"
        accounts = [a["id"] for a in (await client.accounts()).body["data"]]

    booked = {r["merchant_order_no"]: r for r in await pool.fetch(
        "SELECT merchant_order_no, amount, customer_id FROM payments WHERE merchant_id = $1", merchant["id"])}
    assert set(booked) == set(sent)
    ids = [r["id"] for r in await pool.fetch("SELECT id FROM accounts WHERE id = ANY($1::text[])"
                                             " OR parent_id = ANY($1::text[])", accounts)]
    deadline = asyncio.get_running_loop().time() + 60
    while await pool.fetchval("SELECT count(*) FROM journal_legs WHERE status = 'buffered'"
                              " AND account_id = ANY($1::text[])", ids):
        assert asyncio.get_running_loop().time() < deadline, "buffered legs were not recovered\n" + \
            running.tail("api-2")
        await asyncio.sleep(0.2)
    wallets = {r["id"]: r["wallet_account_id"] for r in await pool.fetch(
        "SELECT id, wallet_account_id FROM customers WHERE id = ANY($1::text[])", customers)}
    async with pool.acquire() as conn:
        await check_ledger(conn, [*ids, *wallets.values()], floors=dict.fromkeys(wallets.values(), 0))
        for customer, wallet in wallets.items():
            spent = sum(b["amount"] for b in booked.values() if b["customer_id"] == customer)
            assert await conn.fetchval("SELECT balance FROM accounts WHERE id = $1", wallet) == FUNDS - spent
        entries = await conn.fetchval("SELECT count(DISTINCT txn_no) FROM journal_legs WHERE account_id ="
                                      " ANY($1::text[])", ids)
        assert entries == len(booked)
    await snapshot(pool, [])
