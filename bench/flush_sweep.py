"""flush-sweep: buffered hot-merchant payments over a grid of batch size x flush interval.

Each grid point is the buffered mode with the live tuning (``buffer_settings``, the same row
``payengine buffer tune`` writes) set to that batch size and interval before its window. Reported per
point: payments/s, p99 payment latency, flush lag p99 (commit -> applied) and the Redis depth max;
drawn as four heatmaps an SRE reads to pick settings. The stored tuning is put back afterwards.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from bench.context import bench_context
from bench.hot_merchant import run_hot_merchant_modes
from bench.modes import BenchContext
from bench.modes_hot import HotMode, stored_tuning_put_back
from bench.report import RESULTS_DIR
from bench.scenarios import Options
from bench.workload import WorkloadAccounts
from engine.booking import Booker

BATCH_SIZES = (10, 100, 1000)
INTERVALS_MS = (5, 20, 100)


class TunedBufferedMode(HotMode):
    """The buffered mode with its flush settings stored as the live tuning before each window."""

    def __init__(self, batch_size: int, flush_interval_ms: int) -> None:
        super().__init__(1, buffered=True)
        self.batch_size = batch_size
        self.flush_interval_ms = flush_interval_ms
        self.name = f"b{batch_size}/i{flush_interval_ms}"

    async def start(self, ctx: BenchContext, accounts: WorkloadAccounts) -> Booker:
        from buffer.tuning import BufferTuning, save_tuning

        async with ctx.pool.acquire() as conn:
            await save_tuning(conn, BufferTuning(batch_size=self.batch_size, flush_interval_ms=self.flush_interval_ms))
        return await super().start(ctx, accounts)


async def flush_sweep(opts: Options) -> dict[str, Any]:
    batches = tuple(opts.extra.get("sweep_batches", BATCH_SIZES))
    intervals = tuple(opts.extra.get("sweep_intervals", INTERVALS_MS))
    modes = [TunedBufferedMode(b, i) for b in batches for i in intervals]
    reason = modes[0].unavailable()
    if reason:
        print(f"[flush-sweep] SKIPPED: {reason}", file=sys.stderr, flush=True)
        return {"scenario": "flush-sweep", "modes": {}, "headline": {"scenario": "flush-sweep", "skipped": reason}}
    async with bench_context(opts.database_url, opts.redis_url, opts.concurrency + 16, opts.flushers) as ctx, \
            stored_tuning_put_back(ctx.pool):
        result = await run_hot_merchant_modes(ctx, modes, opts.concurrency, opts.duration_s, rounds=1,
                                              label="flush-sweep", shape=opts.workload)
    points = result["modes"]
    best = max(points, key=lambda name: points[name]["per_s"])
    low_lag = min(points, key=lambda name: points[name]["flush_lag_p99_ms"])
    plot = plot_sweep(points, batches, intervals, opts.concurrency)
    result["plots"] = [str(plot)]
    result["headline"] = {
        "scenario": "flush-sweep",
        "best_setting": best, "best_payments_per_s": points[best]["per_s"],
        "best_p99_ms": points[best]["p99_ms"], "best_flush_lag_p99_ms": points[best]["flush_lag_p99_ms"],
        "lowest_lag_setting": low_lag, "lowest_flush_lag_p99_ms": points[low_lag]["flush_lag_p99_ms"],
        "sweep_throughput_spread": round(max(p["per_s"] for p in points.values())
                                         / max(1e-9, min(p["per_s"] for p in points.values())), 2),
        "money_checks": "ok",
    }
    return result


def plot_sweep(points: dict[str, dict[str, Any]], batches: tuple[int, ...], intervals: tuple[int, ...],
               concurrency: int) -> Path:
    """Heatmaps over (flush interval, batch size), every cell annotated with its value."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = (("per_s", "payments/s (higher is better)", "viridis"),
              ("p99_ms", "payment p99 ms (lower is better)", "viridis_r"),
              ("flush_lag_p99_ms", "flush lag p99 ms: commit -> applied (lower is better)", "viridis_r"),
              ("redis_depth_max", "Redis depth max, legs queued (lower is better)", "viridis_r"),
              ("refused_per_s", "refused/s: back-pressure, buffer behind (lower is better)", "viridis_r"))
    for point in points.values():
        point["refused_per_s"] = round(sum(point.get("errors", {}).values()) / max(1e-9, point["duration_s"]), 1)
    fig, axes = plt.subplots(2, 3, figsize=(18, 9))
    axes.flat[-1].set_axis_off()
    for ax, (key, title, cmap) in zip(axes.flat, panels, strict=False):
        grid = [[float(points[f"b{b}/i{i}"].get(key, 0.0)) for i in intervals] for b in batches]
        image = ax.imshow(grid, cmap=cmap, aspect="auto")
        ax.set_xticks(range(len(intervals)), [str(i) for i in intervals])
        ax.set_yticks(range(len(batches)), [str(b) for b in batches])
        ax.set_xlabel("flush_interval_ms")
        ax.set_ylabel("batch_size")
        ax.set_title(title, fontsize=10)
        for row, values in enumerate(grid):
            for col, value in enumerate(values):
                r, g, b, _ = image.cmap(image.norm(value))
                ink = "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"  # readable on any cell
                ax.text(col, row, f"{value:.0f}" if value >= 10 else f"{value:.1f}", ha="center", va="center",
                        color=ink, fontsize=10, fontweight="bold")
        fig.colorbar(image, ax=ax)
    fig.suptitle(f"flush-sweep: buffered hot merchant, {concurrency} payers")
    fig.tight_layout()
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / "flush-sweep-heatmap.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
