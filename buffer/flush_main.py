"""A flusher process: ``python -m buffer.flush_main --database-url ... --redis-url ...``.

``payengine flush`` runs the same thing with URLs and defaults from settings. Stops cleanly on
SIGTERM/SIGINT; SIGKILL at any point loses nothing (see buffer/flusher.py). With ``--metrics-port``
the process serves its metrics (buffer/metrics.py) at ``/metrics``, as the API does for its own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Sequence

import asyncpg
import redis.asyncio as aioredis
from prometheus_client import start_http_server

from buffer.flusher import AfterCommit
from buffer.logs import configure_json_logging
from buffer.recovery import GRACE_MS
from buffer.runner import FlushRunner
from buffer.tuning import BufferTuning, LiveTuning

log = logging.getLogger(__name__)


async def run_flushers(database_url: str, redis_url: str, defaults: BufferTuning,
                       only_accounts: Sequence[str] | None = None, grace_ms: int = GRACE_MS,
                       stop: asyncio.Event | None = None, standby_wait_ms: int = 0,
                       redis_client: aioredis.Redis | None = None,
                       on_runner: Callable[[FlushRunner], None] | None = None,
                       after_commit: AfterCommit | None = None) -> None:
    """Run flushers until ``stop`` is set (or, when no event is given, SIGTERM/SIGINT: the process shape).

    ``redis_client`` (e.g. a Redis Cluster client built by the engine) replaces the single-server
    client made from ``redis_url``; it is closed on return either way. ``on_runner`` is handed the
    runner once it exists (buffer.flush_thread reads what it owns). ``after_commit`` goes to every flush
    (see buffer.flusher.flush_accounts)."""
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
    redis = redis_client or aioredis.Redis.from_url(redis_url, decode_responses=False, socket_timeout=5,
                                                    socket_connect_timeout=2)
    try:  # the client is closed even when the pool cannot open (buffer.flush_thread retries with a new one)
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
        assert pool is not None
        try:
            runner = FlushRunner(database_url, redis, LiveTuning(pool, defaults), only_accounts, grace_ms,
                                 standby_wait_ms, after_commit=after_commit)
            if on_runner is not None:
                on_runner(runner)
            await runner.run(stop)
        finally:
            await pool.close()
    finally:
        await redis.aclose()


def serve_metrics(host: str, port: int) -> Callable[[], None]:
    """Serve this process's metrics at ``http://host:port/metrics`` from a daemon thread (the flushers'
    counters live in the process that flushes: an alert on recovered legs needs them scraped there).
    Returns the function that stops serving."""
    server, thread = start_http_server(port, addr=host)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return stop


def main(argv: list[str] | None = None, after_commit: AfterCommit | None = None) -> int:
    """The process, from ``argv``; ``after_commit`` goes to every flush (tests/buffer/crashing_flusher.py)."""
    base = BufferTuning()
    parser = argparse.ArgumentParser(prog="python -m buffer.flush_main", description=__doc__)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--accounts", default="", help="comma-separated account ids (default: every hot account)")
    parser.add_argument("--grace-ms", type=int, default=GRACE_MS, help="recovery grace period")
    parser.add_argument("--batch-size", type=int, default=base.batch_size)
    parser.add_argument("--flush-interval-ms", type=int, default=base.flush_interval_ms)
    parser.add_argument("--concurrency", type=int, default=base.flusher_concurrency)
    parser.add_argument("--standby-wait-ms", type=int, default=0,
                        help="queue for accounts other flushers own (take over the instant they die)")
    parser.add_argument("--log-level", default="INFO", type=str.upper,
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="DEBUG adds a line per batch")
    parser.add_argument("--metrics-port", type=int, default=0, help="serve /metrics on this port (0: do not)")
    parser.add_argument("--metrics-host", default="127.0.0.1", help="address /metrics listens on")
    args = parser.parse_args(argv)
    configure_json_logging(args.log_level)  # the line every engine role writes (buffer/logs.py)
    defaults = BufferTuning(batch_size=args.batch_size, flush_interval_ms=args.flush_interval_ms,
                            flusher_concurrency=args.concurrency)
    only = [a for a in args.accounts.split(",") if a] or None
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency; plain asyncio works too
        pass
    stop_metrics = serve_metrics(args.metrics_host, args.metrics_port) if args.metrics_port else None
    try:
        asyncio.run(run_flushers(args.database_url, args.redis_url, defaults, only, args.grace_ms,
                                 standby_wait_ms=args.standby_wait_ms, after_commit=after_commit))
    finally:
        if stop_metrics is not None:
            stop_metrics()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
