"""The gateway under test: the real app (API + in-process gateway) on a real port, real simulators.

Channels configured: `wxsim` and `banksim` (simulators with a fast notify schedule) and `rogue`, a
small bank-protocol server that answers voucher requests with garbage or the wrong amount/currency,
ranked last by cost so it only serves when named. Tests share the app (one gateway worker per test
session) and run one at a time; each resets the faults it set.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import asyncpg
import msgspec
import pytest
from aiohttp import web

from channels import signing
from channels.amounts import major_to_minor, minor_to_major
from channels.sim import RunningSimulator, SimFaults, SimKind, SimProfile, start_simulator
from engine.bootstrap import create_app
from engine.channel_specs import ChannelSpec
from engine.client import PayEngineClient, create_merchant
from engine.gateway.health import ChannelHealth
from engine.services import SERVICES
from engine.settings import Settings
from tests.conftest import Servers
from tests.serving import serving

ADMIN_TOKEN = "gateway-test-admin-token"
FAST_SCHEDULE_S = (0.0, 0.05, 0.1, 0.2, 0.4, 0.8)
WX_KEY, BANK_KEY, ROGUE_KEY = "gw-wallet-key", "gw-bank-key", "gw-rogue-key"
# First janitor query 2 s after the voucher is ready: notify tests finish before it, janitor tests wait.
QUERY_SCHEDULE_S = (2.0, 0.3, 0.3, 0.3, 0.3)


def sim_profile(kind: SimKind, key: str) -> SimProfile:
    return SimProfile(name=f"{kind.value}-gw", kind=kind, key=key, notify_schedule_s=FAST_SCHEDULE_S,
                      notify_timeout_s=1.0, faults=SimFaults(hang_ms=3_000), seed=7)


@dataclass
class RogueBank:
    """Speaks the bank protocol, signs correctly, and lies about the order as `mode` says."""

    mode: str = "garbage"  # garbage | wrong_amount | wrong_currency
    calls: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.calls += 1
        params = dict((await request.post()).items())
        if self.mode == "garbage":
            return web.Response(text="<html>502 upstream says hello</html>", content_type="text/html")
        amount = minor_to_major(major_to_minor(str(params["total_amount"])) + (1 if self.mode == "wrong_amount" else 0))
        fields = {"code": "10000", "msg": "Success", "out_trade_no": str(params["out_trade_no"]),
                  "trade_no": "RG" + uuid.uuid4().hex[:12], "qr_code": "https://rogue.example/pay?o=1",
                  "total_amount": amount, "currency": "USD" if self.mode == "wrong_currency" else
                  str(params.get("currency", "CNY"))}
        fields["sign"] = signing.bank_sign(ROGUE_KEY, fields)
        return web.Response(body=msgspec.json.encode(fields), content_type="application/json")


@dataclass
class Gw:
    url: str
    settings: Settings
    http: aiohttp.ClientSession
    pool: asyncpg.Pool
    sims: dict[str, RunningSimulator]
    rogue: RogueBank
    app: web.Application

    async def merchant(self) -> PayEngineClient:
        body = {"name": "gateway test merchant", "currencies": ["CNY", "USD"], "fee_bps": 60, "fee_fixed": 0}
        created = await create_merchant(self.url, ADMIN_TOKEN, body, self.http)
        return PayEngineClient(self.url, created["id"], created["secret"], session=self.http)

    async def channel_payment(self, client: PayEngineClient, amount: int = 1999, channel: str = "wxsim",
                              **extra: Any) -> dict[str, Any]:
        created = await client.create_payment({"merchant_order_no": "ord-" + uuid.uuid4().hex, "amount": amount,
                                               "currency": "CNY", "method": "channel", "channel": channel, **extra})
        assert created.status == 201, created.body
        assert created.body["status"] == "pending_voucher" and created.body["voucher"]["status"] == "pending"
        body: dict[str, Any] = created.body
        return body

    async def wait_payment(self, client: PayEngineClient, payment_id: str,
                           done: Callable[[dict[str, Any]], bool], timeout_s: float = 8.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            got = await client.get_payment(payment_id)
            assert got.status == 200, got.body
            body: dict[str, Any] = got.body
            if done(body):
                return body
            if time.monotonic() > deadline:
                raise AssertionError(f"payment never got there: {body}")
            await asyncio.sleep(0.05)

    async def ready_payment(self, client: PayEngineClient, **kw: Any) -> dict[str, Any]:
        created = await self.channel_payment(client, **kw)
        return await self.wait_payment(client, created["id"], lambda p: p["voucher"]["status"] != "pending")

    async def pay(self, channel: str, pay_url: str, **extra: Any) -> dict[str, Any]:
        async with self.http.post(f"{self.sims[channel].url}/sim/pay", json={"pay_url": pay_url, **extra}) as r:
            assert r.status == 200, await r.text()
            answer: dict[str, Any] = await r.json()
            return answer

    async def set_faults(self, channel: str, **faults: Any) -> None:
        async with self.http.put(f"{self.sims[channel].url}/sim/admin/faults", json=faults) as r:
            assert r.status == 200, await r.text()

    def forget_channel_health(self) -> None:
        """Start the gateway's breakers and measured quality afresh: a failure burst stays in a channel's
        quality for the quality window (60 s) and would fail the next tests' payments over."""
        gateway = self.app[SERVICES].gateway
        gateway.health = ChannelHealth(gateway.health.policy, gateway.health.quality_window_s)

    async def admin(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        async with self.http.request(method, self.url + path, json=body, headers=headers) as r:
            return r.status, await r.json()

    async def exceptions(self, **query: str) -> list[dict[str, Any]]:
        status, body = await self.admin("GET", "/admin/exceptions?" + "&".join(f"{k}={v}" for k, v in query.items()))
        assert status == 200, body
        found: list[dict[str, Any]] = body["data"]
        return found

    async def entries(self, ref: str) -> list[str]:
        """Transaction codes booked with this ref, oldest first."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch("SELECT txn_code FROM journal_entries WHERE ref = $1 ORDER BY created_at", ref)
        return [r["txn_code"] for r in rows]

    async def eventually(self, check: Callable[[], Awaitable[bool]], timeout_s: float = 8.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not await check():
            if time.monotonic() > deadline:
                raise AssertionError("condition never held")
            await asyncio.sleep(0.05)


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@dataclass
class _Shared:
    """One gateway world per test session, however many modules import the fixture.

    A module that imports `gw` (e.g. tests/api/test_payment_sync.py) gets its own session fixture
    instance from pytest; two apps with in-process workers on one database would take each other's
    jobs and call the wrong simulators. So the instances share one world and the last one stops it."""

    world: Gw | None = None
    users: int = 0
    stop: Callable[[], Awaitable[None]] | None = None


_SHARED = _Shared()


async def _start_world(servers: Servers, pool: asyncpg.Pool) -> tuple[Gw, Callable[[], Awaitable[None]]]:
    """The world and the coroutine function that stops it: the session, the app, the rogue bank, then wx,
    then bank (the stack unwinds in reverse order of entry)."""
    async with contextlib.AsyncExitStack() as stack:
        wx = await start_simulator(sim_profile(SimKind.WALLET, WX_KEY))
        bank = await start_simulator(sim_profile(SimKind.BANK, BANK_KEY))
        stack.push_async_callback(bank.close)
        stack.push_async_callback(wx.close)
        rogue = RogueBank()
        rogue_app = web.Application()
        rogue_app.router.add_post("/gateway.do", rogue.handle)
        rogue_served = await stack.enter_async_context(serving(rogue_app))
        sock = _free_socket()
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        settings = Settings(
            admin_token=ADMIN_TOKEN, db_pool_max=40, public_url=url,
            channels=(ChannelSpec("wxsim", "wxsim", wx.url, "sim-merchant", WX_KEY),
                      ChannelSpec("banksim", "banksim", bank.url, "sim-merchant", BANK_KEY, cost_bps=80),
                      ChannelSpec("rogue", "banksim", rogue_served.url, "sim-merchant", ROGUE_KEY, cost_bps=5000)),
            gateway_call_timeout_ms=1000, gateway_poll_interval_ms=10, gateway_backoff_base_ms=50,
            gateway_backoff_max_ms=200, gateway_breaker_failures=3, gateway_breaker_cool_down_ms=1000,
            janitor_interval_ms=100, janitor_query_schedule_s=QUERY_SCHEDULE_S, gateway_quality_window_s=2,
        )
        app = create_app(settings, servers.database_url, servers.redis_url)
        await stack.enter_async_context(serving(app, sock=sock))
        http = aiohttp.ClientSession()
        stack.push_async_callback(http.close)
        # Started: the caller's stop() unwinds it from here on.
        return Gw(url, settings, http, pool, {"wxsim": wx, "banksim": bank}, rogue, app), stack.pop_all().aclose


@pytest.fixture(scope="session")
async def gw(servers: Servers, pool: asyncpg.Pool) -> AsyncIterator[Gw]:
    if _SHARED.world is None:
        _SHARED.world, _SHARED.stop = await _start_world(servers, pool)
    _SHARED.users += 1
    try:
        yield _SHARED.world
    finally:
        _SHARED.users -= 1
        if _SHARED.users == 0 and _SHARED.stop is not None:
            await _SHARED.stop()
            _SHARED.world = _SHARED.stop = None
