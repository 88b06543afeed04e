"""`payengine webhooks`: the delivery worker as a process of its own (the API running without it)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator

import aiohttp
import asyncpg
import pytest

from engine.bootstrap import create_app
from tests.conftest import Servers
from tests.serving import serving
from tests.webhooks.conftest import ADMIN_TOKEN, SETTINGS, Receiver, WebhookWorld, eventually
from tests.webhooks.isolated import isolated_servers


@pytest.fixture
async def quiet_world(servers: Servers, world: WebhookWorld) -> AsyncIterator[tuple[WebhookWorld, str, str]]:
    """An API without an in-process worker, on a database of its own, sharing the module's receiver."""
    async with isolated_servers(servers.database_url, "pe_webhooks_proc") as iso:
        app = create_app(SETTINGS.replace(webhooks_in_process=False), iso.database_url, iso.redis_url)
        async with serving(app) as served:
            pool = await asyncpg.create_pool(iso.database_url, min_size=1, max_size=4)
            assert pool is not None
            try:
                async with aiohttp.ClientSession() as session:
                    yield (WebhookWorld(served.url, session, world.receiver, pool, app), iso.database_url,
                           iso.redis_url)
            finally:
                await pool.close()


async def test_webhooks_process_delivers_what_the_api_wrote(quiet_world: tuple[WebhookWorld, str, str]) -> None:
    qw, database_url, redis_url = quiet_world
    assert isinstance(qw.receiver, Receiver)
    client, endpoint = await qw.merchant(fail_first=1)
    assert endpoint is not None
    payment_id = await qw.wallet_payment(client)
    event_id = await qw.event_of(payment_id)
    await asyncio.sleep(0.3)
    assert endpoint.received[event_id] == 0  # nobody delivers yet

    env = {**os.environ, "PAYENGINE_DATABASE_URL": database_url, "PAYENGINE_REDIS_URL": redis_url,
           "PAYENGINE_ADMIN_TOKEN": ADMIN_TOKEN, "PAYENGINE_WEBHOOK_POLL_INTERVAL_MS": "20",
           "PAYENGINE_WEBHOOK_BACKOFF_BASE_MS": "100", "PAYENGINE_LOG_LEVEL": "WARNING"}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "engine.cli.main", "webhooks", env=env)
    try:
        await eventually(lambda: len(endpoint.processed) == 1, timeout_s=20)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 20) == 0
    assert endpoint.processed[0]["id"] == event_id and endpoint.received[event_id] == 2
    assert endpoint.bad_signatures == 0
