"""The app factory: one place that creates pools and clients and wires the packages together.

Nothing connects at import time; resources live in aiohttp ``cleanup_ctx`` and are reached through
typed ``web.AppKey``s.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import cast

import asyncpg
import redis.asyncio as aioredis
from aiohttp import web

from engine.background import background
from engine.booking import Booker
from engine.controls.gate import ControlGate
from engine.db import create_pool
from engine.migrate import migrate
from engine.redis_client import redis_from_settings
from engine.settings import Settings
from engine.txn_no import NodeLease, TxnNoGenerator, renew_interval

log = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", Settings)
DATABASE_URL = web.AppKey("database_url", str)
REDIS_URL = web.AppKey("redis_url", str)
POOL = web.AppKey("pool", asyncpg.Pool)
REDIS = web.AppKey("redis", aioredis.Redis)
TXN_NOS = web.AppKey("txn_nos", TxnNoGenerator)
BOOKER = web.AppKey("booker", Booker)
GATE = web.AppKey("control_gate", ControlGate)  # limits and risk rules (engine.controls.wiring)


def now_utc() -> datetime:
    return datetime.now(UTC)


async def _database(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    conn = await asyncpg.connect(app[DATABASE_URL])
    try:
        await migrate(conn)
    finally:
        await conn.close()
    pool = await create_pool(app[DATABASE_URL], settings.db_pool_min, settings.db_pool_max,
                             settings.db_command_timeout_s, settings.db_pool_idle_s)
    app[POOL] = pool
    app[BOOKER] = Booker(pool)
    try:
        yield
    finally:
        await pool.close()


async def _redis(app: web.Application) -> AsyncIterator[None]:
    # One server or a Redis Cluster (PAYENGINE_REDIS_CLUSTER / redis+cluster://). The cluster client speaks
    # every command the buffer uses (its keys are hash-tagged per account), hence the cast.
    client = cast(aioredis.Redis, redis_from_settings(app[SETTINGS], app[REDIS_URL], max_connections=256))
    app[REDIS] = client
    try:
        yield
    finally:
        await client.aclose()


async def _node_lease(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    pool = app[POOL]
    async with pool.acquire() as conn:
        lease = await NodeLease.acquire(conn, settings.node_lease_s)
    app[TXN_NOS] = TxnNoGenerator(settings.system_code, settings.environment_code, settings.shard, lease.node_id)
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
            yield
    finally:
        async with pool.acquire() as conn:
            await lease.release(conn)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    app = request.app
    problems: dict[str, str] = {}
    try:
        async with app[POOL].acquire(timeout=2) as conn:
            await conn.fetchval("SELECT 1")
    except Exception as exc:  # readiness reports any failure, it does not crash
        problems["postgresql"] = type(exc).__name__
    try:
        await asyncio.wait_for(app[REDIS].ping(), timeout=2)
    except Exception as exc:
        problems["redis"] = type(exc).__name__
    if problems:
        return web.json_response({"status": "unavailable", "problems": problems}, status=503)
    return web.json_response({"status": "ready"})


def create_app(settings: Settings, database_url: str, redis_url: str) -> web.Application:
    app = web.Application(client_max_size=64 * 1024)
    app[SETTINGS] = settings
    app[DATABASE_URL] = database_url
    app[REDIS_URL] = redis_url
    from engine.ledger_admin.buffer import buffer_ctx, setup_admin_buffer  # here: it imports this module's keys

    # buffer_ctx after _redis: it replaces app[BOOKER] with Booker(pool, sink) before anyone books.
    app.cleanup_ctx.extend([_database, _redis, buffer_ctx, _node_lease])
    setup_admin_buffer(app)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    from engine.ledger_admin.accounts import setup_admin_accounts  # here: it imports this module's keys

    setup_admin_accounts(app)
    from engine.http.app import setup_api  # here: the API imports this module's keys

    setup_api(app)
    from engine.gateway.wiring import setup_gateway  # here: the gateway imports this module's keys

    setup_gateway(app)
    from engine.dayend.handlers import setup_accounting_admin  # here: it imports this module's keys

    setup_accounting_admin(app)
    from engine.controls.wiring import setup_controls  # here: it imports this module's keys

    setup_controls(app)  # its context reads the API context and the calendar
    from engine.controls.usage_release import setup_usage_release  # here: it imports this module's keys

    setup_usage_release(app)  # after the gate: gives back usage owed by payments that ended without money
    return app
