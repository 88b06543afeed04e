"""`payengine gateway`: the voucher worker and janitor as a process of their own, without the HTTP API."""

from __future__ import annotations

import asyncio
import logging
import signal

import uvloop
from aiohttp import web

from engine.bootstrap import DATABASE_URL, REDIS_URL, SETTINGS, _database, _node_lease, _redis
from engine.controls.wiring import setup_controls
from engine.db import ensure_servers
from engine.gateway.wiring import gateway_ctx
from engine.logs import configure_logging
from engine.settings import Settings

log = logging.getLogger(__name__)


def run_gateway(settings: Settings) -> int:
    """Run until SIGINT/SIGTERM; returns the exit code."""
    configure_logging(settings.log_level)
    if not settings.channels:
        log.error("no channels configured: set PAYENGINE_CHANNELS")
        return 2
    urls = ensure_servers(settings)
    app = web.Application()
    app[SETTINGS] = settings.replace(gateway_in_process=True, voucher_sync=False)
    app[DATABASE_URL] = urls.database_url
    app[REDIS_URL] = urls.redis_url
    app.cleanup_ctx.extend([_database, _redis, _node_lease, gateway_ctx])
    setup_controls(app)  # the payout worker gives a failed payout's limit usage back through the gate

    async def main() -> None:
        runner = web.AppRunner(app)
        await runner.setup()  # runs the cleanup contexts' start halves: pools, lease, worker, janitor
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        print(f"payengine gateway running for channels {[c.name for c in settings.channels]}", flush=True)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()

    uvloop.run(main())
    return 0
