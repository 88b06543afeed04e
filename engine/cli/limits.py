"""``payengine limits show|set|usage``: limits from the command line, straight against PostgreSQL.

    payengine limits show [--merchant ID]                 the global set (or a merchant's overrides)
    payengine limits set [--merchant ID] JSON             replace that set; JSON is '[{"scope": ...}, ...]'
    payengine limits usage --merchant ID [--customer ID] [--date YYYY-MM-DD]
                                                          usage of that day and month from the record

The same validation as the admin API (a bad set exits 2, nothing stored). Running servers pick a change
up within PAYENGINE_CONTROLS_CACHE_MS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, date, datetime

import asyncpg
import msgspec

from engine.controls import store
from engine.controls.errors import InvalidControl
from engine.controls.limits import LimitRule, validate_rules
from engine.controls.wire import LimitSpec
from engine.migrate import migrate
from engine.settings import Settings


def _rules(raw: str) -> list[LimitRule]:
    try:
        specs = msgspec.json.decode(raw, type=list[LimitSpec])
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise InvalidControl("limits", f"not a list of limits: {exc}") from None
    return validate_rules([LimitRule(s.scope, s.window, s.method, s.currency, s.amount_max, s.count_max)
                           for s in specs])


def _json(rules: list[LimitRule]) -> list[dict[str, object]]:
    return [msgspec.to_builtins(LimitSpec(r.scope, r.window, r.method, r.currency, r.amount_max, r.count_max))
            for r in rules]


async def _run(database_url: str, args: argparse.Namespace) -> object:
    conn = await asyncpg.connect(database_url)
    try:
        await migrate(conn)
        merchant = args.merchant or ""
        if args.limits_command == "set":
            rules = _rules(args.limits)
            async with conn.transaction():
                await store.replace_limit_rules(conn, merchant, rules)
            return {"merchant_id": merchant or None, "limits": _json(rules)}
        if args.limits_command == "show":
            return {"merchant_id": merchant or None,
                    "limits": _json([r for m, r in await store.list_limit_rules(conn) if m == merchant])}
        day = args.date or datetime.now(UTC).date()
        # Day and month only: no attempt, so no history (of a currency) or velocity log is wanted.
        usage = await store.usage_sums(conn, args.merchant, args.customer, day, currency="", own_id="")
        return {"merchant_id": args.merchant, "customer_id": args.customer, "date": day.isoformat(),
                "day": {f"{c}|{m}": {"amount": a, "count": n} for (c, m), (a, n) in usage.day.items()},
                "month": {f"{c}|{m}": {"amount": a, "count": n} for (c, m), (a, n) in usage.month.items()}}
    finally:
        await conn.close()


def cmd_limits(args: argparse.Namespace, settings: Settings) -> int:
    from engine.db import ensure_servers

    if args.limits_command == "usage" and not args.merchant:
        print("payengine: limits usage needs --merchant", file=sys.stderr)
        return 2
    try:
        out = asyncio.run(_run(ensure_servers(settings).database_url, args))
    except InvalidControl as exc:
        print(f"payengine: invalid_control: {exc.param}: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(out, indent=2))
    return 0


def add_limits_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("limits", help="show, set or inspect limits (额度)")
    limits_sub = p.add_subparsers(dest="limits_command", required=True)
    for name, help_ in (("show", "print the global limits or a merchant's overrides"),
                        ("set", "replace the global limits or a merchant's overrides"),
                        ("usage", "a merchant's (or its customer's) usage of a day and its month")):
        q = limits_sub.add_parser(name, help=help_)
        q.add_argument("--merchant", default=None)
        if name == "set":
            q.add_argument("limits", help='JSON list, e.g. \'[{"scope": "customer", "window": "daily", '
                                          '"amount_max": 100000}]\'')
        if name == "usage":
            q.add_argument("--customer", default=None)
            q.add_argument("--date", type=date.fromisoformat, default=None)
        q.set_defaults(func=cmd_limits)
