"""``payengine recon runs``: reconciliation runs from the command line, straight against PostgreSQL.

    payengine recon runs [--channel C] [--date D] [--status running|done|refused] [--superseded | --live] [--limit N]

The same listing and input checks as GET /admin/reconciliations (its wire Struct): counts are read from the items
now. A bad input exits 2. Reconciling and re-running a date is ``payengine reconcile [--rerun --operator NAME]``.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, TypeAlias

import asyncpg
import msgspec

from engine.cli.result import print_result
from engine.settings import Settings


def cmd_recon_runs(args: argparse.Namespace, settings: Settings) -> int:
    from engine.db import ensure_servers
    from engine.recon import views, wire

    database_url = ensure_servers(settings).database_url
    given = {"channel": args.channel, "date": args.date, "status": args.status, "superseded": args.superseded,
             "limit": args.limit}

    async def run() -> object:
        query = msgspec.convert({k: v for k, v in given.items() if v is not None}, wire.RunsQuery, strict=False)
        conn = await asyncpg.connect(database_url)
        try:
            return await views.run_list(conn, query)
        finally:
            await conn.close()

    return print_result(run())


if TYPE_CHECKING:  # argparse's action is generic for the type checker only
    Subcommands: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]


def _recon_group(sub: Subcommands) -> Subcommands:
    """The subcommands of ``payengine recon``, whoever registers first: the exception desk's CLI adds
    ``recon resolve`` to the same group (argparse refuses a second parser of one name)."""
    existing: argparse.ArgumentParser | None = sub.choices.get("recon")
    if existing is None:
        p = sub.add_parser("recon", help="reconciliation: list runs; close differences by what happens to their money")
        return p.add_subparsers(dest="recon_command", required=True)
    found: list[Subcommands] = [a for a in existing._actions if isinstance(a, argparse._SubParsersAction)]
    assert len(found) == 1, "payengine recon has one group of subcommands"
    return found[0]


def add_recon_parsers(sub: Subcommands) -> None:
    p = _recon_group(sub).add_parser("runs", help="reconciliation runs, newest date first, with live counts")
    p.add_argument("--channel", default=None)
    p.add_argument("--date", default=None, help="statement date, YYYY-MM-DD")
    p.add_argument("--status", default=None, help="running, done or refused")
    live = p.add_mutually_exclusive_group()
    live.add_argument("--superseded", dest="superseded", action="store_const", const=True, default=None,
                      help="only runs a re-run superseded")
    live.add_argument("--live", dest="superseded", action="store_const", const=False, help="only live runs")
    p.add_argument("--limit", type=int, default=None, help="at most this many (default 100, at most 500)")
    p.set_defaults(func=cmd_recon_runs)
