"""Closed-loop load: N workers call one operation back to back for a fixed time.

Each call's latency is recorded (successes only; failures are counted by exception type), and a
progress line with the current rate goes to stderr once a second so a long run shows it is alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

Operation = Callable[[int], Awaitable[None]]  # called with the worker index
Sampler = Callable[[], Awaitable[float]]  # an extra gauge shown and recorded once a second
SAMPLE_TIMEOUT_S = 2.0


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (0.0 for none)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(q / 100.0 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclass
class LoadResult:
    name: str
    concurrency: int
    duration_s: float
    ok: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    per_second: list[float] = field(default_factory=list)  # ok per second, for plots
    samples: dict[str, list[float]] = field(default_factory=dict)  # sampler name -> one value a second

    @property
    def rate_per_s(self) -> float:
        return self.ok / self.duration_s if self.duration_s > 0 else 0.0

    def merge(self, other: LoadResult) -> None:
        """Add another round of the same mode (interleaved rounds are reported as one)."""
        self.ok += other.ok
        self.errors.update(other.errors)
        self.duration_s += other.duration_s
        self.latencies_ms.extend(other.latencies_ms)
        self.per_second.extend(other.per_second)
        for key, values in other.samples.items():
            self.samples.setdefault(key, []).extend(values)

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies_ms)
        return {
            "ok": self.ok,
            "errors": dict(self.errors),
            "duration_s": round(self.duration_s, 2),
            "concurrency": self.concurrency,
            "per_s": round(self.rate_per_s, 1),
            "p50_ms": round(percentile(ordered, 50), 2),
            "p95_ms": round(percentile(ordered, 95), 2),
            "p99_ms": round(percentile(ordered, 99), 2),
            "max_ms": round(ordered[-1], 2) if ordered else 0.0,
            **{f"{key}_max": round(max(values), 2) for key, values in self.samples.items() if values},
        }


async def run_load(name: str, operation: Operation, concurrency: int, duration_s: float,
                   samplers: dict[str, Sampler] | None = None, quiet: bool = False) -> LoadResult:
    """Run ``operation`` from ``concurrency`` workers for ``duration_s`` seconds of wall time."""
    result = LoadResult(name, concurrency, 0.0)
    samplers = samplers or {}
    started = time.perf_counter()
    deadline = started + duration_s

    async def worker(index: int) -> None:
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            try:
                await operation(index)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bench counts failures; the money checks judge them afterwards
                result.errors[type(exc).__name__] += 1
                await asyncio.sleep(0.001)  # a failing operation must not spin the loop
                continue
            result.latencies_ms.append((time.perf_counter() - t0) * 1000.0)
            result.ok += 1

    finished = asyncio.Event()

    async def progress() -> None:
        last_ok, last_t = 0, started
        while not finished.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(finished.wait(), 1.0)
            if finished.is_set():
                return
            now = time.perf_counter()
            rate = (result.ok - last_ok) / (now - last_t)
            result.per_second.append(rate)
            gauges = []
            for key, sample in samplers.items():
                try:
                    value = await asyncio.wait_for(sample(), SAMPLE_TIMEOUT_S)
                except Exception as exc:  # a gauge must never stop the run
                    gauges.append(f"{key}=? ({type(exc).__name__})")
                    continue
                result.samples.setdefault(key, []).append(value)
                gauges.append(f"{key}={value:g}")
            last_ok, last_t = result.ok, now
            if not quiet:
                errors = sum(result.errors.values())
                print(f"  [{name}] {now - started:5.1f}s  {result.ok:8d} ok  {rate:8.0f}/s now  "
                      f"{errors} errors  {' '.join(gauges)}", file=sys.stderr, flush=True)

    # The reporter is told to end, not cancelled: redis-py can swallow a cancel that lands inside a
    # sampler's Redis call (seen: the window ended, the reporter went on printing 0/s for minutes).
    reporter = asyncio.create_task(progress())
    try:
        await asyncio.gather(*(worker(i) for i in range(concurrency)))
    finally:
        finished.set()
        await reporter
    result.duration_s = time.perf_counter() - started
    return result
