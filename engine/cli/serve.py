"""Running the API: uvloop, N worker processes sharing one port (SO_REUSEPORT), graceful stop."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import sys

import uvloop
from aiohttp import web

from engine.bootstrap import create_app
from engine.db import ensure_servers
from engine.http.health import metrics_listener
from engine.logs import configure_logging
from engine.settings import Settings

log = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT_S = 30.0


def _run_worker(settings: Settings, database_url: str, redis_url: str, index: int = 0) -> None:
    configure_logging(settings.log_level)
    app = create_app(settings, database_url, redis_url)
    if settings.metrics_port:
        app.cleanup_ctx.append(metrics_listener(settings.host, settings.metrics_port + index))
    # aiohttp stops accepting, waits for in-flight requests up to the timeout, then runs cleanup_ctx.
    web.run_app(app, host=settings.host, port=settings.port, reuse_port=settings.workers > 1,
                shutdown_timeout=SHUTDOWN_TIMEOUT_S, print=None, access_log=None,
                loop=uvloop.new_event_loop())


def port_in_use(host: str, port: int) -> bool:
    """True when nothing of ours could listen on (host, port): checked before anything starts or is claimed."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def dev_credentials(settings: Settings) -> list[str]:
    """The settings still at their development defaults (known to anyone who read the source)."""
    defaults = Settings()
    return [name for name, value in (("PAYENGINE_ADMIN_TOKEN", settings.admin_token),
                                     ("PAYENGINE_API_SECRET_KEY", settings.api_secret_key))
            if value == getattr(defaults, name.removeprefix("PAYENGINE_").lower())]


def _metrics_ports(settings: Settings) -> str:
    """Where each worker's own /metrics is (PAYENGINE_METRICS_PORT), for the start-up banner."""
    if not settings.metrics_port:
        return ""
    ports = [str(settings.metrics_port + i) for i in range(settings.workers)]
    return f"; per worker on port{'s' if len(ports) > 1 else ''} {', '.join(ports)}"


def serve(settings: Settings, demo: bool = False) -> int:
    configure_logging(settings.log_level)
    if settings.workers == 1 and port_in_use(settings.host, settings.port):
        print(f"payengine: port {settings.port} on {settings.host} is in use (set PAYENGINE_PORT)", file=sys.stderr)
        return 2
    if not demo and (dev := dev_credentials(settings)):
        log.warning("running with development credentials: set %s before this serves anyone", " and ".join(dev))
        print(f"WARNING: {' and '.join(dev)} still at the development default; set them before real use",
              file=sys.stderr, flush=True)
    urls = ensure_servers(settings)
    if demo:
        from engine.cli.demo import seed_and_print

        seed_and_print(settings, urls.database_url)
    print(f"payengine listening on http://{settings.host}:{settings.port} "
          f"({settings.workers} worker{'s' if settings.workers > 1 else ''}); Ctrl-C to stop", flush=True)
    print(f"metrics: http://{settings.host}:{settings.port}/metrics{_metrics_ports(settings)}"
          " (Prometheus set-up: ops/README.md)", flush=True)
    if settings.workers == 1:
        _run_worker(settings, urls.database_url, urls.redis_url)
        return 0
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_run_worker, args=(settings, urls.database_url, urls.redis_url, index),
                         daemon=False)
             for index in range(settings.workers)]
    for proc in procs:
        proc.start()

    def forward(signum: int, _frame: object) -> None:
        for proc in procs:
            if proc.pid is not None and proc.is_alive():
                os.kill(proc.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for proc in procs:
        proc.join()
    return max((proc.exitcode or 0) for proc in procs) if sys.platform else 0
