"""Operator surface: GET /admin/buffer, GET|PUT /admin/buffer/settings (live), payengine buffer CLI."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator

import aiohttp
import asyncpg
import orjson
import pytest
from aiohttp import web

from accounts.model import Account, AccountId, AccountKind, OverdraftRule, Side
from buffer.tuning import BufferTuning, LiveTuning
from engine.bootstrap import create_app
from engine.ledger_admin.buffer import owner_of
from engine.ledger_admin.wire import BufferSettings, BufferSettingsChange
from engine.services import SERVICES
from engine.settings import Settings
from tests.buffer.world import open_world, pay
from tests.conftest import Servers
from tests.serving import serving

TOKEN = "buffer-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
async def app_url(servers: Servers) -> AsyncIterator[tuple[str, web.Application]]:
    settings = Settings(admin_token=TOKEN, db_pool_max=10, buffer_in_process_flushers=False)
    app = create_app(settings, servers.database_url, servers.redis_url)
    async with serving(app) as served:
        yield served.url, app


@pytest.fixture
async def stored_settings_restored(pool: asyncpg.Pool) -> AsyncIterator[None]:
    """Other tests' flushers read the same row: put back whatever was stored before."""
    before = await pool.fetchrow("SELECT * FROM buffer_settings")
    yield
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("DELETE FROM buffer_settings")
        if before is not None:
            cols = [k for k in before.keys() if k != "updated_at"]
            await conn.execute(f"INSERT INTO buffer_settings ({', '.join(cols)}) VALUES"
                               f" ({', '.join(f'${i + 1}' for i in range(len(cols)))})", *[before[c] for c in cols])


async def test_settings_put_is_validated_and_seen_live(app_url: tuple[str, web.Application], pool: asyncpg.Pool,
                                                       stored_settings_restored: None) -> None:
    url, _ = app_url
    watcher = LiveTuning(pool, BufferTuning())  # stands in for a running flusher process
    await watcher.refresh()
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/admin/buffer/settings") as r:
            assert r.status == 401
            assert (await r.json())["error"]["type"] == "authentication_error"
        async with http.put(f"{url}/admin/buffer/settings", headers=AUTH, json={"batch_size": 0}) as r:
            assert r.status == 400
            body = await r.json()
            assert body["error"]["param"] == "batch_size" and body["error"]["type"] == "invalid_request_error"
        async with http.put(f"{url}/admin/buffer/settings", headers=AUTH, json={"nope": 1}) as r:
            assert r.status == 400 and (await r.json())["error"]["param"] == "nope"
        current = watcher.cached.batch_size
        async with http.put(f"{url}/admin/buffer/settings", headers=AUTH,
                            json={"batch_size": current + 7, "max_lag_ms": 4321}) as r:
            assert r.status == 200
            assert (await r.json())["batch_size"] == current + 7
        async with http.get(f"{url}/admin/buffer/settings", headers=AUTH) as r:
            assert (await r.json())["max_lag_ms"] == 4321
    deadline = asyncio.get_running_loop().time() + 1.0
    while (await watcher.current()).batch_size != current + 7:
        assert asyncio.get_running_loop().time() < deadline, "change not seen within 1 s"
        await asyncio.sleep(0.05)


async def test_buffer_status_lists_hot_accounts(app_url: tuple[str, web.Application], pool: asyncpg.Pool,
                                                owner: asyncpg.Connection, servers: Servers) -> None:
    url, app = app_url
    world = await open_world(pool, customers=1, owner=owner)
    booker = app[SERVICES].booker
    assert booker.sink is not None
    await booker.sink.hot.refresh()  # type: ignore[attr-defined]
    for _ in range(3):
        await pay(booker, world, world.customers[0], 1000, 10)
    async with aiohttp.ClientSession() as http, http.get(f"{url}/admin/buffer", headers=AUTH) as r:
        assert r.status == 200
        rows = {row["account_id"]: row for row in (await r.json())["accounts"]}
    assert rows[world.merchant]["depth"] == 3 and rows[world.transit]["depth"] == 6
    assert rows[world.merchant]["pending"] == 2970 and rows[world.merchant]["oldest_age_ms"] >= 0
    # Whose each account is, not a bare acct_ id: owner, role and currency from the accounts table.
    owners = {r["id"]: (r["owner_id"], r["role"], r["currency"]) for r in await pool.fetch(
        "SELECT id, owner_id, role, currency FROM accounts WHERE id = ANY($1::text[])", world.hot)}
    for account in world.hot:
        assert (rows[account]["owner_id"], rows[account]["role"], rows[account]["currency"]) == owners[account]
    env = {**os.environ, "PAYENGINE_DATABASE_URL": servers.database_url, "PAYENGINE_REDIS_URL": servers.redis_url}
    code, out = await _cli(env, "buffer", "status", "--json")
    cli_rows = {row["account_id"]: row for row in orjson.loads(out)}
    assert code == 0 and cli_rows[world.merchant]["depth"] == 3
    assert (cli_rows[world.merchant]["owner_id"], cli_rows[world.merchant]["role"]) == owners[world.merchant][:2]
    code, out = await _cli(env, "buffer", "status")
    heading, *lines = out.splitlines()
    assert code == 0 and heading.split()[:5] == ["account", "owner", "role", "cur", "depth"]
    assert next(line for line in lines if line.startswith(world.merchant)).split()[:5] == [
        world.merchant, *owners[world.merchant], "3"]
    code, out = await _cli(env, "buffer", "tune", "--batch-size", "0")
    assert code == 2 and "batch_size" in out


async def _cli(env: dict[str, str], *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "engine.cli.main", *args, env=env,
                                                stdout=asyncio.subprocess.PIPE)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode()


def test_settings_wire_types_name_every_tuning_setting() -> None:
    """A tuning setting added to buffer/tuning.py must be shown and changeable over HTTP too."""
    names = tuple(BufferTuning().to_dict())
    assert BufferSettings.__struct_fields__ == names and BufferSettingsChange.__struct_fields__ == names


def test_a_sub_account_is_shown_as_its_parents_owner_and_role_with_its_index() -> None:
    sub = Account(AccountId("acct_sub"), AccountKind.MERCHANT, "mch_shop", "merchant_pending", "2202", "CNY",
                  Side.CREDIT, 0, 0, OverdraftRule(), True, AccountId("acct_parent"), 2, "open")
    assert owner_of(sub) == {"owner_id": "mch_shop", "role": "merchant_pending#2", "currency": "CNY"}
