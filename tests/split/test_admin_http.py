"""The admin routes over real HTTP (aiohttp app from the factory) and the CLI as a real process."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from accounts.split_store import split_view
from engine.bootstrap import create_app
from engine.services import SERVICES
from engine.settings import Settings
from tests.conftest import Servers
from tests.factories import rand_id
from tests.split.helpers import credit, debit, open_family

TOKEN = "split-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def client(servers: Servers, pool: asyncpg.Pool) -> AsyncIterator[TestClient]:
    settings = Settings(admin_token=TOKEN, db_pool_min=1, db_pool_max=8, hot_sample_interval_s=1)
    app = create_app(settings, servers.database_url, servers.redis_url)
    async with TestClient(TestServer(app)) as c:
        yield c


async def test_split_route_splits_and_answers_typed_errors(client: TestClient, pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        fam = await open_family(conn)
    booker = client.app[SERVICES].booker
    await credit(booker, fam, 300)
    path = f"/admin/accounts/{fam.parent.id}/split"
    r = await client.post(path, json={"into": 4})
    assert r.status == 401 and (await r.json())["error"]["type"] == "authentication_error"
    for body, status, code in (({"into": 1}, 400, "invalid_split_count"), ({"into": 257}, 400, "invalid_split_count"),
                               ({"into": "4"}, 400, "invalid_body"), ({"into": 4, "x": 1}, 400, "invalid_body")):
        r = await client.post(path, json=body, headers=AUTH)
        err = (await r.json())["error"]
        assert (r.status, err["code"]) == (status, code), err
        assert set(err) == {"type", "code", "message", "param"}
    r = await client.post(f"/admin/accounts/{rand_id('acct')}/split", json={"into": 4}, headers=AUTH)
    assert r.status == 404 and (await r.json())["error"]["code"] == "unknown_account"
    r = await client.post(path, json={"into": 4}, headers=AUTH)
    body = await r.json()
    assert r.status == 200 and body["sub_count"] == 4 and body["balance"] == 300
    assert sum(s["balance"] for s in body["sub_accounts"]) == 300
    # Concurrent resizes of one account: the losers get a 409, nothing half-done.
    rs = await asyncio.gather(*(client.post(path, json={"into": n}, headers=AUTH) for n in (8, 16, 32)))
    assert {r.status for r in rs} <= {200, 409} and 200 in {r.status for r in rs}
    for r in rs:
        if r.status == 409:
            assert (await r.json())["error"]["code"] == "split_in_progress"
    r = await client.get(path, headers=AUTH)
    view = await r.json()
    assert view["balance"] == 300 and view["sub_count"] in (8, 16, 32)
    async with pool.acquire() as conn:
        assert (await split_view(conn, fam.parent.id)).balance_minor == 300


async def test_hot_candidates_lists_busy_accounts_with_figures(client: TestClient, pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        fam = await open_family(conn)
    await asyncio.sleep(1.1)  # let the sampler mark the journal before the burst
    await asyncio.gather(*(credit(client.app[SERVICES].booker, fam, 1) for _ in range(60)))
    r = await client.get("/admin/accounts/hot-candidates", headers=AUTH)
    body = await r.json()
    assert r.status == 200
    mine = [c for c in body["data"] if c["account_id"] == fam.parent.id]
    assert mine and mine[0]["legs_per_s"] > 0 and mine[0]["hot"] is False
    assert set(mine[0]) == {"account_id", "legs_per_s", "lock_waiters_avg", "hot", "sub_count", "suggest"}
    r = await client.get("/admin/accounts/hot-candidates")
    assert r.status == 401


def test_cli_splits_an_account(servers: Servers, pool: asyncpg.Pool) -> None:
    loop = asyncio.new_event_loop()
    try:
        conn = loop.run_until_complete(asyncpg.connect(servers.database_url))
        fam = loop.run_until_complete(open_family(conn))
        loop.run_until_complete(conn.close())
    finally:
        loop.close()
    env = {**os.environ, "PAYENGINE_DATABASE_URL": servers.database_url, "PAYENGINE_REDIS_URL": servers.redis_url}
    cli = [sys.executable, "-m", "engine.cli.main", "accounts", "split"]
    done = subprocess.run([*cli, fam.parent.id, "--into", "3"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "3 sub-accounts" in done.stdout and done.stdout.count(".s00") == 3
    bad = subprocess.run([*cli, fam.parent.id, "--into", "300"], env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "invalid_split_count" in bad.stderr


async def test_auto_promotion_flags_a_busy_credit_only_account_hot(servers: Servers, pool: asyncpg.Pool) -> None:
    settings = Settings(admin_token=TOKEN, db_pool_min=1, db_pool_max=8, hot_sample_interval_s=1,
                        hot_auto_promote=True, hot_promote_legs_per_s=5)
    async with pool.acquire() as conn:
        busy, debited = await open_family(conn), await open_family(conn)
    async with TestClient(TestServer(create_app(settings, servers.database_url, servers.redis_url))) as c:
        await asyncio.sleep(1.1)
        booker = c.app[SERVICES].booker
        await credit(booker, debited, 500)
        await asyncio.gather(*(credit(booker, busy, 1) for _ in range(40)),
                             *(debit(booker, debited, 1) for _ in range(40)))
        await asyncio.sleep(2.2)
    async with pool.acquire() as conn:
        hot = dict(await conn.fetch("SELECT id, hot FROM accounts WHERE id = ANY($1::text[])",
                                    [busy.parent.id, debited.parent.id]))
    assert hot == {busy.parent.id: True, debited.parent.id: False}  # an account taking debits is left alone
