"""A real Prometheus (Debian's binary) scraping a real engine under hot-account load, every second.

Every query of the dashboard and of the rules evaluates without error through Prometheus' HTTP API; the money
path and buffer panels return data; and stopping the flushers while payments go on fires PayengineBufferLagHigh
within its `for` window. Prometheus loads the real rule file with every `for` cut to FOR_S (the expressions and
thresholds are the file's own: the lag threshold is half the live max_lag, 2.5 s by default).
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from tests.ops import promql
from tests.ops.conftest import HOST, Engine, free_port, tool

FOR_S = 3
LAG_THRESHOLD_S = 2.5  # half the default max_lag_ms (5000)
# From the flushers stopping: the oldest leg passes the threshold, then stays past it for FOR_S; scrapes (1 s),
# the recording rule and the alert rule (1 s each) add a few seconds; the rest is slack for a loaded machine.
FIRE_WITHIN_S = LAG_THRESHOLD_S + FOR_S + 15
# Panels that must show data once the test has run its load. Other rows need channels, payouts, webhooks or
# day-end the test does not run; their queries are still sent and must evaluate.
MONEY_PATH_PANELS = ("Payments/s by status", "Refusals by reason")
BUFFER_ROW = "Hot-account buffer"


@dataclass
class Prometheus:
    url: str
    session: aiohttp.ClientSession

    async def get(self, path: str, **params: str) -> Any:
        async with self.session.get(self.url + path, params=params) as resp:
            body = await resp.json()
            assert resp.status == 200 and body["status"] == "success", (path, params, body)
            return body["data"]

    async def query(self, expr: str) -> list[dict[str, Any]]:
        data = await self.get("/api/v1/query", query=expr)
        result: list[dict[str, Any]] = data["result"] if data["resultType"] in ("vector", "matrix") \
            else [{"value": data["result"]}]
        return result

    async def firing(self, alertname: str) -> list[dict[str, Any]]:
        alerts = (await self.get("/api/v1/alerts"))["alerts"]
        return [a for a in alerts if a["labels"]["alertname"] == alertname and a["state"] == "firing"]


@contextlib.contextmanager
def prometheus_process(engine: Engine, workdir: Path) -> Iterator[str]:
    """Debian's prometheus on a free port of 127.0.0.1, scraping the engine every second, with the test copy of
    the rules; stopped (SIGTERM, then SIGKILL) on exit."""
    (workdir / "rules.yml").write_text(yaml.safe_dump(promql.with_short_for(FOR_S), sort_keys=False))
    target = engine.url.removeprefix("http://")
    (workdir / "prometheus.yml").write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
        "rule_files": ["rules.yml"],
        "scrape_configs": [{"job_name": "payengine-api", "static_configs": [{"targets": [target]}]}],
    }))
    port = free_port()
    proc = subprocess.Popen(
        [tool("prometheus"), f"--config.file={workdir / 'prometheus.yml'}", f"--storage.tsdb.path={workdir / 'data'}",
         f"--web.listen-address={HOST}:{port}", "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=(workdir / "prometheus.log").open("w"))
    try:
        yield f"http://{HOST}:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture
async def prometheus(engine: Engine, tmp_path: Path) -> AsyncIterator[Prometheus]:
    with prometheus_process(engine, tmp_path) as url:
        async with aiohttp.ClientSession() as session:
            deadline = time.monotonic() + 30
            while True:
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(url + "/-/ready") as resp:
                        if resp.status == 200:
                            break
                assert time.monotonic() < deadline, (tmp_path / "prometheus.log").read_text()
                await asyncio.sleep(0.2)
            yield Prometheus(url, session)


async def _until(what: str, timeout_s: float, check: Any) -> float:
    """Poll ``check()`` (async, truthy when done) every 0.5 s; returns the seconds it took."""
    started = time.monotonic()
    while not await check():
        assert time.monotonic() - started < timeout_s, f"{what}: not within {timeout_s} s"
        await asyncio.sleep(0.5)
    return time.monotonic() - started


async def _all_queries_evaluate(prom: Prometheus) -> dict[str, bool]:
    """Send every rule and dashboard query; returns, per panel title, whether any of its queries returned data."""
    for query in promql.rule_queries():
        await prom.query(query.expr)  # raises on a bad query
    has_data: dict[str, bool] = {}
    for panel in promql.panels():
        results = [await prom.query(q.expr) for q in panel.queries]
        has_data[f"{panel.row} / {panel.title}"] = any(results)
    return has_data


def _missing(has_data: dict[str, bool], wanted: list[str]) -> list[str]:
    return [key for key in wanted if not has_data[key]]


async def test_dashboard_and_rules_evaluate_and_buffer_lag_alert_fires(engine: Engine, prometheus: Prometheus) -> None:
    hot = set(await engine.hot_accounts())
    wanted = [f"{p.row} / {p.title}" for p in promql.panels()
              if p.row.startswith(BUFFER_ROW) or p.title in MONEY_PATH_PANELS]
    before = dict(engine.payments)
    await engine.start_flushers()
    async with engine.paying():
        # Healthy: flushers keep up. Wait until Prometheus has seen a few seconds of payments and flushes.
        async def flushing() -> bool:
            applied = await prom_rate(prometheus, "payengine_buffer_legs_applied_total")
            return applied > 0 and await prom_rate(prometheus, "payengine_http_requests_total") > 0
        await _until("Prometheus sees payments and flushes", 30, flushing)
        healthy = await _all_queries_evaluate(prometheus)
        assert not await prometheus.firing("PayengineBufferLagHigh")

        # Flushers stop; payments go on (and are soon refused by back-pressure).
        await engine.stop_flushers()

        async def lag_alert_fires() -> bool:
            return any(a["labels"].get("account") in hot for a in await prometheus.firing("PayengineBufferLagHigh"))
        took_s = await _until("PayengineBufferLagHigh fires", FIRE_WITHIN_S, lag_alert_fires)
        assert took_s >= LAG_THRESHOLD_S  # not before the oldest leg could be past the threshold

        # Back-pressure refusals and "time since last applied" have data only now.
        async def refusals_seen() -> bool:
            return await prom_rate(prometheus, "payengine_buffer_backpressure_refusals_total") > 0
        await _until("Prometheus sees back-pressure refusals", 20, refusals_seen)
        stopped = await _all_queries_evaluate(prometheus)
    await engine.drain()
    has_data = {key: healthy[key] or stopped[key] for key in healthy}
    assert _missing(has_data, wanted) == []
    made = {status: n - before.get(status, 0) for status, n in engine.payments.items()}
    assert made.get(201, 0) > 0 and made.get(503, 0) > 0, made  # paid, then refused by back-pressure


async def prom_rate(prom: Prometheus, metric: str) -> float:
    result = await prom.query(f"sum(rate({metric}[5s]))")
    return float(result[0]["value"][1]) if result else 0.0
