"""The flusher as its own process (``python -m buffer.flush_main``): what it shows an operator.

A payment whose after-commit enqueue never happened leaves legs only in PostgreSQL; the process
flushes the world's hot accounts, its recovery sweep puts those legs back, and the count is served
at /metrics for an alert to watch.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
import urllib.request
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import asyncpg
import pytest
import redis.asyncio as aioredis

from accounts.journal import EntryDraft
from accounts.store import PostedEntry
from buffer.flush_main import serve_metrics
from buffer.scripts import Scripts
from buffer.sink import RedisHotLegSink
from buffer.state import load_account
from engine.booking import Booker
from tests.buffer.procs import REPO, STANDBY_WAIT_MS, kill, reap, wait_for
from tests.buffer.world import World, check_ledger, open_world, pay, wait_drained
from tests.conftest import Servers


class LostSink:
    """The real sink whose after-commit enqueue never happens (the process died in between)."""

    def __init__(self, sink: RedisHotLegSink) -> None:
        self.sink = sink

    async def reserve(self, entry: EntryDraft) -> object:
        return await self.sink.reserve(entry)

    async def release(self, reservation: object) -> None:
        await self.sink.release(reservation)

    async def enqueue(self, entries: Sequence[PostedEntry], reservations: Sequence[object]) -> None:
        return None


@dataclass
class Flushed:
    world: World
    lost: dict[str, int]  # per hot account, legs the enqueue never sent
    metrics: str  # /metrics as served while the process ran
    stderr: bytes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        return str(resp.read().decode())


@pytest.fixture
async def flushed(servers: Servers, pool: asyncpg.Pool, redis_client: aioredis.Redis, owner: asyncpg.Connection,
                  sink: RedisHotLegSink) -> AsyncIterator[Flushed]:
    """Run ``python -m buffer.flush_main`` over a fresh world until it has drained a lost payment and a
    normal one, then stop it with SIGTERM (its own PID)."""
    world = await open_world(pool, customers=1, owner=owner)
    await sink.hot.refresh()
    scripts = Scripts(redis_client)
    for account_id in world.hot:  # loaded before the loss, so that the sweep, not a rebuild, finds it
        await load_account(owner, redis_client, scripts, account_id)
    posted = await pay(Booker(pool, LostSink(sink)), world, world.customers[0], 1000, 10)
    await pay(Booker(pool, sink), world, world.customers[0], 2000, 20)
    lost: dict[str, int] = {}
    for leg in posted.buffered_legs:
        lost[leg.account_id] = lost.get(leg.account_id, 0) + 1
    port = _free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "buffer.flush_main", "--database-url", servers.database_url,
        "--redis-url", servers.redis_url, "--accounts", ",".join(world.hot), "--grace-ms", "100",
        "--flush-interval-ms", "5", "--standby-wait-ms", str(STANDBY_WAIT_MS),
        "--metrics-port", str(port), cwd=REPO, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        await wait_for(pool, proc, waiting=True)  # queued for the owner's locks: granted the moment it lets go
        await owner.execute("SELECT pg_advisory_unlock_all()")
        await wait_for(pool, proc, holding=len(world.hot))
        await wait_drained(pool, world.hot, timeout_s=20)
        metrics = await asyncio.to_thread(_scrape, port)
        kill(proc, signal.SIGTERM)
        assert proc.stderr is not None
        stderr = await asyncio.wait_for(proc.stderr.read(), 20)
        assert await reap(proc) == 0
        yield Flushed(world, lost, metrics, stderr)
    finally:
        kill(proc)
        await proc.wait()


async def test_flusher_process_serves_the_legs_its_sweep_put_back(flushed: Flushed, pool: asyncpg.Pool) -> None:
    for account_id in flushed.world.hot:
        line = f'payengine_buffer_recovery_reenqueued_total{{account="{account_id}"}} {float(flushed.lost[account_id])}'
        assert line in flushed.metrics.splitlines()
    async with pool.acquire() as conn:
        await check_ledger(conn, flushed.world.all)


async def test_metrics_are_served_until_stopped() -> None:
    """What ``--metrics-port`` and ``payengine flush`` (PAYENGINE_FLUSH_METRICS_PORT) start."""
    port = _free_port()
    stop = serve_metrics("127.0.0.1", port)
    try:
        assert "payengine_buffer_recovery_reenqueued_total" in await asyncio.to_thread(_scrape, port)
    finally:
        stop()
    with pytest.raises(OSError):
        await asyncio.to_thread(_scrape, port)
