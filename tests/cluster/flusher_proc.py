"""A flusher process on the cluster: ``python -m tests.cluster.flusher_proc DATABASE_URL REDIS_URL ACCOUNTS``.

The buffer's own FlushRunner with the client from engine.redis_client (buffer/flush_main.py still
builds a single-node client, so it cannot be pointed at a cluster yet). Runs until SIGTERM, or until
PAYENGINE_BUFFER_CRASH=after_commit makes it SIGKILL itself after its first committed batch.
"""

from __future__ import annotations

import asyncio
import signal
import sys

import asyncpg

from buffer.runner import FlushRunner
from buffer.tuning import BufferTuning, LiveTuning
from engine.redis_client import create_redis


async def run(database_url: str, redis_url: str, accounts: list[str]) -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    redis = create_redis(redis_url, socket_timeout=5, socket_connect_timeout=2)
    try:
        tuning = LiveTuning(pool, BufferTuning(batch_size=25, flush_interval_ms=5, flusher_concurrency=3))
        # standby: queue for the accounts' locks (the test hands them over; see locks.py)
        await FlushRunner(database_url, redis, tuning, accounts, grace_ms=0,  # type: ignore[arg-type]
                          standby_wait_ms=60_000).run(stop)
    finally:
        await redis.aclose()
        await pool.close()


if __name__ == "__main__":
    asyncio.run(run(sys.argv[1], sys.argv[2], sys.argv[3].split(",")))
