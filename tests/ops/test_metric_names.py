"""Every metric the alert rules and the dashboard read exists in a running engine's /metrics, so renaming a metric
breaks the build instead of silencing an alert; and the gauges read at scrape time say where the buffer stands
even with no flusher running."""

from __future__ import annotations

import asyncio

from prometheus_client.parser import text_string_to_metric_families

from tests.ops import promql
from tests.ops.conftest import Engine

# The names a family of each type is exposed under (prometheus_client strips _total from a counter's family).
SUFFIXES = {"counter": ("_total", "_created"), "gauge": ("",), "histogram": ("_bucket", "_count", "_sum", "_created"),
            "summary": ("", "_count", "_sum", "_created"), "info": ("_info",), "stateset": ("",),
            "unknown": ("",)}


async def _exposed(engine: Engine, url: str) -> tuple[set[str], str]:
    async with engine.session.get(url) as resp:
        assert resp.status == 200
        text = await resp.text()
    names = {family.name + suffix for family in text_string_to_metric_families(text)
             for suffix in SUFFIXES[family.type]}
    return names, text


async def test_every_metric_the_rules_and_dashboard_read_is_exported(engine: Engine) -> None:
    exposed, _ = await _exposed(engine, engine.url + "/metrics")
    wanted = promql.engine_metric_names()
    assert len(wanted) > 30
    assert sorted(wanted - exposed) == []


async def test_metrics_port_serves_the_same_metrics_as_the_api_port(engine: Engine) -> None:
    on_api, _ = await _exposed(engine, engine.url + "/metrics")
    on_port, text = await _exposed(engine, engine.metrics_url)
    assert on_port == on_api
    assert "payengine_buffer_max_lag_seconds 5.0" in text  # sampled on this port's scrapes too


async def test_buffer_gauges_keep_moving_while_no_flusher_runs(engine: Engine) -> None:
    assert engine.flushers is None
    async with engine.paying():
        await engine.paid(20)
    hot = await engine.hot_accounts()
    _, first = await _exposed(engine, engine.url + "/metrics")
    await asyncio.sleep(1.2)
    _, later = await _exposed(engine, engine.url + "/metrics")
    shown = [a for a in hot if f'payengine_buffer_depth{{account="{a}"}}' in first]
    assert shown == hot, "every hot account of the engine's database has a depth"

    def sample(text: str, name: str, account: str) -> float:
        prefix = f'{name}{{account="{account}"}} '
        return float(next(line for line in text.splitlines() if line.startswith(prefix))[len(prefix):])

    waiting = [a for a in hot if sample(first, "payengine_buffer_depth", a) > 0]
    assert waiting, "the payments left legs buffered"
    for account in waiting:
        assert sample(later, "payengine_buffer_oldest_age_seconds", account) >= \
            sample(first, "payengine_buffer_oldest_age_seconds", account) + 1.0
        # Nothing applied in between (0 when never flushed since Redis had the account).
        assert sample(later, "payengine_buffer_last_applied_timestamp_seconds", account) == \
            sample(first, "payengine_buffer_last_applied_timestamp_seconds", account)
    await engine.drain()  # nothing left buffered for the next test
