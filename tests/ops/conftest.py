"""The ops kit under test: promtool and prometheus from Debian's `prometheus` package, a real engine on a
database of its own with hot accounts and a flusher the test starts and stops, and payers paying over HTTP.

The engine runs without in-process flushers (PAYENGINE_BUFFER_IN_PROCESS_FLUSHERS=0, as in docker-compose);
``Engine.flushers`` is a FlushRunner the tests start and stop, standing in for `payengine flush`. Its database
is private because every other test's in-process flushers flush every hot account of the shared one.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web

from buffer.runner import FlushRunner
from buffer.tuning import BufferTuning, LiveTuning
from engine.bootstrap import create_app
from engine.client import PayEngineClient, create_merchant
from engine.http.health import metrics_listener
from engine.services import SERVICES
from engine.settings import Settings
from tests.conftest import Servers
from tests.databases import private_database
from tests.serving import HOST, serving

ADMIN_TOKEN = "ops-admin-token"
INSTALL_HINT = "install Debian's prometheus package (`make prometheus-tools`, or apt-get install -y prometheus)"
PAYERS = 4
PAY_PAUSE_S = 0.05  # per payer: ~60 payments/s in all, enough to see every buffer panel move


def tool(name: str) -> str:
    """The path of a binary of the `prometheus` package; the test is skipped, saying how to install it, if absent."""
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} not found: {INSTALL_HINT}")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Engine:
    url: str
    metrics_url: str  # the same /metrics on a port of its own (PAYENGINE_METRICS_PORT, as each API worker serves)
    database_url: str
    redis_url: str
    app: web.Application
    session: aiohttp.ClientSession
    merchant: PayEngineClient
    customers: list[str]
    flushers: FlushRunner | None = None
    payments: dict[int, int] = field(default_factory=dict)  # status -> count, over every test
    paid_before: int = 0  # sum of payments when the current `paying` block began

    async def start_flushers(self) -> None:
        svc = self.app[SERVICES]
        self.flushers = FlushRunner(self.database_url, svc.redis, LiveTuning(svc.pool, BufferTuning()))
        self.flushers.start("ops-test-flushers")

    async def stop_flushers(self) -> None:
        if self.flushers is not None:
            await self.flushers.stop()
            self.flushers = None

    async def hot_accounts(self) -> list[str]:
        rows = await self.app[SERVICES].pool.fetch("SELECT id FROM accounts WHERE hot ORDER BY id")
        return [r["id"] for r in rows]

    async def buffered_legs(self) -> int:
        count: int = await self.app[SERVICES].pool.fetchval(
            "SELECT count(*) FROM journal_legs WHERE status = 'buffered'")
        return count

    async def paid(self, count: int, timeout_s: float = 30) -> None:
        """Wait until the payers of the current ``paying`` block have made ``count`` payment requests."""
        deadline = time.monotonic() + timeout_s
        while sum(self.payments.values()) - self.paid_before < count:
            assert time.monotonic() < deadline, f"payers made {self.payments} in {timeout_s} s"
            await asyncio.sleep(0.05)

    async def drain(self, timeout_s: float = 30) -> None:
        """Flush until nothing is buffered, then stop the flushers again."""
        await self.start_flushers()
        deadline = time.monotonic() + timeout_s
        while await self.buffered_legs():
            assert time.monotonic() < deadline, "buffers did not drain"
            await asyncio.sleep(0.1)
        await self.stop_flushers()

    @contextlib.asynccontextmanager
    async def paying(self) -> AsyncIterator[None]:
        """Payers paying the hot merchant over HTTP (no client retries: a 503 is counted, not retried)."""
        stop = asyncio.Event()
        self.paid_before = sum(self.payments.values())

        async def payer(index: int) -> None:
            client = PayEngineClient(self.url, self.merchant.merchant_id, self.merchant.secret, retries_max=0,
                                     session=self.session)
            n = 0
            while not stop.is_set():
                customer = self.customers[(index + n * PAYERS) % len(self.customers)]
                n += 1
                result = await client.create_payment({
                    "merchant_order_no": f"ops-{uuid.uuid4().hex}", "amount": 100, "currency": "CNY",
                    "method": "wallet", "customer_id": customer})
                self.payments[result.status] = self.payments.get(result.status, 0) + 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), PAY_PAUSE_S)

        tasks = [asyncio.create_task(payer(i), name=f"ops-payer-{i}") for i in range(PAYERS)]
        try:
            yield
        finally:
            stop.set()
            await asyncio.gather(*tasks)


@pytest.fixture(scope="package")
async def engine(servers: Servers) -> AsyncIterator[Engine]:
    settings = Settings(admin_token=ADMIN_TOKEN, db_pool_max=24, buffer_in_process_flushers=False, dayend_at="off")
    metrics_port = free_port()
    async with private_database(servers.database_url, "ops") as database_url:
        app = create_app(settings, database_url, servers.redis_url)
        app.cleanup_ctx.append(metrics_listener(HOST, metrics_port))  # as `payengine serve` does per worker
        async with serving(app) as served, \
                aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            created = await create_merchant(served.url, ADMIN_TOKEN, {
                "name": "ops hot merchant", "currencies": ["CNY"], "fee_bps": 60, "fee_fixed": 0, "hot": True},
                session)
            merchant = PayEngineClient(served.url, created["id"], created["secret"], session=session)
            customers = []
            for _ in range(PAYERS * 2):
                made = await merchant.create_customer("ext-" + uuid.uuid4().hex, "CNY")
                assert made.status == 201, made.body
                topped = await merchant.topup(made.body["id"], 10_000_000, "tu-" + uuid.uuid4().hex)
                assert topped.status == 201, topped.body
                customers.append(made.body["id"])
            await app[SERVICES].buffer_sink.hot.refresh()
            found = Engine(served.url, f"http://{HOST}:{metrics_port}/metrics", database_url, servers.redis_url,
                           app, session, merchant, customers)
            try:
                yield found
            finally:
                await found.stop_flushers()
