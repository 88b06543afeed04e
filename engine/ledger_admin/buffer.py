"""The operator surface of the hot-account buffer.

- The sink, the booker and the in-process flushers are built by engine/bootstrap.py.
- ``GET /admin/buffer``: per hot account depth, oldest age, applied/s, last batch size and duration.
- ``GET|PUT /admin/buffer/settings``: the live tuning every flusher re-reads within a second.
"""

from __future__ import annotations

import asyncio
import hmac
from typing import Any, cast

import orjson
from aiohttp import web

from buffer.scripts import Scripts
from buffer.state import read_status
from buffer.store import hot_accounts
from buffer.tuning import BufferTuning, TuningError, load_tuning, save_tuning
from engine.redis_client import redis_from_settings
from engine.services import services_of
from engine.settings import Settings


def buffer_defaults(settings: Settings) -> BufferTuning:
    return BufferTuning(
        batch_size=settings.buffer_batch_size, flush_interval_ms=settings.buffer_flush_interval_ms,
        max_lag_ms=settings.buffer_max_lag_ms, max_depth=settings.buffer_max_depth,
        flusher_concurrency=settings.buffer_flusher_concurrency,
        backpressure_wait_ms=settings.buffer_backpressure_wait_ms,
    )


def _error(status: int, type_: str, code: str, message: str, param: str | None = None) -> web.Response:
    body = {"error": {"type": type_, "code": code, "message": message, "param": param}}
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def _json(body: Any) -> web.Response:
    return web.Response(body=orjson.dumps(body), content_type="application/json")


def _authorized(request: web.Request) -> bool:
    given = request.headers.get("Authorization", "")
    return hmac.compare_digest(given.encode(), f"Bearer {services_of(request).settings.admin_token}".encode())


def _unauthorized() -> web.Response:
    return _error(401, "authentication_error", "invalid_admin_token", "admin bearer token required")


async def buffer_status(pool: Any, redis: Any) -> list[dict[str, Any]]:
    """Status rows of every hot account (the CLI prints the same)."""
    async with pool.acquire() as conn:
        accounts = [a.id for a in await hot_accounts(conn)]
    return [s.to_dict() for s in await read_status(redis, Scripts(redis), accounts)] if accounts else []


async def get_buffer(request: web.Request) -> web.Response:
    if not _authorized(request):
        return _unauthorized()
    svc = services_of(request)
    rows = await buffer_status(svc.pool, svc.redis)
    return _json({"accounts": rows, "settings": svc.buffer_tuning.cached.to_dict()})


async def get_settings(request: web.Request) -> web.Response:
    if not _authorized(request):
        return _unauthorized()
    tuning = services_of(request).buffer_tuning
    async with services_of(request).pool.acquire() as conn:
        current = await load_tuning(conn, tuning.defaults)
    return _json(current.to_dict())


async def put_settings(request: web.Request) -> web.Response:
    if not _authorized(request):
        return _unauthorized()
    try:
        changes = orjson.loads(await request.read())
    except orjson.JSONDecodeError as exc:
        return _error(400, "invalid_request_error", "invalid_json", str(exc))
    if not isinstance(changes, dict) or not changes:
        return _error(400, "invalid_request_error", "invalid_body", "expected a JSON object of settings to change")
    tuning = services_of(request).buffer_tuning
    async with services_of(request).pool.acquire() as conn:
        async with conn.transaction():
            # Lock the row (or the table's only key) so two concurrent PUTs do not lose each other's fields.
            await conn.execute("LOCK TABLE buffer_settings IN SHARE ROW EXCLUSIVE MODE")
            current = await load_tuning(conn, tuning.defaults)
            try:
                updated = current.updated(changes)
            except TuningError as exc:
                return _error(400, "invalid_request_error", "invalid_setting", str(exc), exc.field)
            await save_tuning(conn, updated)
    await tuning.refresh()
    return _json(updated.to_dict())


