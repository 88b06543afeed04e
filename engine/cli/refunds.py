"""``payengine refunds failed|reroute``: refunds the channel refused, resolved from the command line.

    payengine refunds failed [--merchant ID] [--limit N] [--starting-after ID]    waiting for an operator
    payengine refunds reroute REFUND_ID|EXCEPTION_ID --to wallet|bank|manual --reason TEXT [--operator NAME]
        [--dest-kind bank_card|bank_account --dest-number N --holder NAME [--bank-code C] [--channel C]]

An exception id (exc_...) names an exception's auto-refund the channel refused (POST /admin/exceptions/{id}/reroute).
The same calls and input checks as the admin API (engine/reroutes/): a bad input exits 2, a refused re-route
(unknown refund, not failed, no customer wallet) exits 1 naming the rule, and nothing is written then. Hot legs
(fee income) are written buffered, for the flushers of the running engine (engine/cli/books.py). Prints the refund
as JSON.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec

from channels.registry import adapter_classes
from engine.cli.books import operator_books
from engine.cli.payouts import os_user
from engine.cli.result import print_result
from engine.db import ensure_servers
from engine.keys import EXCEPTION_RECORD
from engine.migrate import migrate
from engine.reroutes import flow
from engine.reroutes import wire as rw
from engine.settings import Settings


async def _reroute(settings: Settings, database_url: str, refund_id: str,
                   req: rw.RerouteRefund) -> rw.AdminRefund | rw.AutoRefund:
    known = frozenset(spec.name for spec in settings.channels) or frozenset(adapter_classes())
    async with operator_books(settings, database_url) as ob:
        books = flow.RerouteBooks(settings, known, ob.pool, ob.booker, ob.txn_nos, ob.platform_accounts)
        if refund_id.startswith(EXCEPTION_RECORD + "_"):  # an exception's auto-refund
            return await flow.reroute_auto_refund(books, refund_id, req, datetime.now(UTC))
        return await flow.reroute(books, refund_id, req, datetime.now(UTC))


def _reroute_request(args: argparse.Namespace) -> rw.RerouteRefund:
    body: dict[str, Any] = {"to": args.to, "reason": args.reason,
                            "operator": args.operator if args.operator is not None else os_user()}
    if args.dest_kind or args.dest_number or args.holder:
        body["destination"] = {"kind": args.dest_kind, "number": args.dest_number, "holder_name": args.holder,
                               "bank_code": args.bank_code}
    if args.channel is not None:
        body["channel"] = args.channel
    return msgspec.convert(body, rw.RerouteRefund)


async def _run(settings: Settings, args: argparse.Namespace) -> object:
    urls = ensure_servers(settings)
    conn = await asyncpg.connect(urls.database_url)
    try:
        await migrate(conn)
        if args.refunds_command == "failed":
            query = msgspec.convert({"status": "failed", "merchant_id": args.merchant, "limit": args.limit,
                                     "starting_after": args.starting_after}, rw.FailedRefundsQuery)
            return await flow.list_failed(conn, query.merchant_id, query.starting_after, query.limit)
    finally:
        await conn.close()
    return await _reroute(settings, urls.database_url, args.refund, _reroute_request(args))


def cmd_refunds(args: argparse.Namespace, settings: Settings) -> int:
    return print_result(_run(settings, args))


def add_refund_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("refunds", help="list refunds the channel refused and re-route them")
    refunds_sub = p.add_subparsers(dest="refunds_command", required=True)
    failed = refunds_sub.add_parser("failed", help="refunds waiting for an operator, the longest waiting first")
    failed.add_argument("--merchant", default=None)
    failed.add_argument("--limit", type=int, default=20, help="1-100")
    failed.add_argument("--starting-after", default=None, help="the last refund id of the previous page")
    reroute = refunds_sub.add_parser(
        "reroute", help="send a failed refund to the customer's wallet, to a bank payout, or mark it manual")
    reroute.add_argument("refund", help="a refund id, or an exception id (exc_...) for its auto-refund")
    reroute.add_argument("--to", required=True, choices=["wallet", "bank", "manual"])
    reroute.add_argument("--reason", required=True, help="why (recorded with the change; up to 500 characters)")
    reroute.add_argument("--operator", default=None, help="who decides (default: the OS user)")
    reroute.add_argument("--dest-kind", default=None, choices=["bank_card", "bank_account"], help="bank only")
    reroute.add_argument("--dest-number", default=None, help="bank only: card or account number")
    reroute.add_argument("--holder", default=None, help="bank only: the account holder's name")
    reroute.add_argument("--bank-code", default=None, help="bank only")
    reroute.add_argument("--channel", default=None, help="bank only: the payout channel")
    for parser in (failed, reroute):
        parser.set_defaults(func=cmd_refunds)
