"""Reporting a run: machine info, the JSON file under bench/results/, PNG plots and the final table."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def machine_info(database_url: str = "") -> dict[str, Any]:
    """What the numbers were measured on; shared 2-core machines make this matter."""
    cpu_model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = 0.0
    try:
        mem_gb = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):
        pass
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parent, check=False).stdout.strip()
    return {
        "when_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model,
        "memory_gb": mem_gb,
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "git_commit": commit,
        "database": "external" if database_url and "host=/tmp/pe-bench-" not in database_url else "embedded",
    }


def write_json(name: str, payload: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / f"{name}-{stamp}.json"
    path.write_text(json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")
    (RESULTS_DIR / f"{name}-latest.json").write_text(path.read_text())
    return path


def mode_table(title: str, modes: dict[str, dict[str, Any]]) -> str:
    """One row per mode: throughput, latency percentiles, errors, flush lag p99 (ms from commit to
    applied), Redis depth max (legs queued, sampled each second), drain time, money."""
    header = f"{'mode':<20} {'payments/s':>11} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8} " \
             f"{'ok':>9} {'errors':>7} {'lag p99':>8} {'depth':>7} {'drain s':>8}  money"
    lines = [title, header, "-" * len(header)]
    for name, m in modes.items():
        errors = sum(m.get("errors", {}).values())
        money = m.get("money", {}).get("money_checks", "-")
        lines.append(f"{name:<20} {m['per_s']:>11.1f} {m['p50_ms']:>8.2f} {m['p95_ms']:>8.2f} {m['p99_ms']:>8.2f} "
                     f"{m['max_ms']:>8.1f} {m['ok']:>9d} {errors:>7d} {m.get('flush_lag_p99_ms', 0.0):>8.1f} "
                     f"{m.get('redis_depth_max', 0):>7.0f} {m.get('drain_s', 0.0):>8.2f}  {money}")
    return "\n".join(lines)


def ratio_lines(ratios: dict[str, float | None]) -> str:
    return "\n".join(f"  {key:<36} {'n/a' if value is None else f'{value:.2f}x'}" for key, value in ratios.items())


def plot_modes(name: str, title: str, modes: dict[str, dict[str, Any]]) -> Path | None:
    """Bars of payments/s and p50/p99 per mode, and throughput over time: the side-by-side picture."""
    if not modes:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(modes)
    fig, (ax_rate, ax_lat, ax_time) = plt.subplots(1, 3, figsize=(16, 4.8))
    ax_rate.bar(names, [modes[n]["per_s"] for n in names], color="tab:blue")
    ax_rate.set_ylabel("payments/s")
    ax_rate.set_title("throughput (higher is better)")
    width = 0.4
    xs = range(len(names))
    ax_lat.bar([x - width / 2 for x in xs], [modes[n]["p50_ms"] for n in names], width, label="p50")
    ax_lat.bar([x + width / 2 for x in xs], [modes[n]["p99_ms"] for n in names], width, label="p99")
    ax_lat.set_xticks(list(xs), names)
    ax_lat.set_ylabel("payment latency, ms")
    ax_lat.set_title("latency (lower is better)")
    ax_lat.legend()
    for n in names:
        series = modes[n].get("per_second", [])
        ax_time.plot(range(1, len(series) + 1), series, label=n)
    ax_time.set_xlabel("second of the mode's windows (rounds concatenated)")
    ax_time.set_ylabel("payments/s")
    ax_time.set_title("throughput over time")
    ax_time.legend(fontsize="small")
    for ax in (ax_rate, ax_lat):
        ax.tick_params(axis="x", labelrotation=20)
    fig.suptitle(title)
    fig.tight_layout()
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
