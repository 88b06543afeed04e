"""Named scenarios: each runs its modes side by side, checks the money and returns its figures.

A scenario returns a dict with at least ``headline`` (the one-line JSON a make target prints) and
``modes`` (the table rows). Scenarios owned by other areas (buffer, split, api, voucher) run as
their own make targets in a child process; we read the JSON line they end with.
"""

from __future__ import annotations

import asyncio
import json
import sys
from asyncio.subprocess import DEVNULL, PIPE
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bench.context import bench_context
from bench.hot_merchant import mode_key, run_hot_merchant_modes
from bench.modes import PostingMode, all_modes

REPO = Path(__file__).resolve().parent.parent
HOT_MODES = ("sync", "distinct", "buffered", "split-16", "buffered+split-16", "batched")
SMOKE_DB_MODES = ("sync", "distinct", "buffered")
BUFFER_MODES = ("sync", "buffered", "distinct")
BATCH_MODES = ("sync", "buffered", "batched", "batched-direct")


@dataclass
class Options:
    database_url: str
    redis_url: str
    duration_s: float = 20.0
    concurrency: int = 64
    rounds: int = 2
    modes: tuple[str, ...] = HOT_MODES
    flushers: str = "inproc"
    workload: str = "payment"  # bench.workload.SHAPES
    extra: dict[str, Any] = field(default_factory=dict)


Scenario = Callable[[Options], Awaitable[dict[str, Any]]]


def selected_modes(names: tuple[str, ...]) -> list[PostingMode]:
    modes = all_modes()
    unknown = [n for n in names if n not in modes]
    if unknown:
        raise SystemExit(f"unknown modes {unknown}; known: {', '.join(modes)}")
    return [modes[n] for n in names]


def hot_headline(scenario: str, result: dict[str, Any], suffix: str = "") -> dict[str, Any]:
    headline: dict[str, Any] = {"scenario": scenario, "workload": result.get("workload")}
    for name, m in result["modes"].items():
        headline[f"{mode_key(name)}_payments_per_s{suffix}"] = m["per_s"]
        headline[f"{mode_key(name)}_p99_ms{suffix}"] = m["p99_ms"]
        headline[f"{mode_key(name)}_pg_cpu_us_per_payment{suffix}"] = m.get("pg_cpu_us_per_payment")
    headline.update(result["ratios"])
    headline["skipped"] = sorted(result["skipped"])
    headline["money_checks"] = "ok"  # check_money raised otherwise
    return headline


async def hot_merchant(opts: Options) -> dict[str, Any]:
    async with bench_context(opts.database_url, opts.redis_url, opts.concurrency + 16, opts.flushers) as ctx:
        result = await run_hot_merchant_modes(ctx, selected_modes(opts.modes), opts.concurrency, opts.duration_s,
                                              opts.rounds, shape=opts.workload)
    result["headline"] = hot_headline("hot-merchant", result)
    return result


async def db_latency(opts: Options) -> dict[str, Any]:
    from bench.netem import DelayedPostgres, NetemUnavailable

    delayed = DelayedPostgres(opts.database_url, delay_ms_each_way=0.5)
    try:
        try:
            await asyncio.to_thread(delayed.start)
        except NetemUnavailable as exc:
            print(f"[db-latency] SKIPPED: {exc}", file=sys.stderr, flush=True)
            return {"scenario": "db-latency", "skipped_reason": str(exc), "modes": {},
                    "headline": {"scenario": "db-latency", "skipped": str(exc)}}
        rtt = await delayed.prepare()
        print(f"[db-latency] {rtt['method']}: SELECT 1 p50 {rtt['p50_ms']:.2f} ms, p99 {rtt['p99_ms']:.2f} ms",
              file=sys.stderr, flush=True)
        # The smoke run keeps the headline's modes only (buffered_over_sync_1ms and the reference).
        names = tuple(m for m in opts.modes if m in SMOKE_DB_MODES) if opts.extra.get("smoke") else opts.modes
        async with bench_context(delayed.dsn, opts.redis_url, opts.concurrency + 16, opts.flushers) as ctx:
            result = await run_hot_merchant_modes(ctx, selected_modes(names), opts.concurrency, opts.duration_s,
                                                  opts.rounds, label="db-latency", shape=opts.workload)
    finally:
        delayed.stop()
    result["select1_rtt"] = rtt
    result["ratios"] = {f"{k}_1ms": v for k, v in result["ratios"].items()}
    result["headline"] = hot_headline("db-latency", result, suffix="_1ms")
    result["headline"]["select1_p50_ms"] = rtt["p50_ms"]
    method = str(rtt["method"])
    result["headline"]["delay_method"] = ("netem" if method.startswith("tc netem") else
                                          "userspace-proxy-c" if "proxy (C)" in method else "userspace-proxy-python")
    return result


