"""``payengine report day --date D [--out FILE]``: the day report (engine/reports/), straight from PostgreSQL.

Without --out it prints the JSON document. With --out FILE it writes the JSON to FILE and the page an operator
opens (Markdown) beside it, FILE with the suffix .md, and prints both paths. A bad date exits 2.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import msgspec

from engine.cli.database import migrated_servers
from engine.db import create_pool
from engine.reports.flow import build_day_report
from engine.reports.page import render_page
from engine.reports.wire import DayReport
from engine.settings import Settings


async def _report(settings: Settings, day: date) -> DayReport:
    urls = await migrated_servers(settings)
    pool = await create_pool(urls.database_url, 1, 2, 60)
    try:
        return await build_day_report(pool, day, datetime.now(UTC))
    finally:
        await pool.close()


def cmd_report_day(args: argparse.Namespace, settings: Settings) -> int:
    try:
        day = date.fromisoformat(args.date)
    except ValueError:
        print(f"payengine: parameter_invalid: --date {args.date!r} is not a date (YYYY-MM-DD)", file=sys.stderr)
        return 2
    report = asyncio.run(_report(settings, day))
    document = msgspec.json.format(msgspec.json.encode(report)).decode() + "\n"
    if args.out is None:
        print(document, end="")
        return 0
    out = Path(args.out)
    page = out.with_suffix(".md")
    if page == out:
        print("payengine: parameter_invalid: --out names the JSON file; the page is written beside it as .md",
              file=sys.stderr)
        return 2
    out.write_text(document)
    page.write_text(render_page(report))
    print(f"json: {out}\npage: {page}")
    return 0


def add_report_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("report", help="operator reports")
    report_sub = p.add_subparsers(dest="report_command", required=True)
    day = report_sub.add_parser("day", help="one day: day-end, reconciliation, settlement, open exceptions")
    day.add_argument("--date", required=True, help="the accounting date, YYYY-MM-DD")
    day.add_argument("--out", default=None, help="write the JSON here and the page beside it (.md)")
    day.set_defaults(func=cmd_report_day)
