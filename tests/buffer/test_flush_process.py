"""The flusher as its own process, as ``python -m buffer.flush_main`` and as ``payengine flush``: what it
shows an operator.

A payment whose after-commit enqueue never happened leaves legs only in PostgreSQL; the process flushes
the world's hot accounts, its recovery sweep puts those legs back, the count is served at /metrics for
an alert to watch, and the log is JSON lines carrying the account of every batch and recovery, like the
API's. Each test runs its process on a database of this module's own: the in-process flushers of other
tests' apps (they flush every hot account of the shared database) cannot take the accounts from it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import urllib.request
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from accounts.journal import EntryDraft
from accounts.store import PostedEntry
from buffer.flush_main import serve_metrics
from buffer.scripts import Scripts
from buffer.sink import RedisHotLegSink
from buffer.state import load_account
from buffer.tuning import BufferTuning, LiveTuning
from engine.booking import Booker
from tests.buffer.procs import REPO, kill, reap
from tests.buffer.world import World, check_ledger, open_world, pay, wait_drained
from tests.conftest import Servers
from tests.databases import private_database

ENTRY_POINTS = ("buffer.flush_main", "payengine flush")


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
    lost: dict[str, int]  # per hot account, legs whose enqueue was never sent
    metrics: str  # /metrics as the process served it
    log: list[str]  # its stderr, line by line


@pytest.fixture(scope="module")
async def db_url(servers: Servers) -> AsyncIterator[str]:
    async with private_database(servers.database_url, "flush_process") as url:
        yield url


@pytest.fixture(scope="module")
async def pool(db_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(db_url, min_size=1, max_size=4)
    assert p is not None
    yield p
    await p.close()


@pytest.fixture
async def sink(pool: asyncpg.Pool, redis_client: aioredis.Redis) -> RedisHotLegSink:
    return RedisHotLegSink(pool, redis_client, LiveTuning(pool, BufferTuning()))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        return str(resp.read().decode())


def _command(entry_point: str, database_url: str, redis_url: str, accounts: Sequence[str],
             metrics_port: int) -> tuple[list[str], dict[str, str]]:
    """The same flushers either way: recovery grace 100 ms, a flush every 5 ms, DEBUG (a line per batch)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYENGINE_")}
    if entry_point == "buffer.flush_main":
        return [sys.executable, "-m", "buffer.flush_main", "--database-url", database_url, "--redis-url", redis_url,
                "--accounts", ",".join(accounts), "--grace-ms", "100", "--flush-interval-ms", "5",
                "--log-level", "DEBUG", "--metrics-port", str(metrics_port)], env
    env.update(PAYENGINE_DATABASE_URL=database_url, PAYENGINE_REDIS_URL=redis_url, PAYENGINE_LOG_LEVEL="DEBUG",
               PAYENGINE_BUFFER_RECOVERY_GRACE_MS="100", PAYENGINE_BUFFER_FLUSH_INTERVAL_MS="5",
               PAYENGINE_HOST="127.0.0.1", PAYENGINE_FLUSH_METRICS_PORT=str(metrics_port))
    return [sys.executable, "-m", "engine.cli.main", "flush", "--accounts", ",".join(accounts)], env


@pytest.fixture(params=ENTRY_POINTS)
async def flushed(request: pytest.FixtureRequest, db_url: str, servers: Servers, pool: asyncpg.Pool,
                  redis_client: aioredis.Redis, sink: RedisHotLegSink) -> AsyncIterator[Flushed]:
    """Run the flusher process over a fresh world until it has applied a lost payment and a normal one,
    then stop it with SIGTERM (by its own PID)."""
    world = await open_world(pool, customers=1)
    await sink.hot.refresh()
    scripts = Scripts(redis_client)
    async with pool.acquire() as conn:
        for account_id in world.hot:  # loaded before the loss, so that the sweep, not a rebuild, finds it
            await load_account(conn, redis_client, scripts, account_id)
    posted = await pay(Booker(pool, LostSink(sink)), world, world.customers[0], 1000, 10)
    await pay(Booker(pool, sink), world, world.customers[0], 2000, 20)
    lost: dict[str, int] = {}
    for leg in posted.buffered_legs:
        lost[leg.account_id] = lost.get(leg.account_id, 0) + 1
    port = _free_port()
    argv, env = _command(request.param, db_url, servers.redis_url, world.hot, port)
    proc = await asyncio.create_subprocess_exec(*argv, cwd=REPO, env=env, stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.PIPE)
    assert proc.stderr is not None
    stderr = asyncio.create_task(proc.stderr.read())  # read all along: a full pipe would stall the process
    try:
        await wait_drained(pool, world.hot, timeout_s=30)
        metrics = await asyncio.to_thread(_scrape, port)
        kill(proc, signal.SIGTERM)
        assert await reap(proc) == 0
        yield Flushed(world, lost, metrics, (await asyncio.wait_for(stderr, 10)).decode().splitlines())
    finally:
        kill(proc)
        await proc.wait()
        stderr.cancel()


async def test_flusher_process_serves_the_legs_its_sweep_put_back(flushed: Flushed, pool: asyncpg.Pool) -> None:
    served = flushed.metrics.splitlines()
    for account_id in flushed.world.hot:
        count = float(flushed.lost[account_id])
        assert f'payengine_buffer_recovery_reenqueued_total{{account="{account_id}"}} {count}' in served
    async with pool.acquire() as conn:
        await check_ledger(conn, flushed.world.all)


async def test_flusher_process_logs_json_lines_naming_the_account_of_each_batch_and_recovery(
        flushed: Flushed) -> None:
    events: list[dict[str, Any]] = [json.loads(line) for line in flushed.log if line.strip()]
    assert events and all({"ts", "level", "logger", "msg"} <= e.keys() for e in events)
    recovered = {e["account_id"]: e["legs"] for e in events if e["msg"] == "recovery re-enqueued legs"}
    assert recovered == flushed.lost
    batches = [e for e in events if e["msg"] == "batch applied"]
    assert {e["account_id"] for e in batches} == set(flushed.world.hot)
    assert all(isinstance(e["legs"], int) and e["legs"] > 0 for e in batches)


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
