"""Running the delivery worker: a cleanup_ctx for any app (in the API process by default), and
``payengine webhooks`` for a process of its own (then the API runs with PAYENGINE_WEBHOOKS_IN_PROCESS=0).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator

import aiohttp
import uvloop
from aiohttp import web

from engine.background import background
from engine.bootstrap import DATABASE_URL, POOL, REDIS_URL, SETTINGS, _database
from engine.db import ensure_servers
from engine.logs import configure_logging
from engine.settings import Settings
from engine.webhooks.worker import DeliveryWorker

log = logging.getLogger(__name__)

WORKER = web.AppKey("webhook_worker", DeliveryWorker)
DRAIN_TIMEOUT_S = 5.0


async def webhooks_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    connector = aiohttp.TCPConnector(limit=settings.webhook_concurrency, limit_per_host=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        worker = DeliveryWorker(app[POOL], session, settings)
        app[WORKER] = worker
        try:
            async with background(*([("webhook-worker", worker.run())] if settings.webhooks_in_process else [])):
                yield
        finally:
            await worker.drain(DRAIN_TIMEOUT_S)


def setup_webhooks(app: web.Application) -> None:
    app.cleanup_ctx.append(webhooks_ctx)


def run_webhooks(settings: Settings) -> int:
    """``payengine webhooks``: deliver until SIGINT/SIGTERM; returns the exit code."""
    configure_logging(settings.log_level)
    urls = ensure_servers(settings)
    app = web.Application()
    app[SETTINGS] = settings.replace(webhooks_in_process=True)
    app[DATABASE_URL] = urls.database_url
    app[REDIS_URL] = urls.redis_url
    app.cleanup_ctx.extend([_database, webhooks_ctx])

    async def main() -> None:
        runner = web.AppRunner(app)
        await runner.setup()  # runs the start halves: pool, then the worker
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        print("payengine webhooks delivering", flush=True)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()

    uvloop.run(main())
    return 0
