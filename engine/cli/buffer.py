"""CLI: ``payengine flush`` (hot-account flushers as their own process), ``payengine buffer status|tune``."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import orjson

from buffer.tuning import BufferTuning, TuningError, load_tuning
from engine.ledger_admin.buffer import buffer_defaults, buffer_status, change_tuning
from engine.redis_client import redis_from_settings
from engine.settings import Settings

_TUNE_FLAGS = {name: "--" + name.replace("_", "-") for name in BufferTuning().to_dict()}


# (heading, row key, left-aligned): the ids and whose the account is first, then the figures.
_STATUS_COLUMNS = (("account", "account_id", True), ("owner", "owner_id", True), ("role", "role", True),
                   ("cur", "currency", True), ("depth", "depth", False), ("oldest_ms", "oldest_age_ms", False),
                   ("applied/s", "applied_per_s", False), ("last_batch", "last_batch_legs", False),
                   ("batch_ms", "last_batch_ms", False))


def print_table(rows: list[dict[str, Any]], columns: tuple[tuple[str, str, bool], ...]) -> None:
    """Rows as aligned columns, each as wide as its widest cell."""
    cells = [[heading for heading, _, _ in columns]] + [[str(r[key]) for _, key, _ in columns] for r in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    for line in cells:
        print(" ".join(cell.ljust(width) if left else cell.rjust(width)
                       for cell, width, (_, _, left) in zip(line, widths, columns, strict=True)).rstrip())


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

    from buffer.flush_main import run_flushers, serve_metrics
    from engine.db import ensure_servers
    from engine.logs import configure_logging

    configure_logging(settings.log_level)  # the flushers' lines as the API's: JSON, account_id and legs kept
    urls = ensure_servers(settings)
    only = [a for a in args.accounts.split(",") if a] or None
    stop_metrics = serve_metrics(settings.host, settings.flush_metrics_port) if settings.flush_metrics_port else None
    async def run() -> None:
        # Built through the engine's factory so `payengine flush` works against a Redis Cluster too.
        client = cast(aioredis.Redis, redis_from_settings(settings, urls.redis_url, socket_timeout=5,
                                                          socket_connect_timeout=2))
        await run_flushers(urls.database_url, urls.redis_url, buffer_defaults(settings), only,
                           settings.buffer_recovery_grace_ms, redis_client=client)

    try:
        asyncio.run(run())
    finally:
        if stop_metrics is not None:
            stop_metrics()
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
    print_table(rows, _STATUS_COLUMNS)
    return 0


def cmd_buffer_tune(args: Any, settings: Settings) -> int:
    changes = {name: getattr(args, name) for name in _TUNE_FLAGS if getattr(args, name) is not None}

    async def work(pool: Any, redis: Any) -> BufferTuning:
        if not changes:  # no flags: show
            async with pool.acquire() as conn:
                return await load_tuning(conn, buffer_defaults(settings))
        return await change_tuning(pool, buffer_defaults(settings), changes)

    try:
        tuning: BufferTuning = asyncio.run(_with_servers(settings, work))
    except TuningError as exc:
        print(f"payengine buffer tune: {exc}")
        return 2
    print(orjson.dumps(tuning.to_dict()).decode())
    return 0
