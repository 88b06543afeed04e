"""``payengine payouts held|show|resolve``: held payouts from the command line, straight against PostgreSQL.

    payengine payouts held [--merchant ID] [--limit N] [--starting-after ID]   held payouts, newest first
    payengine payouts show PAYOUT_ID                                           one payout with its internals
    payengine payouts resolve PAYOUT_ID --action retry|fail|succeed --reason TEXT [--operator NAME]

The same calls as the admin API (holds.py) and the same input checks (its wire Structs): a bad input exits 2,
a refused resolve (unknown payout, not held) exits 1 naming the rule, and nothing is booked or recorded then.
A fail gives the payout's limit usage back through Redis, like the worker; with Redis away it stays counted
(over-counts, never under). Prints the resulting object as JSON.
"""

from __future__ import annotations

import argparse
import getpass
from datetime import UTC, datetime
from typing import cast

import asyncpg
import msgspec
import redis.asyncio as aioredis

from engine.cli.books import operator_books
from engine.cli.result import print_result
from engine.controls.gate import ControlGate
from engine.db import ensure_servers
from engine.migrate import migrate
from engine.payouts import holds
from engine.payouts import wire as pw
from engine.redis_client import redis_from_settings
from engine.settings import Settings


def os_user() -> str | None:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return None


async def _resolve(settings: Settings, database_url: str, redis_url: str, args: argparse.Namespace,
                   req: pw.ResolvePayout) -> object:
    # One server or a cluster: the controls' keys are hash-tagged per subject (as in engine/bootstrap.py's _redis).
    redis = cast(aioredis.Redis, redis_from_settings(settings, redis_url, max_connections=4))
    try:
        async with operator_books(settings, database_url) as ob:
            # Only release_admission is used: the usage row in PostgreSQL and the counters in Redis.
            gate = ControlGate(ob.pool, redis, today=lambda: datetime.now(UTC).date(),
                               blocklist_secret=settings.api_secret_key, config_ttl_s=settings.controls_cache_ms / 1000)
            books = holds.PlatformBooks(ob.pool, ob.booker, ob.txn_nos, ob.platform_accounts)
            await holds.resolve(books, args.payout, req.action, req.reason, holds.actor(req.operator, "cli"),
                                datetime.now(UTC), gate.release_admission)
            async with ob.pool.acquire() as conn:
                return await holds.show(conn, args.payout)
    finally:
        await redis.aclose()


async def _run(settings: Settings, args: argparse.Namespace) -> object:
    urls = ensure_servers(settings)
    conn = await asyncpg.connect(urls.database_url)
    try:
        await migrate(conn)
        if args.payouts_command == "held":
            query = msgspec.convert({"held": True, "merchant_id": args.merchant, "limit": args.limit,
                                     "starting_after": args.starting_after}, pw.AdminPayoutsQuery)
            return await holds.list_held(conn, query.merchant_id, query.starting_after, query.limit)
        if args.payouts_command == "show":
            return await holds.show(conn, args.payout)
    finally:
        await conn.close()
    operator = args.operator if args.operator is not None else os_user()
    req = msgspec.convert({"action": args.action, "reason": args.reason, "operator": operator}, pw.ResolvePayout)
    return await _resolve(settings, urls.database_url, urls.redis_url, args, req)


def cmd_payouts(args: argparse.Namespace, settings: Settings) -> int:
    return print_result(_run(settings, args))


def add_payout_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("payouts", help="list, show and resolve payouts held for a person")
    payouts_sub = p.add_subparsers(dest="payouts_command", required=True)
    held = payouts_sub.add_parser("held", help="held payouts, newest first")
    held.add_argument("--merchant", default=None)
    held.add_argument("--limit", type=int, default=20, help="1-100")
    held.add_argument("--starting-after", default=None, help="the last payout id of the previous page")
    show = payouts_sub.add_parser("show", help="one payout with hold, attempts, last error, limits/risk record")
    show.add_argument("payout")
    resolve = payouts_sub.add_parser(
        "resolve", help="retry (ask the channel again), fail (the channel paid nothing: unfreeze) or succeed "
                        "(the channel paid our amount: settle) a held payout")
    resolve.add_argument("payout")
    resolve.add_argument("--action", required=True, choices=["retry", "fail", "succeed"])
    resolve.add_argument("--reason", required=True, help="why (recorded with the change; up to 500 characters)")
    resolve.add_argument("--operator", default=None, help="who decides (default: the OS user)")
    for parser in (held, show, resolve):
        parser.set_defaults(func=cmd_payouts)