async def buffer(opts: Options) -> dict[str, Any]:
    """The buffer issue's comparison (``make bench-buffer``): sync vs buffered vs distinct on loopback and
    with a 1 ms database, one headline with both. ``all`` runs hot-merchant and db-latency instead, whose
    headlines carry the same keys."""
    modes = tuple(m for m in opts.modes if m in BUFFER_MODES) if opts.modes != HOT_MODES else BUFFER_MODES
    narrowed = replace(opts, modes=modes)
    loopback = await hot_merchant(narrowed)
    delayed = await db_latency(narrowed)
    headline = {**loopback["headline"], **{k: v for k, v in delayed["headline"].items()
                                           if k not in ("scenario", "money_checks", "skipped", "workload")}}
    headline["scenario"] = "buffer"
    return {"scenario": "buffer", "workload": loopback.get("workload"),
            "rounds": loopback.get("rounds"), "skipped": {**loopback["skipped"], **delayed.get("skipped", {})},
            "modes": {**loopback["modes"], **{f"{k} @1ms": v for k, v in delayed["modes"].items()}},
            "ratios": {**loopback["ratios"], **delayed.get("ratios", {})},
            "select1_rtt": delayed.get("select1_rtt"), "headline": headline}


async def batch(opts: Options) -> dict[str, Any]:
    """Issue 18's comparison (``make bench-batch``): sync vs buffered vs batched (the same payments through
    the in-process batcher) on loopback and with a 1 ms database, flushers running in every buffered window,
    one headline with both. Fails (no made-up figure) when the batched mode cannot run."""
    narrowed = replace(opts, modes=BATCH_MODES)
    loopback = await hot_merchant(narrowed)
    delayed = await db_latency(narrowed)
    for run in (loopback, delayed):
        if "batched" not in run["modes"] and "skipped_reason" not in run:
            raise RuntimeError(f"the batched mode did not run: {run.get('skipped', {}).get('batched', 'unknown')}")
    headline = {**loopback["headline"], **{k: v for k, v in delayed["headline"].items()
                                           if k not in ("scenario", "money_checks", "skipped", "workload")}}
    headline["scenario"] = "batch"
    for suffix, run in (("", loopback), ("_1ms", delayed)):
        for name, m in run["modes"].items():
            if name != "sync":
                headline[f"{mode_key(name)}_flush_lag_p99_ms{suffix}"] = m.get("flush_lag_p99_ms")
    return {"scenario": "batch", "workload": loopback.get("workload"),
            "rounds": loopback.get("rounds"), "skipped": {**loopback["skipped"], **delayed.get("skipped", {})},
            "modes": {**loopback["modes"], **{f"{k} @1ms": v for k, v in delayed["modes"].items()}},
            "ratios": {**loopback["ratios"], **delayed.get("ratios", {})},
            "select1_rtt": delayed.get("select1_rtt"), "headline": headline}


def _last_json_line(text: str) -> dict[str, Any] | None:
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                value = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict):
                return value
    return None


def external(target: str, scenario: str) -> Scenario:
    """Another area's bench, run as its make target; its last JSON line is its headline."""

    async def run(opts: Options) -> dict[str, Any]:
        probe = await asyncio.create_subprocess_exec("make", "-n", target, cwd=REPO, stdout=DEVNULL, stderr=DEVNULL)
        if await probe.wait() != 0:
            reason = f"`make {target}` does not exist yet (owned by the {scenario} area)"
            print(f"[{scenario}] SKIPPED: {reason}", file=sys.stderr, flush=True)
            return {"scenario": scenario, "skipped_reason": reason, "modes": {},
                    "headline": {"scenario": scenario, "skipped": reason}}
        print(f"[{scenario}] running `make {target}`", file=sys.stderr, flush=True)
        proc = await asyncio.create_subprocess_exec("make", "-s", target, cwd=REPO, stdout=PIPE)
        assert proc.stdout is not None
        lines: list[str] = []
        async for raw in proc.stdout:  # shown live: their progress is ours
            lines.append(raw.decode(errors="replace"))
            sys.stderr.write(lines[-1])
        returncode = await proc.wait()
        headline = _last_json_line("".join(lines))
        if returncode != 0 or headline is None:
            raise RuntimeError(f"`make {target}` failed (exit {returncode}) or printed no JSON line")
        return {"scenario": scenario, "modes": {}, "headline": headline}

    return run


async def flush_sweep(opts: Options) -> dict[str, Any]:
    from bench.flush_sweep import flush_sweep as run  # it builds on this module's Options

    return await run(opts)


async def drain(opts: Options) -> dict[str, Any]:
    from bench.drain import drain as run  # it builds on this module's Options

    return await run(opts)


SCENARIOS: dict[str, Scenario] = {
    "hot-merchant": hot_merchant,
    "db-latency": db_latency,
    "flush-sweep": flush_sweep,
    "drain": drain,
    "buffer": buffer,
    "batch": batch,
    "split": external("bench-split", "split"),
    "api": external("bench-api", "api"),
    "voucher": external("bench-voucher", "voucher"),
    "dayend": external("bench-dayend", "dayend"),
}
