"""``make bench-split``: the hot-merchant workload with the merchant-side accounts split into sub-accounts.

Fresh embedded PostgreSQL and Redis in a temporary directory (or the given URLs). Many customers pay
one merchant with PAY_WALLET entries through Booker; the merchant's pending account, fee income and
gateway transit are the shared rows, and in the split modes each of them is split into N subs.
Modes, side by side in interleaved rounds: synchronous posting with 1 (not split), 4 and 16 subs,
and buffered posting with 1 and 16 subs once the buffer has landed (else reported as skipped with
the reason). Prints payments/s and p99 per mode, the ratios, and as the last stdout line one JSON
object. Money is checked per mode (every payment booked once, balances = Σ legs, family sums);
a failed check exits 1. Speed never fails the run: this is a benchmark, not a timed test.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import uvloop

from bench.context import bench_context
from bench.hot_merchant import ratio, run_hot_merchant_modes
from bench.modes import PostingMode, SyncMode, distinct_mode
from bench.modes_hot import HotMode
from bench.money import MoneyCheckFailed
from bench.report import machine_info, mode_table
from bench.servers import fresh_servers

# (mode name in the table, mode) in the order they are reported.
MODES: tuple[tuple[str, PostingMode], ...] = (
    ("sync1", SyncMode("sync")),
    ("sync4", HotMode(4, buffered=False)),
    ("sync16", HotMode(16, buffered=False)),
    ("buffered1", HotMode(1, buffered=True)),
    ("buffered16", HotMode(16, buffered=True)),
    # Reference, not a split mode: every payer has its own merchant-side rows, so nothing contends;
    # it shows the ceiling this machine's CPU puts on any mode.
    ("distinct", distinct_mode()),
)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.split_bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=12.0, help="seconds per mode, split over rounds")
    p.add_argument("--concurrency", type=int, default=64, help="concurrent payers")
    p.add_argument("--rounds", type=int, default=2, help="interleaved rounds (order rotates)")
    p.add_argument("--database-url", default=os.environ.get("PAYENGINE_DATABASE_URL", ""))
    p.add_argument("--redis-url", default=os.environ.get("PAYENGINE_REDIS_URL", ""))
    return p


async def run(args: argparse.Namespace) -> dict[str, Any]:
    async with fresh_servers(args.database_url, args.redis_url) as servers, \
            bench_context(servers.database_url, servers.redis_url, args.concurrency + 8) as ctx:
        return await run_hot_merchant_modes(ctx, [m for _, m in MODES], args.concurrency, args.duration,
                                            rounds=args.rounds, label="split")


def headline(result: dict[str, Any]) -> dict[str, Any]:
    by_key = {key: result["modes"].get(mode.name) for key, mode in MODES}
    rate = {key: (float(m["per_s"]) if m else None) for key, m in by_key.items()}
    out: dict[str, Any] = {"scenario": "split"}
    for key, _ in MODES:
        out[f"{key}_payments_per_s"] = rate[key]
        out[f"{key}_p99_ms"] = by_key[key]["p99_ms"] if by_key[key] else None
    out["sync4_over_sync1"] = ratio(rate["sync4"] or 0.0, rate["sync1"] or 0.0)
    out["sync16_over_sync1"] = ratio(rate["sync16"] or 0.0, rate["sync1"] or 0.0)
    out["buffered16_over_buffered1"] = ratio(rate["buffered16"] or 0.0, rate["buffered1"] or 0.0) \
        if rate["buffered16"] and rate["buffered1"] else None
    out["buffered16_over_sync1"] = ratio(rate["buffered16"] or 0.0, rate["sync1"] or 0.0) \
        if rate["buffered16"] else None
    out["sync16_over_distinct"] = ratio(rate["sync16"] or 0.0, rate["distinct"] or 0.0)
    skipped = {key: result["skipped"][mode.name] for key, mode in MODES if mode.name in result["skipped"]}
    if skipped:
        out["skipped"] = skipped
    out["concurrency"] = result["concurrency"]
    out["money_checks"] = "ok"
    return out


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    info = machine_info(args.database_url)
    try:
        result = uvloop.run(run(args))
    except MoneyCheckFailed as exc:
        print(f"[split] money check FAILED: {exc}", file=sys.stderr)
        print(json.dumps({"scenario": "split", "money_checks": "FAILED", "error": str(exc)}))
        return 1
    print(mode_table(f"\nsplit: {args.concurrency} payers, {args.duration:g} s per mode in {args.rounds} round(s),"
                     f" {info['cpus']} CPUs", result["modes"]))
    line = headline(result)
    for key in ("sync4_over_sync1", "sync16_over_sync1", "buffered16_over_buffered1", "buffered16_over_sync1",
                "sync16_over_distinct"):
        print(f"  {key}: {line[key]}")
    for key, reason in line.get("skipped", {}).items():
        print(f"  {key}: skipped ({reason})")
    for name, mode in result["modes"].items():
        if mode.get("errors"):  # refused payments (e.g. buffer back-pressure): booked nothing, counted apart
            print(f"  {name} refused: {mode['errors']}")
    print(json.dumps(line, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