def setup_admin_buffer(app: web.Application) -> None:
    app.router.add_get("/admin/buffer", get_buffer)
    app.router.add_get("/admin/buffer/settings", get_settings)
    app.router.add_put("/admin/buffer/settings", put_settings)


# ---------------------------------------------------------------- CLI: payengine flush | buffer status|tune

_TUNE_FLAGS = {name: "--" + name.replace("_", "-") for name in BufferTuning().to_dict()}


def add_buffer_parsers(sub: Any) -> None:
    p = sub.add_parser("flush", help="run hot-account flushers (and their recovery sweep) as their own process")
    p.add_argument("--accounts", default="", help="comma-separated account ids (default: every hot account)")
    p.set_defaults(func=cmd_flush)
    p = sub.add_parser("buffer", help="hot-account buffer: status, live tuning")
    actions = p.add_subparsers(dest="buffer_action", required=True)
    status = actions.add_parser("status", help="per hot account: depth, oldest age, applied/s, last batch")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_buffer_status)
    tune = actions.add_parser("tune", help="change live flush settings (picked up within 1 s); no flags: show")
    for name, flag in _TUNE_FLAGS.items():
        tune.add_argument(flag, dest=name, type=int, default=None)
    tune.set_defaults(func=cmd_buffer_tune)


def cmd_flush(args: Any, settings: Settings) -> int:
    import redis.asyncio as aioredis

    from buffer.flush_main import run_flushers
    from engine.db import ensure_servers

    urls = ensure_servers(settings)
    only = [a for a in args.accounts.split(",") if a] or None
    async def run() -> None:
        # Built through the engine's factory so `payengine flush` works against a Redis Cluster too.
        client = cast(aioredis.Redis, redis_from_settings(settings, urls.redis_url, socket_timeout=5,
                                                          socket_connect_timeout=2))
        await run_flushers(urls.database_url, urls.redis_url, buffer_defaults(settings), only,
                           settings.buffer_recovery_grace_ms, redis_client=client)

    asyncio.run(run())
    return 0


async def _with_servers(settings: Settings, work: Any) -> Any:
    import asyncpg
    import redis.asyncio as aioredis

    from engine.db import ensure_servers

    urls = ensure_servers(settings)
    pool = await asyncpg.create_pool(urls.database_url, min_size=1, max_size=2)
    redis = cast(aioredis.Redis, redis_from_settings(settings, urls.redis_url))
    try:
        return await work(pool, redis)
    finally:
        await redis.aclose()
        await pool.close()


def cmd_buffer_status(args: Any, settings: Settings) -> int:
    rows: list[dict[str, Any]] = asyncio.run(_with_servers(settings, buffer_status))
    if args.json:
        print(orjson.dumps(rows).decode())
        return 0
    print(f"{'account':<40} {'depth':>8} {'oldest_ms':>10} {'applied/s':>10} {'last_batch':>10} {'batch_ms':>9}")
    for r in rows:
        print(f"{r['account_id']:<40} {r['depth']:>8} {r['oldest_age_ms']:>10} {r['applied_per_s']:>10} "
              f"{r['last_batch_legs']:>10} {r['last_batch_ms']:>9}")
    return 0


def cmd_buffer_tune(args: Any, settings: Settings) -> int:
    changes = {name: getattr(args, name) for name in _TUNE_FLAGS if getattr(args, name) is not None}

    async def work(pool: Any, redis: Any) -> BufferTuning:
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("LOCK TABLE buffer_settings IN SHARE ROW EXCLUSIVE MODE")
            current = await load_tuning(conn, buffer_defaults(settings))
            if changes:
                current = current.updated(changes)
                await save_tuning(conn, current)
            return current

    try:
        tuning: BufferTuning = asyncio.run(_with_servers(settings, work))
    except TuningError as exc:
        print(f"payengine buffer tune: {exc}")
        return 2
    print(orjson.dumps(tuning.to_dict()).decode())
    return 0
