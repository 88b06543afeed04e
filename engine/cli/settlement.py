"""``payengine settlement held|advice``: what settlement holds back and what a batch paid, straight against
PostgreSQL.

    payengine settlement held [--merchant ID] [--limit N]            payments held back, and the difference holding each
    payengine settlement advice BATCH_ID [--after ID] [--limit N]    a batch's remittance advice (its lines)

The same reads and input checks as GET /admin/settlements/held and GET /admin/settlements/{id}/payments (their
wire Structs): a bad input exits 2, an unknown batch exits 1. Settling a date is ``payengine settle``.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import msgspec

from engine.cli.result import print_result
from engine.errors import NotFound
from engine.settings import Settings


def _run(settings: Settings, read: Callable[[asyncpg.Connection], Awaitable[object]]) -> int:
    from engine.db import ensure_servers

    database_url = ensure_servers(settings).database_url

    async def run() -> object:
        conn = await asyncpg.connect(database_url)
        try:
            return await read(conn)
        finally:
            await conn.close()

    return print_result(run())


def _given(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def cmd_held(args: argparse.Namespace, settings: Settings) -> int:
    from engine.settlement import advice_store, views, wire

    async def read(conn: asyncpg.Connection) -> object:
        query = msgspec.convert(_given(merchant_id=args.merchant, limit=args.limit), wire.HeldQuery, strict=False)
        return views.held_list(await advice_store.held_payments(conn, query.merchant_id, query.limit + 1),
                               query.limit)
    return _run(settings, read)


def cmd_advice(args: argparse.Namespace, settings: Settings) -> int:
    from engine.settlement import advice_store, views, wire

    async def read(conn: asyncpg.Connection) -> object:
        query = msgspec.convert(_given(after=args.after, limit=args.limit), wire.RemittanceQuery, strict=False)
        batch = await advice_store.batch_by_id(conn, args.batch)
        if batch is None:
            raise NotFound("settlement batch", args.batch)
        lines = await advice_store.remittance_lines(conn, batch.id, query.after, query.limit + 1)
        return views.remittance(batch, lines, query.limit)
    return _run(settings, read)


def add_settlement_parsers(sub: Any) -> None:
    p = sub.add_parser("settlement", help="what settlement holds back, and a batch's remittance advice")
    settlement_sub = p.add_subparsers(dest="settlement_command", required=True)
    p = settlement_sub.add_parser("held", help="succeeded channel payments held back from settlement, and why")
    p.add_argument("--merchant", default=None)
    p.add_argument("--limit", type=int, default=None, help="at most this many (default 100, at most 1000)")
    p.set_defaults(func=cmd_held)
    p = settlement_sub.add_parser("advice", help="a settlement batch's lines: payments, refunds, adjustments")
    p.add_argument("batch")
    p.add_argument("--after", default=None, help="the last line id of the previous page")
    p.add_argument("--limit", type=int, default=None, help="lines per page (default 500, at most 1000)")
    p.set_defaults(func=cmd_advice)
