"""Liveness and readiness, and the Prometheus metrics of the process (also on a port of its own)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from engine.http.gauges import sample_gauges
from engine.http.metrics import DEPENDENCY_UP
from engine.services import SERVICES, services_of

PROBE_TIMEOUT_S = 2.0


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """503 only when this node cannot serve: PostgreSQL (the record of every payment) is unreachable. Redis
    down is "degraded", 200: payments that are safe without it still book (the rules that need Redis refuse
    with 503 per request), so a load balancer must not pull every node at once for it."""
    svc = services_of(request)
    problems: dict[str, str] = {}
    try:
        async with svc.pool.acquire(timeout=PROBE_TIMEOUT_S) as conn:
            await conn.fetchval("SELECT 1")
    except Exception as exc:  # readiness reports any failure, it does not crash
        problems["postgresql"] = type(exc).__name__
    try:
        await asyncio.wait_for(svc.redis.ping(), timeout=PROBE_TIMEOUT_S)
    except Exception as exc:
        problems["redis"] = type(exc).__name__
    for dependency in ("postgresql", "redis"):
        DEPENDENCY_UP.labels(dependency).set(0 if dependency in problems else 1)
    if "postgresql" in problems:
        return web.json_response({"status": "unavailable", "problems": problems}, status=503)
    if problems:
        return web.json_response({"status": "degraded", "problems": problems})
    return web.json_response({"status": "ready"})


async def metrics_handler(request: web.Request) -> web.Response:
    await sample_gauges(services_of(request))
    response = web.Response(body=generate_latest())
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


def metrics_listener(host: str, port: int) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context serving the app's ``/metrics`` on ``port`` too (PAYENGINE_METRICS_PORT + the worker's
    index): API workers sharing one port (SO_REUSEPORT) answer a scrape there from whichever worker the kernel
    picks, each with its own counters, which Prometheus would read as resets; one port per worker does not."""
    async def listen(app: web.Application) -> AsyncIterator[None]:
        metrics_app = web.Application()
        metrics_app[SERVICES] = app[SERVICES]
        metrics_app.router.add_get("/metrics", metrics_handler)
        runner = web.AppRunner(metrics_app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
            yield
        finally:
            await runner.cleanup()

    return listen
