"""Webhooks under test: the real app (compressed retry schedule) on its own database and Redis, and a
real aiohttp receiver that verifies every signature, can fail the first N deliveries, and dedupes by
event id the way a merchant should.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import asyncpg
import msgspec
import pytest
from aiohttp import web

from engine.bootstrap import create_app
from engine.client import PayEngineClient, create_merchant
from engine.settings import Settings
from engine.webhooks.signing import SIGNATURE_HEADER, verify_signature
from tests.conftest import Servers
from tests.serving import serving
from tests.webhooks.isolated import isolated_servers

ADMIN_TOKEN = "webhooks-test-admin-token"
SETTINGS = Settings(admin_token=ADMIN_TOKEN, db_pool_max=20, webhook_poll_interval_ms=20, webhook_timeout_ms=1000,
                    webhook_backoff_base_ms=100, webhook_backoff_max_ms=400, webhook_retry_window_s=2,
                    expiry_in_process=False, gateway_in_process=False)


@dataclass
class Endpoint:
    secret: str
    fail_first: int = 0  # answer 500 to this many deliveries of each event, then 200
    always_fail: bool = False
    received: Counter[str] = field(default_factory=Counter)  # event id -> deliveries that reached us
    processed: list[dict[str, Any]] = field(default_factory=list)  # first 2xx of each event (deduped)
    duplicates: Counter[str] = field(default_factory=Counter)  # 2xx answered again for a known id
    times: defaultdict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    bad_signatures: int = 0


class Receiver:
    def __init__(self) -> None:
        self.endpoints: dict[str, Endpoint] = {}
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        endpoint = self.endpoints[request.match_info["token"]]
        raw = await request.read()
        if not verify_signature(endpoint.secret, request.headers.get(SIGNATURE_HEADER, ""), raw, time.time()):
            endpoint.bad_signatures += 1
            return web.Response(status=400, text="bad signature")
        event = msgspec.json.decode(raw)
        event_id = event["id"]
        endpoint.received[event_id] += 1
        endpoint.times[event_id].append(time.monotonic())
        if endpoint.always_fail or endpoint.received[event_id] <= endpoint.fail_first:
            return web.Response(status=500, text="try later")
        if any(e["id"] == event_id for e in endpoint.processed):
            endpoint.duplicates[event_id] += 1  # already handled: acknowledge, do nothing twice
        else:
            endpoint.processed.append(event)
        return web.Response(status=200, text="ok")


@dataclass
class WebhookWorld:
    url: str
    session: aiohttp.ClientSession
    receiver: Receiver
    pool: asyncpg.Pool
    app: web.Application

    async def merchant(self, *, fail_first: int = 0, always_fail: bool = False,
                       with_endpoint: bool = True) -> tuple[PayEngineClient, Endpoint | None]:
        token = uuid.uuid4().hex
        body: dict[str, Any] = {"name": "webhook merchant", "currencies": ["CNY"], "fee_bps": 60}
        if with_endpoint:
            body["webhook_url"] = f"{self.receiver.url}/hook/{token}"
        created = await create_merchant(self.url, ADMIN_TOKEN, body, self.session)
        client = PayEngineClient(self.url, created["id"], created["secret"], session=self.session)
        if not with_endpoint:
            return client, None
        endpoint = Endpoint(created["webhook_secret"], fail_first, always_fail)
        self.receiver.endpoints[token] = endpoint
        return client, endpoint

    async def wallet_payment(self, client: PayEngineClient, amount: int = 1000) -> str:
        customer = await client.create_customer("ext-" + uuid.uuid4().hex)
        assert customer.status == 201, customer.body
        topped = await client.topup(customer.body["id"], amount, "tu-" + uuid.uuid4().hex)
        assert topped.status == 201, topped.body
        paid = await client.create_payment({"merchant_order_no": "o-" + uuid.uuid4().hex, "amount": amount,
                                            "currency": "CNY", "method": "wallet",
                                            "customer_id": customer.body["id"]})
        assert paid.status == 201, paid.body
        payment_id: str = paid.body["id"]
        return payment_id

    async def event_of(self, object_id: str, type_: str = "payment.succeeded") -> str:
        event_id: str = await self.pool.fetchval(
            "SELECT id FROM outbox_events WHERE object_id = $1 AND type = $2", object_id, type_)
        return event_id

    async def status_of(self, event_id: str) -> str:
        status: str = await self.pool.fetchval("SELECT delivery_status FROM outbox_events WHERE id = $1", event_id)
        return status


async def eventually(check: Callable[[], Any], timeout_s: float = 10.0, interval_s: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        await asyncio.sleep(interval_s)


@pytest.fixture(scope="module")
async def world(servers: Servers) -> AsyncIterator[WebhookWorld]:
    async with isolated_servers(servers.database_url, "pe_webhooks") as iso:
        receiver = Receiver()
        receiver_app = web.Application()
        receiver_app.router.add_post("/hook/{token}", receiver.handle)
        async with serving(receiver_app) as receiver_served:
            receiver.url = receiver_served.url
            app = create_app(SETTINGS, iso.database_url, iso.redis_url)
            async with serving(app) as served:
                pool = await asyncpg.create_pool(iso.database_url, min_size=1, max_size=10)
                assert pool is not None
                try:
                    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
                        yield WebhookWorld(served.url, session, receiver, pool, app)
                finally:
                    await pool.close()
