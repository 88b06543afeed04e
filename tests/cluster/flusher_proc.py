"""A flusher process on the cluster:
``python -m tests.cluster.flusher_proc DATABASE_URL REDIS_URL ACCOUNTS [--crash-after-commit]``.

The buffer's own FlushRunner with the client from engine.redis_client (buffer/flush_main.py still
builds a single-node client, so it cannot be pointed at a cluster yet). Runs until SIGTERM, or with
``--crash-after-commit`` until it SIGKILLs itself after its first committed batch, before the ack.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

import asyncpg

from buffer.flusher import AfterCommit
from buffer.runner import FlushRunner
from buffer.tuning import BufferTuning, LiveTuning
from engine.redis_client import create_redis
from tests.buffer.crashing_flusher import die_after_commit


async def run(database_url: str, redis_url: str, accounts: list[str], after_commit: AfterCommit | None) -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    redis = create_redis(redis_url, socket_timeout=5, socket_connect_timeout=2)
    try:
        tuning = LiveTuning(pool, BufferTuning(batch_size=25, flush_interval_ms=5, flusher_concurrency=3))
        # standby: queue for the accounts' locks (the test hands them over; see locks.py)
        await FlushRunner(database_url, redis, tuning, accounts, grace_ms=0,  # type: ignore[arg-type]
                          standby_wait_ms=60_000, after_commit=after_commit).run(stop)
    finally:
        await redis.aclose()
        await pool.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m tests.cluster.flusher_proc")
    parser.add_argument("database_url")
    parser.add_argument("redis_url")
    parser.add_argument("accounts", help="comma-separated account ids")
    parser.add_argument("--crash-after-commit", action="store_true")
    args = parser.parse_args()
    asyncio.run(run(args.database_url, args.redis_url, args.accounts.split(","),
                    die_after_commit if args.crash_after_commit else None))
