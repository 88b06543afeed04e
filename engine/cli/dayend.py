"""CLI: ``payengine day-end``, ``payengine reconcile [--rerun --operator NAME]``, ``payengine settle``.

Each prints progress lines to stderr and, at the end, one JSON document on stdout (``reconcile``: the run as
GET /admin/reconciliations/{id} shows it, and its exception items as a table on stderr). Exit codes: 0 done,
1 the day failed / the statement was refused, 2 refused to run (another day-end runs, day not open or
not closed, unknown channel, nothing to re-run, a re-run's file refused), 3 the channel could not serve its
statement.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import asyncpg

from engine.booking import Booker
from engine.cli.database import migrated_servers
from engine.db import create_pool
from engine.settings import Settings
from engine.txn_no import NodeLease, TxnNoGenerator


def _progress(event: str, data: dict[str, Any]) -> None:
    print(f"{event}: {json.dumps(data, default=str)}", file=sys.stderr, flush=True)


@dataclass
class _Env:
    settings: Settings
    pool: asyncpg.Pool
    txn_nos: TxnNoGenerator


@asynccontextmanager
async def _environment(settings: Settings) -> AsyncIterator[_Env]:
    urls = await migrated_servers(settings)
    pool = await create_pool(urls.database_url, 2, 8, 3600)
    try:
        async with pool.acquire() as conn:
            lease = await NodeLease.acquire(conn, settings.node_lease_s)
        try:
            yield _Env(settings, pool, TxnNoGenerator(settings.system_code, settings.environment_code,
                                                      settings.shard, lease.node_id))
        finally:
            async with pool.acquire() as conn:
                await lease.release(conn)
    finally:
        await pool.close()


def _run(settings: Settings, body: Callable[[_Env], Awaitable[int]]) -> int:
    async def main() -> int:
        async with _environment(settings) as env:
            return await body(env)
    return asyncio.run(main())


def cmd_day_end(args: argparse.Namespace, settings: Settings) -> int:
    from engine.dayend.flow import DayEndError, day_end_options, run_day_end
    from engine.dayend.store import DayEndRow

    async def body(env: _Env) -> int:
        try:
            not_after = None if args.force else datetime.now(UTC).date()
            row: DayEndRow = await run_day_end(env.pool, args.date, day_end_options(
                settings, progress=_progress, not_after=not_after))
        except DayEndError as exc:
            print(f"payengine: {exc}", file=sys.stderr)
            return 2
        print(json.dumps({"accounting_date": row.accounting_date.isoformat(), "status": row.status,
                          "error": row.error, "report": row.report}, default=str))
        return 0 if row.status == "done" else 1
    return _run(settings, body)


def cmd_reconcile(args: argparse.Namespace, settings: Settings) -> int:
    import msgspec

    from channels.errors import ChannelError
    from engine.errors import DomainError
    from engine.gateway.context import Gateway, build_channels, channel_session
    from engine.gateway.health import ChannelHealth
    from engine.recon.flow import reconcile
    from engine.recon.rerun import rerun
    from engine.recon.views import run_view

    if args.rerun and not args.operator:
        print("payengine: --rerun names its --operator", file=sys.stderr)
        return 2

    async def body(env: _Env) -> int:
        async with channel_session(settings) as session:
            gw = Gateway(settings, env.pool, Booker(env.pool), env.txn_nos, build_channels(settings, session),
                         ChannelHealth(Gateway.breaker_policy(settings)), f"{socket.gethostname()}:{os.getpid()}:recon")
            try:
                run = await (rerun(gw, args.channel, args.date, args.operator) if args.rerun
                             else reconcile(gw, args.channel, args.date))
            except ChannelError as exc:
                print(f"payengine: statement unavailable: {exc}", file=sys.stderr)
                return 3
            except DomainError as exc:  # unknown channel, day still open, running, nothing to re-run, wrong file
                print(f"payengine: {exc}", file=sys.stderr)
                return 2
        async with env.pool.acquire() as conn:
            view = await run_view(conn, run.id)
        for line in exception_lines(view.exceptions):
            print(line, file=sys.stderr)
        print(json.dumps(msgspec.to_builtins(view), default=str))
        return 0 if run.status == "done" else 1
    return _run(settings, body)


def exception_lines(exceptions: list[dict[str, Any]]) -> list[str]:
    """One line per exception item: what an operator acts on, by its id."""
    lines = [f"{'item':>8}  {'outcome':<16} {'kind':<7} {'payment / reference':<36} {'ours':>12} {'theirs':>12}"
             "  state"] if exceptions else []
    for e in exceptions:
        subject = e.get("payment_id") or e.get("payout_id") or e.get("reference")
        ours = "-" if e.get("our_amount") is None else str(e["our_amount"])
        theirs = "-" if e.get("their_amount") is None else str(e["their_amount"])
        lines.append(f"{e['id']:>8}  {e['outcome']:<16} {e['kind']:<7} {subject!s:<36} {ours:>12} {theirs:>12}"
                     f"  {e['state']}")
    return lines


def cmd_settle(args: argparse.Namespace, settings: Settings) -> int:
    from engine.dayend.calendar import read_open_date
    from engine.settlement.flow import SettlementError, nothing_due_notes, settle, unsettled

    async def body(env: _Env) -> int:
        async with env.pool.acquire() as conn:
            open_date = await read_open_date(conn)
        try:
            result = await settle(env.pool, Booker(env.pool), args.date, lambda: env.txn_nos.next(datetime.now(UTC)),
                                  lambda: open_date, args.merchant, settings.dayend_pause_at, _progress)
        except SettlementError as exc:
            print(f"payengine: {exc}", file=sys.stderr)
            return 2
        shown = result.to_dict()
        if result.created == 0:  # say why, and when something will be due: "created: 0" alone explains nothing
            shown["notes"] = nothing_due_notes(args.date, await unsettled(env.pool, args.merchant),
                                               len(result.batches))
            for note in shown["notes"]:
                print(f"note: {note}", file=sys.stderr, flush=True)
        print(json.dumps(shown, default=str))
        return 0
    return _run(settings, body)


def add_parsers(sub: Any) -> None:
    """Register the subcommands on ``payengine``'s subparsers."""
    p = sub.add_parser("day-end", help="close the accounting date: switch, drain buffers, trial balance, snapshots")
    p.add_argument("--date", type=date.fromisoformat, default=None,
                   help="the date to close (default: resume an unfinished day-end, else the open date)")
    p.add_argument("--force", action="store_true",
                   help="close a date later than today (UTC) anyway: the open date moves ahead of the calendar")
    p.set_defaults(func=cmd_day_end)
    p = sub.add_parser("reconcile", help="reconcile one channel's statement of a date; prints its exceptions")
    p.add_argument("--channel", required=True)
    p.add_argument("--date", type=date.fromisoformat, required=True)
    p.add_argument("--rerun", action="store_true",
                   help="re-reconcile the date against the statement as the channel serves it now: a new run "
                        "supersedes the live one (needs --operator)")
    p.add_argument("--operator", default=None, help="who asks for the re-run (recorded in the audit trail)")
    p.set_defaults(func=cmd_reconcile)
    p = sub.add_parser("settle", help="settle merchants' reconciled funds due on a closed accounting date")
    p.add_argument("--date", type=date.fromisoformat, required=True)
    p.add_argument("--merchant", default=None, help="only this merchant")
    p.set_defaults(func=cmd_settle)
