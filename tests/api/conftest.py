"""The API under test: the real app from create_app on a real port on 127.0.0.1, per session.

Each test makes its own merchant (admin API) and customers, so tests never share money.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp import web

from engine import embedded
from engine.bootstrap import create_app
from engine.client import PayEngineClient, create_merchant
from engine.settings import Settings
from tests.conftest import Servers
from tests.serving import serving

ADMIN_TOKEN = "test-admin-token"


@dataclass(frozen=True)
class Api:
    url: str
    settings: Settings
    session: aiohttp.ClientSession
    app: web.Application

    async def merchant(self, **overrides: Any) -> PayEngineClient:
        body = {"name": "test merchant", "currencies": ["CNY", "USD"], "fee_bps": 60, "fee_fixed": 0, **overrides}
        created = await create_merchant(self.url, ADMIN_TOKEN, body, self.session)
        return PayEngineClient(self.url, created["id"], created["secret"], session=self.session)

    async def funded_customer(self, client: PayEngineClient, amount: int, currency: str = "CNY") -> str:
        created = await client.create_customer("ext-" + uuid.uuid4().hex, currency)
        assert created.status == 201, created.body
        customer_id: str = created.body["id"]
        if amount:
            topped = await client.topup(customer_id, amount, "tu-" + uuid.uuid4().hex)
            assert topped.status == 201, topped.body
        return customer_id


@dataclass(frozen=True)
class Reply:
    """An admin call's answer: status and decoded JSON body (None when empty)."""

    status: int
    body: Any

    @property
    def code(self) -> str | None:
        return self.body.get("error", {}).get("code") if isinstance(self.body, dict) else None


@dataclass(frozen=True)
class AdminHttp:
    """The admin API over real HTTP with the bearer token; areas subclass it with their own calls."""

    api: Api

    async def call(self, method: str, path: str, body: Any = None, token: str = ADMIN_TOKEN) -> Reply:
        data = b"" if body is None else msgspec.json.encode(body)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        async with self.api.session.request(method, self.api.url + path, data=data, headers=headers) as resp:
            raw = await resp.read()
            return Reply(resp.status, msgspec.json.decode(raw) if raw else None)


@pytest.fixture(scope="session")
async def api(servers: Servers) -> AsyncIterator[Api]:
    # PAYENGINE_BATCH_MAX in the test run's environment overrides the default (0: every payment on its own).
    batch = os.environ.get("PAYENGINE_BATCH_MAX")
    settings = Settings(admin_token=ADMIN_TOKEN, bench_noop=True, db_pool_max=80,
                        **({} if batch is None else {"batch_max": int(batch)}))
    app = create_app(settings, servers.database_url, servers.redis_url)
    async with serving(app) as served, aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        yield Api(served.url, settings, session, app)


def order_no() -> str:
    return "ord-" + uuid.uuid4().hex


@dataclass
class Private:
    """An engine on servers of its own, so this test can take them away."""

    api_url: str
    session: aiohttp.ClientSession
    servers: embedded.TemporaryServers


@pytest.fixture
async def private() -> AsyncIterator[Private]:
    with embedded.temporary_servers(prefix="pe-edge-", pg_stop_mode="immediate") as servers:
        settings = Settings(admin_token=ADMIN_TOKEN, gateway_in_process=False, webhooks_in_process=False)
        app = create_app(settings, servers.database_url, servers.redis_url)
        async with serving(app) as served, aiohttp.ClientSession() as session:
            yield Private(served.url, session, servers)


async def merchant_with_funds(p: Private) -> tuple[PayEngineClient, str]:
    created = await create_merchant(p.api_url, ADMIN_TOKEN, {"name": "edge", "currencies": ["CNY"], "fee_bps": 0,
                                                             "fee_fixed": 0}, p.session)
    # No retries: the test sees the first answer (the client would honour Retry-After and ask again).
    client = PayEngineClient(p.api_url, created["id"], created["secret"], session=p.session, retries_max=0)
    customer = (await client.create_customer("ext-" + uuid.uuid4().hex, "CNY")).body["id"]
    assert (await client.topup(customer, 10_000, "tu-" + uuid.uuid4().hex)).status == 201
    return client, customer
