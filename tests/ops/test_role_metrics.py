"""`payengine flush` and `payengine webhooks` serve no HTTP of their own: with PAYENGINE_METRICS_PORT they serve
/metrics there, as docker-compose's Prometheus scrapes them (ops/prometheus/prometheus.yml)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time

import aiohttp

from tests.ops.conftest import HOST, Engine, free_port

START_S = 60  # a cold start on a loaded 2-core machine: imports, migrations check, pools


async def _role_metrics(engine: Engine, role: str, wanted: str) -> str:
    port = free_port()
    env = {**os.environ, "PAYENGINE_DATABASE_URL": engine.database_url, "PAYENGINE_REDIS_URL": engine.redis_url,
           "PAYENGINE_METRICS_PORT": str(port), "PAYENGINE_HOST": HOST, "PAYENGINE_LOG_LEVEL": "WARNING"}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "engine.cli.main", role, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_S
        async with aiohttp.ClientSession() as session:
            while True:
                assert proc.returncode is None, f"payengine {role} exited {proc.returncode}"
                assert time.monotonic() < deadline, f"payengine {role}: no /metrics on {port} in {START_S} s"
                try:
                    async with session.get(f"http://{HOST}:{port}/metrics") as resp:
                        text = await resp.text()
                        if resp.status == 200 and wanted in text:
                            return text
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.2)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
        assert f"metrics: http://{HOST}:{port}/metrics" in out.decode(), out.decode()


async def test_flush_and_webhooks_roles_serve_metrics_on_their_port(engine: Engine) -> None:
    flush, webhooks = await asyncio.gather(
        _role_metrics(engine, "flush", "payengine_buffer_legs_applied_total"),
        _role_metrics(engine, "webhooks", "payengine_webhook_attempts_total"))
    assert "payengine_buffer_flush_seconds_bucket" in flush
    assert "payengine_webhook_attempt_seconds_bucket" in webhooks
