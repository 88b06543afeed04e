"""The composition root: Settings -> every service, built once, in one place, in one order.

``services()`` opens the pools and clients, builds each domain's service on what it needs, freezes them in
one ``Services`` and runs the background loops of the process's role until it exits; ``create_app`` puts
that into an aiohttp app (one cleanup context, one AppKey) with the route table of engine/http. Nothing is
looked up, replaced or patched after this: a handler reads the Services it was given.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import os
import secrets
import signal
import socket
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import time
from typing import Any, cast

import aiohttp
import asyncpg
import redis.asyncio as aioredis
import uvloop
from aiohttp import web

from buffer.flush_thread import FlusherThread
from buffer.runner import FlushRunner
from buffer.sink import RedisHotLegSink
from buffer.tuning import LiveTuning
from channels.registry import adapter_classes
from engine.background import BackgroundJob, background
from engine.booking import Booker
from engine.controls.gate import ControlGate
from engine.controls.usage_release import release_loop
from engine.controls.wiring import control_loops
from engine.dayend.calendar import running_calendar
from engine.dayend.flow import day_end_options
from engine.dayend.schedule import DayEndScheduler
from engine.db import create_pool
from engine.desk.flow import expiry_loop as desk_expiry_loop
from engine.gateway.context import Gateway, build_channels, channel_session
from engine.gateway.health import ChannelHealth
from engine.gateway.refresh import refresh_payment
from engine.gateway.wiring import build_gateway_worker, gateway_loops
from engine.http.app import build_http_app
from engine.http.auth import MerchantDirectory
from engine.http.ratelimit import RateLimiter
from engine.idempotency.cleanup import idempotency_cleanup
from engine.ledger_admin.accounts import HotSampler, account_loops
from engine.ledger_admin.buffer import buffer_defaults
from engine.merchants.invalidation import ChangeListener
from engine.migrate import migrate
from engine.payments.batcher import PaymentBatcher
from engine.payments.expiry import ExpiryQueue, ExpiryWorker
from engine.payouts.worker import PayoutWorker
from engine.redis_client import redis_from_settings
from engine.services import SERVICES, Services
from engine.settings import Settings
from engine.txn_no import NodeLease, TxnNoGenerator, renew_interval
from engine.webhooks.worker import DeliveryWorker

log = logging.getLogger(__name__)

BUFFER_SIDE_POOL_MAX = 4  # the sink's own pool: booking holds a main-pool connection while it reserves
WEBHOOK_DRAIN_TIMEOUT_S = 5.0


class Role(enum.Enum):
    """What a process runs besides answering requests: every in-process loop (API), or one role alone."""

    API = "api"
    GATEWAY = "gateway"  # voucher worker, janitor, payout worker (payengine gateway)
    WEBHOOKS = "webhooks"  # outbox delivery (payengine webhooks)


@asynccontextmanager
async def _node_lease(pool: asyncpg.Pool, settings: Settings) -> AsyncIterator[TxnNoGenerator]:
    """A node id for transaction numbers, renewed in the background and given back on exit."""
    async with pool.acquire() as conn:
        lease = await NodeLease.acquire(conn, settings.node_lease_s)
    log.info("node lease acquired", extra={"node_id": lease.node_id})

    async def renew() -> None:
        while True:
            await asyncio.sleep(renew_interval(settings.node_lease_s).total_seconds())
            try:
                async with pool.acquire() as conn:
                    if not await lease.renew(conn):
                        log.critical("node lease lost; stopping", extra={"node_id": lease.node_id})
                        raise SystemExit(3)
            except (OSError, asyncpg.PostgresError):
                log.warning("node lease renewal failed; will retry", exc_info=True)

    try:
        async with background(("node-lease-renewal", renew())):
            yield TxnNoGenerator(settings.system_code, settings.environment_code, settings.shard, lease.node_id)
    finally:
        try:
            async with pool.acquire() as conn:
                await lease.release(conn)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):  # stopping while PostgreSQL is away
            log.warning("node lease not released; it lapses by itself", extra={"node_id": lease.node_id,
                                                                              "lease_s": settings.node_lease_s})


@asynccontextmanager
async def _flushers(svc: Services) -> AsyncIterator[None]:
    """The hot-account flushers in this process (on the request loop, or on a thread of their own), unless
    PAYENGINE_BUFFER_IN_PROCESS_FLUSHERS=0 (then ``payengine flush`` processes run them)."""
    settings = svc.settings
    runner: FlushRunner | None = None
    thread: FlusherThread | None = None
    if settings.buffer_in_process_flushers and settings.buffer_flusher_thread:
        def make_redis() -> Any:  # called on the flusher thread: a client belongs to the loop that made it
            return redis_from_settings(settings, svc.redis_url, max_connections=32)

        thread = FlusherThread(svc.database_url, make_redis, buffer_defaults(settings),
                               grace_ms=settings.buffer_recovery_grace_ms)
        thread.start()
    elif settings.buffer_in_process_flushers:
        runner = FlushRunner(svc.database_url, svc.redis, svc.buffer_tuning, grace_ms=settings.buffer_recovery_grace_ms)
        runner.start()
    try:
        yield
    finally:
        if runner is not None:
            await runner.stop()
        if thread is not None:
            await thread.stop()


async def _day_end_schedule(svc: Services) -> None:
    """The daily day-end (PAYENGINE_DAYEND_AT), until cancelled."""
    hours, minutes = (int(x) for x in svc.settings.dayend_at.split(":"))
    scheduler = DayEndScheduler(svc.pool, time(hours, minutes), day_end_options(svc.settings), svc.calendar)
    stop = asyncio.Event()
    task = asyncio.create_task(scheduler.run(stop), name="dayend-scheduler-run")
    try:
        await asyncio.shield(task)
    finally:
        stop.set()
        await task


def _loops(svc: Services, role: Role) -> list[BackgroundJob]:
    """The background loops this process runs for its role (each bounded, each surviving blips)."""
    settings = svc.settings
    if role is Role.WEBHOOKS:
        return [("webhook-worker", svc.webhooks.run())]
    gateway = gateway_loops(svc.gateway, svc.gateway_worker)
    if svc.gateway.channels:  # payouts go out through the gateway's channels
        gateway.append(("payout-worker", PayoutWorker(svc.gateway, svc.release_usage).run()))
    controls = control_loops(svc.pool, settings, svc.gate, svc.calendar.current)
    if role is Role.GATEWAY:
        return gateway + controls
    jobs = controls + account_loops(svc.pool, svc.booker, svc.txn_nos, settings, svc.hot_sampler)
    jobs.append(("usage-release", release_loop(svc.pool, settings, svc.release_usage_by_reset)))
    jobs.append(("idempotency-cleanup", idempotency_cleanup(svc.pool, settings)))
    jobs.append(("desk-expiry", desk_expiry_loop(svc.pool, settings.desk_expiry_interval_s)))
    if settings.gateway_in_process:
        jobs += gateway
    if settings.webhooks_in_process:
        jobs.append(("webhook-worker", svc.webhooks.run()))
    if settings.expiry_in_process:
        worker = ExpiryWorker(svc.pool, svc.expiry, settings, svc.refresh_payment, svc.release_usage)
        jobs.append(("order-expiry", worker.run()))
    if settings.dayend_at != "off":
        jobs.append(("dayend-scheduler", _day_end_schedule(svc)))
    if svc.payment_batcher is not None:
        jobs.append(("payment-batcher", svc.payment_batcher.run()))
    return jobs


@asynccontextmanager
async def services(settings: Settings, database_url: str, redis_url: str,
                   role: Role = Role.API) -> AsyncIterator[Services]:
    """Every service of a process, built once; the role's background loops run while the block runs."""
    async with AsyncExitStack() as stack:
        conn = await asyncpg.connect(database_url)
        try:
            await migrate(conn)
        finally:
            await conn.close()
        pool = await create_pool(database_url, settings.db_pool_min, settings.db_pool_max,
                                 settings.db_command_timeout_s, settings.db_pool_idle_s)
        stack.push_async_callback(pool.close)
        # One server or a Redis Cluster (PAYENGINE_REDIS_CLUSTER / redis+cluster://). The cluster client speaks
        # every command the engine uses (its keys are hash-tagged), hence the cast.
        redis = cast(aioredis.Redis, redis_from_settings(settings, redis_url, max_connections=256))
        stack.push_async_callback(redis.aclose)

        side = await create_pool(database_url, 1, BUFFER_SIDE_POOL_MAX, settings.db_command_timeout_s)
        stack.push_async_callback(side.close)
        tuning = LiveTuning(side, buffer_defaults(settings))
        sink = RedisHotLegSink(side, redis, tuning)
        await sink.start()
        booker = Booker(pool, sink)
        booker.splits.ttl_s = settings.split_cache_ttl_ms / 1000

        txn_nos = await stack.enter_async_context(_node_lease(pool, settings))
        calendar = await stack.enter_async_context(
            running_calendar(pool, settings.accounting_date_refresh_ms / 1000))
        gate = ControlGate(pool, redis, today=calendar.current, blocklist_secret=settings.api_secret_key,
                           config_ttl_s=settings.controls_cache_ms / 1000)

        async def release_usage(admission_id: str) -> bool:
            return await gate.release_admission(admission_id)

        async def release_usage_by_reset(admission_id: str) -> bool:
            # A retry: an earlier attempt may have decremented the counters already (usage_release.py).
            return await gate.release_admission(admission_id, by_reset=True)

        channel_http = await stack.enter_async_context(channel_session(settings))
        gateway = Gateway(settings, pool, booker, txn_nos, build_channels(settings, channel_http),
                          ChannelHealth(Gateway.breaker_policy(settings), settings.gateway_quality_window_s),
                          f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}", release_usage=release_usage)

        async def ask_channel(payment_id: str) -> object | None:  # never raises for channel trouble
            return await refresh_payment(gateway, payment_id) if gateway.channels else None

        webhook_http = await stack.enter_async_context(aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=settings.webhook_concurrency, limit_per_host=0)))
        webhooks = DeliveryWorker(pool, webhook_http, settings)
        stack.push_async_callback(webhooks.drain, WEBHOOK_DRAIN_TIMEOUT_S)

        svc = Services(
            settings=settings, database_url=database_url, redis_url=redis_url, pool=pool, redis=redis,
            txn_nos=txn_nos, booker=booker,
            merchants=MerchantDirectory(pool, settings.api_secret_key, settings.merchant_cache_s),
            known_channels=frozenset(spec.name for spec in settings.channels) or frozenset(adapter_classes()),
            calendar=calendar, gate=gate, release_usage=release_usage, release_usage_by_reset=release_usage_by_reset,
            expiry=ExpiryQueue(redis), refresh_payment=ask_channel, gateway=gateway,
            gateway_worker=build_gateway_worker(gateway, settings),
            webhooks=webhooks,
            rate_limiter=RateLimiter(redis, settings.rate_limit_per_s, settings.rate_limit_burst,
                                     settings.rate_limit_timeout_ms),
            buffer_tuning=tuning, buffer_sink=sink,
            hot_sampler=HotSampler(settings.hot_window_s, settings.hot_sample_interval_s),
            payment_batcher=PaymentBatcher(pool, sink, booker.splits, batch_max=settings.batch_max,
                                           linger_us=settings.batch_linger_us, queue_max=settings.batch_queue_max,
                                           bookers=settings.batch_bookers)
            if settings.batch_max > 0 and role is Role.API else None,
        )
        if role is Role.API:
            for currency in settings.currencies:
                await svc.platform_accounts(currency)
            # Merchant changes made by any process (admin API, CLI) drop the merchant from this auth cache at once.
            changes = ChangeListener(database_url, svc.merchants.forget)
            await changes.start()
            stack.push_async_callback(changes.stop)
            await stack.enter_async_context(_flushers(svc))
        if role is not Role.WEBHOOKS:
            if svc.gateway.channels and (role is Role.GATEWAY or settings.gateway_in_process):
                log.info("gateway running", extra={"channels": sorted(gateway.channels), "worker": gateway.worker_id})
            elif settings.gateway_in_process:  # `payengine serve` said at start what that means for payments
                log.debug("gateway idle: no channels configured (PAYENGINE_CHANNELS)")
        await stack.enter_async_context(background(*_loops(svc, role)))
        yield svc


def create_app(settings: Settings, database_url: str, redis_url: str) -> web.Application:
    """The API process's app: the route table and middlewares of engine/http, over one Services."""
    app = build_http_app(settings)

    async def services_ctx(app: web.Application) -> AsyncIterator[None]:
        async with services(settings, database_url, redis_url, Role.API) as built:
            app[SERVICES] = built
            yield

    app.cleanup_ctx.append(services_ctx)
    return app


def run_role(settings: Settings, database_url: str, redis_url: str, role: Role, banner: str) -> int:
    """A process of one role without the HTTP API (``payengine gateway|webhooks``): until SIGINT/SIGTERM."""
    async def main() -> None:
        async with services(settings, database_url, redis_url, role):
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stop.set)
            print(banner, flush=True)
            await stop.wait()

    uvloop.run(main())
    return 0
