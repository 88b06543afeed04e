"""``python -m bench [SCENARIO ...]``: run benchmark scenarios on fresh servers, side by side.

Progress goes to stderr; stdout gets the tables and, as its very last line, one JSON object with the
headline figures (``{"scenario": "all", ...}`` when several scenarios ran) for scripts and CI.
Exit status 1 when a money check fails; speed never fails a run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from contextlib import nullcontext
from typing import Any

import uvloop

from bench.money import MoneyCheckFailed
from bench.report import machine_info, mode_table, plot_modes, ratio_lines, write_json
from bench.scenarios import HOT_MODES, SCENARIOS, Options
from bench.servers import fresh_servers
from bench.workload import SHAPES
from engine.hang_dump import hang_watchdog, install_task_dump

# No "buffer" here: hot-merchant and db-latency already run its modes, and their headlines carry its keys.
FULL = ("hot-merchant", "db-latency", "flush-sweep", "drain", "split", "api", "voucher", "dayend")
SMOKE = ("hot-merchant", "db-latency")
SMOKE_HANG_S = 900.0  # a smoke takes 1-3 minutes
FULL_HANG_S = 10_800.0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scenarios", nargs="*", help=f"one or more of: {', '.join(SCENARIOS)}, all (default)")
    p.add_argument("--smoke", action="store_true", help="quick run (< 60 s): short windows, one round")
    p.add_argument("--duration", type=float, default=None, help="seconds per mode (split over rounds); default 20")
    p.add_argument("--concurrency", type=int, default=64, help="concurrent payers (default 64)")
    p.add_argument("--rounds", type=int, default=None, help="interleaved rounds per mode (default 2)")
    p.add_argument("--modes", default=",".join(HOT_MODES), help="hot-merchant modes, comma separated")
    p.add_argument("--flushers", choices=("inproc", "thread", "process"), default="inproc",
                   help="buffered modes: flushers on the bench's event loop (as `payengine serve` runs them), on a"
                        " thread of their own (PAYENGINE_BUFFER_FLUSHER_THREAD=1) or as "
                        "their own process (`payengine flush`)")
    p.add_argument("--workload", choices=SHAPES, default="payment",
                   help="one payment = the wallet payment's transaction (payment row + entry; default) or the"
                        " entry alone in one statement (entry)")
    p.add_argument("--sweep-batches", default="10,100,1000", help="flush-sweep batch sizes")
    p.add_argument("--sweep-intervals", default="5,20,100", help="flush-sweep flush intervals, ms")
    p.add_argument("--drain-batches", default="100,1000,5000", help="drain: batch sizes, one backlog each")
    p.add_argument("--drain-payments", type=int, default=5000, help="drain: payments booked before flushing")
    p.add_argument("--hang-limit-s", type=float, default=None,
                   help="a run still going after this long prints where it waits (asyncio tasks, threads) and"
                        " exits 1 (default 900 s with --smoke, 10800 s otherwise; 0 = no limit)")
    p.add_argument("--database-url", default=os.environ.get("PAYENGINE_DATABASE_URL", ""),
                   help="use this PostgreSQL instead of a fresh embedded one")
    p.add_argument("--redis-url", default=os.environ.get("PAYENGINE_REDIS_URL", ""),
                   help="use this Redis instead of a fresh embedded one")
    return p


def _headline_all(results: dict[str, dict[str, Any]], failed: dict[str, str]) -> dict[str, Any]:
    """Every scenario's ratios and throughputs in one flat object, keys prefixed where they could clash."""
    out: dict[str, Any] = {"scenario": "all"}
    for name, result in results.items():
        for key, value in result["headline"].items():
            if key in ("scenario", "money_checks"):
                continue
            out[key if key not in out else f"{name}_{key}"] = value
    out["money_checks"] = "FAILED" if any("money" in v for v in failed.values()) else "ok"
    if failed:
        out["failed"] = failed
    return out


async def _run(names: list[str], opts: Options) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    results: dict[str, dict[str, Any]] = {}
    failed: dict[str, str] = {}
    async with fresh_servers(opts.database_url, opts.redis_url) as servers:
        opts.database_url, opts.redis_url = servers.database_url, servers.redis_url
        for name in names:
            print(f"=== {name} ===", file=sys.stderr, flush=True)
            try:
                results[name] = await SCENARIOS[name](opts)
            except MoneyCheckFailed as exc:
                print(f"[{name}] {exc}", file=sys.stderr, flush=True)
                failed[name] = f"money: {exc}"
            except Exception as exc:  # one broken scenario must not hide the others' numbers
                traceback.print_exc()
                failed[name] = f"{type(exc).__name__}: {exc}"
    return results, failed


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    names = list(args.scenarios) or ["all"]
    if names == ["all"]:
        names = [n for n in (SMOKE if args.smoke else FULL) if n in SCENARIOS]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        print(f"unknown scenarios {unknown}; known: {', '.join(SCENARIOS)}", file=sys.stderr)
        return 2
    duration = args.duration if args.duration is not None else (2.0 if args.smoke else 20.0)
    rounds = args.rounds if args.rounds is not None else (1 if args.smoke else 2)
    opts = Options(args.database_url, args.redis_url, duration, args.concurrency, rounds,
                   tuple(m for m in args.modes.split(",") if m), args.flushers, args.workload,
                   extra={"smoke": args.smoke,
                          "sweep_batches": [int(x) for x in args.sweep_batches.split(",") if x],
                          "sweep_intervals": [int(x) for x in args.sweep_intervals.split(",") if x],
                          "drain_batches": [int(x) for x in args.drain_batches.split(",") if x],
                          "drain_payments": args.drain_payments})
    info = machine_info(args.database_url)
    started = time.monotonic()
    install_task_dump()  # `kill -USR1 <pid>` shows where a slow run waits
    limit = args.hang_limit_s if args.hang_limit_s is not None else (SMOKE_HANG_S if args.smoke else FULL_HANG_S)
    with hang_watchdog(limit, f"python -m bench {' '.join(names)}") if limit > 0 else nullcontext():
        results, failed = uvloop.run(_run(names, opts))
    elapsed = time.monotonic() - started
    info["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]  # a busy neighbour explains odd numbers
    for name, result in results.items():
        if result.get("modes"):
            print(mode_table(f"\n{name}: {opts.concurrency} payers, {duration:g} s per mode in "
                             f"{result.get('rounds', rounds)} round(s)", result["modes"]))
            if result.get("ratios"):
                print(ratio_lines(result["ratios"]))
            plot = plot_modes(f"{name}{'-smoke' if args.smoke else ''}", f"{name} ({info['cpus']} CPUs)",
                              result["modes"])
            if plot:
                print(f"  plot: {plot}")
        for extra_plot in result.get("plots", []):
            print(f"  plot: {extra_plot}")
    headline = results[names[0]]["headline"] if len(names) == 1 and names[0] in results \
        else _headline_all(results, failed)
    if len(names) == 1 and failed:
        headline = {"scenario": names[0], "money_checks": "FAILED" if "money" in failed[names[0]] else "error",
                    "failed": failed}
    path = write_json("smoke" if args.smoke else "-".join(names) if len(names) < 3 else "all",
                      {"machine": info, "options": {k: v for k, v in vars(args).items() if "url" not in k},
                       "elapsed_s": round(elapsed, 1), "results": results, "failed": failed, "headline": headline})
    print(f"\nresults: {path} ({elapsed:.0f} s)")
    print(json.dumps(headline, separators=(",", ":")))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
