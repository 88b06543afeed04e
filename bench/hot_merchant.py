"""The hot-merchant scenario: the same payments under each posting mode, side by side in one run.

Modes run back to back on the same servers, in rounds whose order rotates (round 2 starts with the
mode that went last in round 1), so a noisy neighbour or a warming cache hurts every mode alike.
After each load window the mode's buffers drain before the next mode starts, so one mode's flushing
never runs during another's window; the drain time is reported with the mode.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from typing import Any

import asyncpg

from bench.load import LoadResult, run_load
from bench.modes import BenchContext, PostingMode
from bench.money import REF_MATCHES, check_money, wait_drained
from bench.proc_cpu import postgres_tree
from bench.workload import Payer, WorkloadAccounts, open_workload


def ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 2) if denominator else None


def mode_key(name: str) -> str:
    """A JSON-friendly key: 'buffered+split-16' -> 'buffered_split16'."""
    return name.replace("+", "_").replace("-", "")


async def run_hot_merchant_modes(ctx: BenchContext, modes: Sequence[PostingMode], concurrency: int,
                                 duration_s: float, rounds: int = 2, label: str = "hot-merchant",
                                 shape: str = "payment") -> dict[str, Any]:
    """Run every available mode for ``duration_s`` in total (split over ``rounds``); money-check each.
    ``shape`` is the workload's shape of one payment (bench.workload.SHAPES)."""
    runnable: list[PostingMode] = []
    skipped: dict[str, str] = {}
    for mode in modes:
        reason = mode.unavailable()
        if reason:
            skipped[mode.name] = reason
            print(f"[{label}] mode {mode.name}: SKIPPED ({reason})", file=sys.stderr, flush=True)
        else:
            runnable.append(mode)
    # Modes open their accounts at the same time: set-up is round trips, not CPU, and smoke runs are short.
    opened = await asyncio.gather(*(open_workload(ctx.pool, ctx.txn_nos, m.name, concurrency, m.shared)
                                    for m in runnable))
    workloads: dict[str, WorkloadAccounts] = {m.name: w for m, w in zip(runnable, opened, strict=True)}
    await asyncio.gather(*(m.prepare(ctx, workloads[m.name]) for m in runnable))
    results: dict[str, LoadResult] = {}
    drain_s: dict[str, float] = {m.name: 0.0 for m in runnable}
    # PostgreSQL's CPU per mode, window and drain (its flushing) included: bench/proc_cpu.py.
    pg = postgres_tree(int(await ctx.pool.fetchval("SELECT pg_backend_pid()")))
    pg_cpu_s: dict[str, float] = {m.name: 0.0 for m in runnable}
    for round_no in range(rounds):
        order = runnable[round_no % len(runnable):] + runnable[:round_no % len(runnable)] if runnable else []
        for mode in order:
            accounts = workloads[mode.name]
            booker = await mode.start(ctx, accounts)
            try:
                payer = Payer(accounts, booker, ctx.txn_nos, shape, batcher=getattr(mode, "batcher", None))
                cpu_before = pg.cpu_s() if pg else 0.0
                one = await run_load(f"{label} {mode.name} r{round_no + 1}", payer, concurrency,
                                     duration_s / rounds, samplers=mode.samplers())
                drain_s[mode.name] += await wait_drained(ctx.pool, accounts.shared_ids)
                pg_cpu_s[mode.name] += (pg.cpu_s() if pg else 0.0) - cpu_before
            finally:
                await mode.stop()
            if mode.name in results:
                results[mode.name].merge(one)
            else:
                results[mode.name] = one
    modes_out: dict[str, Any] = {}
    for mode in runnable:
        money = await check_money(ctx.pool, workloads[mode.name].money_scope())
        ok = results[mode.name].ok
        modes_out[mode.name] = {**results[mode.name].summary(), "drain_s": round(drain_s[mode.name], 2),
                                "pg_cpu_us_per_payment": round(pg_cpu_s[mode.name] / ok * 1e6, 1) if pg and ok
                                else None,
                                **await flush_lag_ms(ctx.pool, workloads[mode.name]), "money": money,
                                "per_second": [round(x, 1) for x in results[mode.name].per_second]}
        print(f"[{label}] {mode.name}: money checks ok ({money['entries']} entries, "
              f"{money['accounts_checked']} accounts)", file=sys.stderr, flush=True)
    return {"scenario": label, "workload": shape, "concurrency": concurrency, "duration_s_per_mode": duration_s,
            "rounds": rounds,
            "modes": modes_out, "skipped": skipped, "ratios": hot_merchant_ratios(modes_out)}


async def flush_lag_ms(pool: asyncpg.Pool, accounts: WorkloadAccounts) -> dict[str, float]:
    """How long merchant-side legs waited between commit and being applied (0 when posted synchronously)."""
    row = await pool.fetchrow(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY lag) AS p50,"
        " percentile_cont(0.99) WITHIN GROUP (ORDER BY lag) AS p99, max(lag) AS max FROM ("
        "  SELECT extract(epoch FROM l.applied_at - l.created_at) * 1000 AS lag"
        "  FROM journal_entries e JOIN journal_legs l USING (txn_no)"
        "  JOIN accounts a ON a.id = l.account_id"
        f"  WHERE {REF_MATCHES.format(e='e')} AND (a.id = ANY($2::text[]) OR a.parent_id = ANY($2::text[]))) x",
        [accounts.ref], accounts.shared_ids)
    return {f"flush_lag_{k}_ms": round(float(row[k] or 0.0), 2) for k in ("p50", "p99", "max")}


def hot_merchant_ratios(modes_out: dict[str, Any], suffix: str = "") -> dict[str, float | None]:
    """Every mode over sync and over the distinct reference, e.g. buffered_over_sync."""
    rates = {name: float(m["per_s"]) for name, m in modes_out.items()}
    out: dict[str, float | None] = {}
    for base in ("sync", "distinct"):
        if base not in rates:
            continue
        for name, rate in rates.items():
            if name not in ("sync", "distinct") or (base == "sync" and name == "distinct"):
                out[f"{mode_key(name)}_over_{base}{suffix}"] = ratio(rate, rates[base])
    return out
