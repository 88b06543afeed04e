"""Plugging the gateway into an app: notify and admin routes, and a cleanup_ctx that builds the
Gateway and (in-process by default) runs the worker and the janitor next to the API.

`payengine gateway` runs the same context without routes (engine/gateway/process.py); then the API
processes set PAYENGINE_GATEWAY_IN_PROCESS=0 and only answer notifies.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator

from aiohttp import web

from engine.background import BackgroundJob, background
from engine.bootstrap import BOOKER, POOL, SETTINGS, TXN_NOS
from engine.controls.usage_release import release_by_gate
from engine.gateway.channel_refunds import CHANNEL_REFUND_JOB, run_channel_refund_job
from engine.gateway.closing import CLOSE_ORDER_JOB, run_close_job
from engine.gateway.context import Gateway, build_channels, channel_session
from engine.gateway.handlers import add_admin_routes
from engine.gateway.health import ChannelHealth
from engine.gateway.janitor import Janitor
from engine.gateway.notify import GATEWAY, notify_handler
from engine.gateway.outcomes import AUTO_REFUND_JOB
from engine.gateway.refunds import run_auto_refund_job
from engine.gateway.sync_voucher import WORKER, sync_voucher_middleware
from engine.gateway.vouchers import CREATE_VOUCHER_JOB, run_voucher_job
from engine.gateway.worker import GatewayWorker, JobHandler
from engine.payouts.worker import PayoutWorker

log = logging.getLogger(__name__)

HANDLERS: dict[str, JobHandler] = {
    CREATE_VOUCHER_JOB: run_voucher_job,
    CLOSE_ORDER_JOB: run_close_job,
    AUTO_REFUND_JOB: run_auto_refund_job,
    CHANNEL_REFUND_JOB: run_channel_refund_job,
}


async def gateway_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    async with channel_session(settings) as session:
        gw = Gateway(settings, app[POOL], app[BOOKER], app[TXN_NOS], build_channels(settings, session),
                     ChannelHealth(Gateway.breaker_policy(settings), settings.gateway_quality_window_s),
                     f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}", release_usage=release_by_gate(app))
        # Synchronous voucher mode: requests run their own voucher jobs; the loop leaves those alone.
        kinds = tuple(k for k in HANDLERS if not (settings.voucher_sync and k == CREATE_VOUCHER_JOB))
        worker = GatewayWorker(gw, HANDLERS, settings.gateway_channel_concurrency * max(1, len(gw.channels)), kinds)
        app[GATEWAY] = gw
        app[WORKER] = worker
        jobs: list[BackgroundJob] = []
        if settings.gateway_in_process and gw.channels:
            jobs = [("gateway-worker", worker.run()), ("gateway-janitor", Janitor(gw).run()),
                    ("payout-worker", PayoutWorker(gw, release_by_gate(app)).run())]
            log.info("gateway running", extra={"channels": sorted(gw.channels), "worker": gw.worker_id})
        elif settings.gateway_in_process:
            log.warning("gateway idle: no channels configured (PAYENGINE_CHANNELS)")
        async with background(*jobs):
            yield


def setup_gateway(app: web.Application) -> None:
    """Routes, the optional synchronous-voucher middleware and the gateway context (after the API's)."""
    app.router.add_post("/channels/{channel}/notify", notify_handler)
    add_admin_routes(app)
    if app[SETTINGS].voucher_sync:
        app.middlewares.append(sync_voucher_middleware)
    app.cleanup_ctx.append(gateway_ctx)
