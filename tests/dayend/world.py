"""The whole engine for accounting-day tests: API + gateway app on a real port, two channel simulators,
the buffer's flushers, all on the module's own database. Merchants and customers come from the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
import redis.asyncio as aioredis
from aiohttp import web

from buffer.runner import FlushRunner
from buffer.tuning import BufferTuning, LiveTuning
from channels.sim import RunningSimulator, SimFaults, SimKind, SimProfile, start_simulator
from channels.sim.statement import StatementRow
from channels.sim.statement_csv import render_wx_statement
from engine.bootstrap import create_app
from engine.channel_specs import ChannelSpec
from engine.client import PayEngineClient, create_merchant
from engine.settings import Settings
from tests.serving import serving

ADMIN_TOKEN = "dayend-admin-token"
WX_KEY, BANK_KEY = "de-wallet-key", "de-bank-key"
CHANNELS = ("wxsim", "banksim")
T = Any


@dataclass
class Paid:
    """One payment as the merchant saw it, plus what we did to it at the channel."""

    id: str
    txn_no: str
    merchant_id: str
    amount: int
    fee: int
    method: str
    channel: str | None = None
    refunds: list[tuple[int, int]] = field(default_factory=list)  # (amount, fee share)


@dataclass
class World:
    url: str
    http: aiohttp.ClientSession
    pool: asyncpg.Pool
    database_url: str
    redis_url: str
    sims: dict[str, RunningSimulator]
    settings: Settings

    async def admin(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        async with self.http.request(method, self.url + path, json=body, headers=headers) as r:
            return r.status, await r.json()

    async def merchant(self, fee_bps: int, fee_fixed: int, hot: bool = False) -> PayEngineClient:
        body = {"name": "dayend merchant", "currencies": ["CNY"], "fee_bps": fee_bps, "fee_fixed": fee_fixed,
                "hot": hot}
        created = await create_merchant(self.url, ADMIN_TOKEN, body, self.http)
        # A merchant system keeps retrying a 503 (hot account behind) with the same key; so does this day.
        return PayEngineClient(self.url, created["id"], created["secret"], session=self.http, retries_max=10)

    async def sim(self, channel: str, method: str, path: str, body: Any = None) -> Any:
        async with self.http.request(method, self.sims[channel].url + path, json=body) as r:
            assert r.status == 200, await r.text()
            if r.content_type == "application/json":
                return await r.json()
            return await r.text()

    async def seed(self, channel: str, day: date, **discrepancies: Any) -> None:
        await self.sim(channel, "PUT", f"/sim/admin/discrepancies/{day.isoformat()}", discrepancies)

    async def eventually(self, check: Callable[[], Awaitable[bool]], timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not await check():
            if time.monotonic() > deadline:
                raise AssertionError("condition never held")
            await asyncio.sleep(0.05)

    async def buffered_legs(self) -> int:
        async with self.pool.acquire() as conn:
            return int(await conn.fetchval("SELECT count(*) FROM journal_legs WHERE status = 'buffered'"))


async def _stale_statements(request: web.Request) -> web.Response:
    """A channel whose file server hands out yesterday's file whatever day is asked (wallet format)."""
    day = date.fromisoformat(request.match_info["day"]) - timedelta(days=1)
    at = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=10)
    rows = [StatementRow("payment", f"STALE{i}", f"STALETX{i}", 100 + i, "CNY", "SUCCESS", at) for i in range(3)]
    return web.Response(text=render_wx_statement("sim-merchant", rows), content_type="text/csv")


def _sim_profile(kind: SimKind, key: str) -> SimProfile:
    return SimProfile(name=f"{kind.value}-de", kind=kind, key=key, notify_schedule_s=(0.0, 0.05, 0.1, 0.2, 0.4),
                      notify_timeout_s=1.0, faults=SimFaults(), seed=11)


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextlib.asynccontextmanager
async def running_world(database_url: str, redis_url: str, pool: asyncpg.Pool) -> AsyncIterator[World]:
    wx = await start_simulator(_sim_profile(SimKind.WALLET, WX_KEY))
    stale_app = web.Application()
    stale_app.router.add_get("/sim/statements/{day}", _stale_statements)
    bank: RunningSimulator | None = None
    try:
        async with serving(stale_app) as stale:
            bank = await start_simulator(_sim_profile(SimKind.BANK, BANK_KEY))
            sock = _free_socket()
            url = f"http://127.0.0.1:{sock.getsockname()[1]}"
            settings = Settings(
                admin_token=ADMIN_TOKEN, db_pool_max=40, public_url=url, node_lease_s=60,
                channels=(ChannelSpec("wxsim", "wxsim", wx.url, "sim-merchant", WX_KEY),
                          ChannelSpec("banksim", "banksim", bank.url, "sim-merchant", BANK_KEY),
                          ChannelSpec("stale", "wxsim", stale.url, "sim-merchant", WX_KEY, cost_bps=9000)),
                gateway_poll_interval_ms=5, janitor_interval_ms=600_000, janitor_query_schedule_s=(3600.0,),
                dayend_poll_ms=50, dayend_drain_timeout_s=60, accounting_date_refresh_ms=100,
                dayend_at="off",  # these tests run day-end themselves, on dates of their choosing
                # This world tests the accounting day, not back-pressure (tests/buffer has its own): on a loaded
                # 2-core machine one process runs clients, API, gateway, simulators and flushers, so let the
                # hot accounts lag further before refusing.
                buffer_max_lag_ms=60_000,
            )
            app = create_app(settings, database_url, redis_url)
            async with serving(app, sock=sock):
                redis = aioredis.Redis.from_url(redis_url, decode_responses=False)
                tuning = LiveTuning(pool, BufferTuning(batch_size=2000, flush_interval_ms=20, flusher_concurrency=2,
                                                         max_lag_ms=60_000))
                flushers = FlushRunner(database_url, redis, tuning, grace_ms=100)
                flushers.start()
                try:
                    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200)) as http:
                        yield World(url, http, pool, database_url, redis_url, {"wxsim": wx, "banksim": bank},
                                    settings)
                finally:
                    await flushers.stop()
                    await redis.aclose()
    finally:
        # After both servers are down; bank is None only if startup failed before it.
        await wx.close()
        if bank is not None:
            await bank.close()


def new_ref(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


async def bounded(limit: int, jobs: list[Callable[[], Awaitable[T]]]) -> list[T]:
    """Run ``jobs`` with at most ``limit`` at once; results in order."""
    gate = asyncio.Semaphore(limit)

    async def one(job: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await job()
    return list(await asyncio.gather(*(one(j) for j in jobs)))
