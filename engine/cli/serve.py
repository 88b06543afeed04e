"""Running the API: uvloop, N worker processes sharing one port (SO_REUSEPORT), graceful stop; with ``--demo``
the demo data and the channel simulators; on the way out, the embedded servers this run started."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import sys
from pathlib import Path

import uvloop
from aiohttp import web

from engine.bootstrap import create_app
from engine.cli.channel_sims import DEMO_PROFILES, SimulatorsUp, SimulatorThread, write_run_file
from engine.db import ServerUrls, ensure_servers, stop_started_servers
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


def _metrics_ports(settings: Settings) -> str:
    """Where each worker's own /metrics is (PAYENGINE_METRICS_PORT), for the start-up banner."""
    if not settings.metrics_port:
        return ""
    ports = [str(settings.metrics_port + i) for i in range(settings.workers)]
    return f"; per worker on port{'s' if len(ports) > 1 else ''} {', '.join(ports)}"


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


def channel_problem(settings: Settings) -> str | None:
    """Why this process must not serve with its channel settings, or None.

    With channels configured, a channel payment that names none goes to PAYENGINE_DEFAULT_CHANNEL; one that is
    not among them would refuse every such payment (400 unknown channel) while the process looked healthy, so
    serve refuses to start, like any other malformed setting."""
    names = [spec.name for spec in settings.channels]
    if names and settings.default_channel not in names:
        return (f"PAYENGINE_DEFAULT_CHANNEL={settings.default_channel} is not one of PAYENGINE_CHANNELS "
                f"({', '.join(names)}): channel payments naming no channel would all be refused; "
                f"set PAYENGINE_DEFAULT_CHANNEL to one of them")
    return None


def channel_warning(settings: Settings) -> str | None:
    """What a process without channels should say once at start (None when it has some)."""
    if settings.channels:
        return None
    return ("no channels configured (PAYENGINE_CHANNELS): channel payments are accepted but can never complete "
            "(they stay pending_voucher until they expire); wallet payments work. See README, Wiring a channel")


def _notify_base_url(settings: Settings) -> str:
    """The engine as the simulators on this machine reach it (the same base the gateway gives every order)."""
    if settings.public_url:
        return settings.public_url
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host  # a wildcard: reach it on loopback
    return f"http://{host}:{settings.port}"


def serve(settings: Settings, demo: bool = False, keep_servers: bool = False) -> int:
    """Serve until SIGINT/SIGTERM. ``demo`` seeds demo data and, unless PAYENGINE_CHANNELS is set, runs the
    channel simulators with the engine. The embedded servers it started are stopped on the way out unless
    ``keep_servers`` (or PAYENGINE_KEEP_SERVERS); ones it found running, and external ones, are left alone."""
    configure_logging(settings.log_level)
    if settings.workers == 1 and port_in_use(settings.host, settings.port):
        print(f"payengine: port {settings.port} on {settings.host} is in use (set PAYENGINE_PORT)", file=sys.stderr)
        return 2
    if problem := channel_problem(settings):
        print(f"payengine: {problem}", file=sys.stderr)
        return 2
    if not demo and (dev := dev_credentials(settings)):
        log.warning("running with development credentials: set %s before this serves anyone", " and ".join(dev))
        print(f"WARNING: {' and '.join(dev)} still at the development default; set them before real use",
              file=sys.stderr, flush=True)
    keep_servers = keep_servers or settings.keep_servers
    urls = ensure_servers(settings)
    sims: SimulatorThread | None = None
    up: SimulatorsUp | None = None
    run_file: Path | None = None
    try:
        if demo and not settings.channels:
            sims = SimulatorThread(DEMO_PROFILES, _notify_base_url(settings))
            up = sims.start()
            settings = settings.replace(channels=up.channels)
            run_file = write_run_file(settings.data_dir, f"http://{settings.host}:{settings.port}", up)
            log.info("channel simulators started", extra={"channels": up.urls})
        if demo:
            from engine.cli.demo import print_banner, seed_demo

            print_banner(settings, seed_demo(settings, urls.database_url), up,
                         stop_note=_stop_note(urls, keep_servers))
        if note := channel_warning(settings):
            print(f"WARNING: {note}", file=sys.stderr, flush=True)
        print(f"payengine listening on http://{settings.host}:{settings.port} "
              f"({settings.workers} worker{'s' if settings.workers > 1 else ''}); Ctrl-C to stop", flush=True)
        print(f"metrics: http://{settings.host}:{settings.port}/metrics{_metrics_ports(settings)}"
              " (Prometheus set-up: ops/README.md)", flush=True)
        return _run_workers(settings, urls)
    finally:
        if sims is not None:
            sims.stop()
        if run_file is not None:
            run_file.unlink(missing_ok=True)
        _stop_servers(urls, keep_servers)


def _stop_note(urls: ServerUrls, keep_servers: bool) -> str:
    """How Ctrl-C will end this run, for the banner."""
    started = " and ".join(urls.started)
    if not started:
        return "Ctrl-C (PostgreSQL and Redis were running before, or are external: left running)"
    if keep_servers:
        return f"Ctrl-C (the embedded {started} keep running, as asked; make servers-stop stops them)"
    return f"Ctrl-C (stops the embedded {started} this run started too; PAYENGINE_KEEP_SERVERS=1 keeps them)"


def _stop_servers(urls: ServerUrls, keep_servers: bool) -> None:
    """Stop the embedded servers this run started, unless asked to keep them; say which and how to get the other."""
    started = urls.started
    if not started:
        return
    if keep_servers:
        print(f"payengine: embedded {' and '.join(started)} keep running (payengine servers stop, or "
              "make servers-stop, stops them)", flush=True)
        return
    stop_started_servers(urls)
    print(f"payengine: stopped the embedded {' and '.join(started)} this run started "
          "(PAYENGINE_KEEP_SERVERS=1 keeps them for a fast restart)", flush=True)


def _run_workers(settings: Settings, urls: ServerUrls) -> int:
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
