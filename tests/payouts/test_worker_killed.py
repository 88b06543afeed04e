"""A `payengine gateway` process killed (SIGKILL) after the channel accepted a payout but before its answer
arrived: the next process takes the payout once the lease runs out, asks the channel, and pays it exactly once.

The payout names a channel (`pokill`) that only these processes serve, so the world's in-process worker
leaves it alone; an API-only app (no in-process gateway) takes the request.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import Any

import aiohttp
import pytest

from channels.sim import SimFaults, SimKind, SimProfile, start_simulator
from engine.bootstrap import create_app
from engine.channel_specs import ChannelSpec
from engine.client import PayEngineClient, create_merchant
from tests.conftest import Servers
from tests.payouts.conftest import ADMIN_TOKEN, World, _free_socket, eventually, payout_body, payout_settings
from tests.serving import serving

pytestmark = pytest.mark.slow
KILL_KEY = "po-kill-key"


def _gateway(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "engine.cli.main", "gateway"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def test_payout_paid_once_when_the_worker_process_dies_mid_payout(servers: Servers, world: World) -> None:
    sim = await start_simulator(SimProfile(name="pokill-sim", kind=SimKind.BANK, key=KILL_KEY,
                                           faults=SimFaults(hang_ms=60_000), seed=3))
    spec = ChannelSpec("pokill", "banksim", sim.url, "sim-merchant", KILL_KEY)
    sock = _free_socket()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    api = create_app(payout_settings(url, sim.url, channels=(spec,), default_channel="pokill",
                                     gateway_in_process=False), world.db_url, servers.redis_url)
    env = {**os.environ, "PAYENGINE_DATABASE_URL": world.db_url, "PAYENGINE_REDIS_URL": servers.redis_url,
           "PAYENGINE_CHANNELS": f"pokill=banksim,{sim.url},sim-merchant,{KILL_KEY}",
           "PAYENGINE_HOT_INTERNAL_ACCOUNTS": "0", "PAYENGINE_PAYOUT_LEASE_S": "2",
           "PAYENGINE_PAYOUT_POLL_INTERVAL_MS": "20", "PAYENGINE_PAYOUT_QUERY_DELAY_MS": "150",
           "PAYENGINE_PAYOUT_NOT_FOUND_SAFE_S": "31", "PAYENGINE_GATEWAY_CALL_TIMEOUT_MS": "30000",
           "PAYENGINE_LOG_LEVEL": "WARNING"}
    first = second = None
    try:
        async with serving(api, sock=sock), aiohttp.ClientSession() as http:
            async def sim_json(method: str, path: str, body: Any = None) -> Any:
                async with http.request(method, sim.url + path, json=body) as r:
                    assert r.status == 200, await r.text()
                    return await r.json()

            try:
                created = await create_merchant(url, ADMIN_TOKEN, {"name": "kill", "currencies": ["CNY"]}, http)
                client = PayEngineClient(url, created["id"], created["secret"], session=http, retries_max=0)
                customer = (await client.create_customer("ext-kill", "CNY")).body["id"]
                assert (await client.topup(customer, 10_000, "tu-kill")).status == 201
                funds_before = (await sim_json("GET", "/sim/admin/payout-funds"))["funds_minor"]
                await sim_json("PUT", "/sim/admin/faults", {"payout_timeout_rate": 1.0})  # accepted, answer hangs
                payout = (await client.create_payout(payout_body(7_000, customer_id=customer))).body
                assert payout["channel"] == "pokill", payout
                first = _gateway(env)

                async def accepted_at_channel() -> bool:
                    async with http.get(f"{sim.url}/sim/admin/payouts/{payout['txn_no']}") as r:
                        return r.status == 200

                await eventually(accepted_at_channel, 30.0)
                first.send_signal(signal.SIGKILL)
                first.wait(timeout=10)
                async with world.pool.acquire() as conn:
                    assert await conn.fetchval("SELECT status FROM payouts WHERE id = $1", payout["id"]) == "sending"
                assert await world.entries(payout["id"]) == ["PAYOUT_FREEZE"]
                await sim_json("PUT", "/sim/admin/faults", {})
                second = _gateway(env)
                done = await world.wait_payout(client, payout["id"], timeout_s=30)
            finally:
                for proc in (first, second):
                    if proc is not None and proc.poll() is None:
                        proc.send_signal(signal.SIGTERM)
                        proc.wait(timeout=30)
        assert done["status"] == "succeeded", done
        async with world.pool.acquire() as conn:
            row = await conn.fetchrow("SELECT sends, attempts FROM payouts WHERE id = $1", payout["id"])
        assert row["sends"] == 1 and row["attempts"] >= 2  # the second process asked; it did not send again
        assert await world.entries(payout["id"]) == ["PAYOUT_FREEZE", "PAYOUT_SETTLE"]
        assert len(sim.runtime.payouts.payouts) == 1
        assert sim.runtime.payouts.funds_minor == funds_before - 7_000  # the money left once
        assert await world.balance(customer, "customer_wallet") == 3_000
        assert await world.balance(customer, "customer_frozen") == 0
    finally:
        await sim.close()
