"""Real flusher processes for fault tests, and a mixed load of payments and hot debits.

Every process here is started by the test and killed by its own PID. Other tests' apps run
in-process flushers over every hot account, so a test takes its accounts from its ``owner``
connection to processes started in standby mode: they wait in the advisory-lock queue and so are
granted the locks the moment the owner lets go (or the previous process dies), ahead of anyone
trying once a second.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from accounts.errors import InsufficientFunds
from buffer.errors import HotBufferError
from engine.booking import Booker
from tests.buffer.world import World, pay, refund

STANDBY_WAIT_MS = 1000
REPO = Path(__file__).resolve().parents[2]  # the flushers import this checkout's code


async def spawn_flusher(database_url: str, redis_url: str, accounts: Sequence[str], *,
                        crash_after_commit: bool = False, batch_size: int = 16) -> asyncio.subprocess.Process:
    """``python -m buffer.flush_main`` over ``accounts``; with ``crash_after_commit`` the same flushers
    SIGKILL their process after the first batch they commit, before its ack (tests/buffer/crashing_flusher.py)."""
    module = "tests.buffer.crashing_flusher" if crash_after_commit else "buffer.flush_main"
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", module, "--database-url", database_url, "--redis-url", redis_url,
        "--accounts", ",".join(accounts), "--grace-ms", "300", "--batch-size", str(batch_size),
        "--flush-interval-ms", "5", "--standby-wait-ms", str(STANDBY_WAIT_MS), cwd=REPO,
        stdout=asyncio.subprocess.DEVNULL, stderr=None if os.environ.get("PAYENGINE_TEST_FLUSHER_LOGS") else
        asyncio.subprocess.DEVNULL,  # PAYENGINE_TEST_FLUSHER_LOGS=1 shows the flushers' logs (debugging)
    )


async def lock_state(pool: asyncpg.Pool, pid: int) -> tuple[int, int]:
    """(advisory locks held, advisory locks waited for) by the flusher process ``pid``."""
    row = await pool.fetchrow(
        "SELECT count(*) FILTER (WHERE l.granted) AS held, count(*) FILTER (WHERE NOT l.granted) AS waiting"
        " FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
        " WHERE l.locktype = 'advisory' AND a.application_name = $1", f"payengine-flusher:{pid}")
    return int(row["held"]), int(row["waiting"])


async def wait_for(pool: asyncpg.Pool, proc: asyncio.subprocess.Process, *, waiting: bool = False,
                   holding: int = 0, timeout_s: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        held, queued = await lock_state(pool, proc.pid)
        if (not waiting or queued) and held >= holding:
            return
        assert proc.returncode is None, f"flusher {proc.pid} exited with {proc.returncode}"
        assert asyncio.get_running_loop().time() < deadline, f"flusher {proc.pid}: held {held}, waiting {queued}"
        await asyncio.sleep(0.02)


def kill(proc: asyncio.subprocess.Process, sig: int = signal.SIGKILL) -> None:
    if proc.returncode is None:
        os.kill(proc.pid, sig)


async def reap(proc: asyncio.subprocess.Process, timeout_s: float = 20) -> int:
    return await asyncio.wait_for(proc.wait(), timeout_s)


@dataclass
class Tally:
    """What the load booked, by the client's count: the money the ledger must show afterwards."""

    payments: int = 0
    merchant_net: int = 0
    fee_total: int = 0
    refused: dict[str, int] = field(default_factory=dict)

    def refuse(self, exc: Exception) -> None:
        self.refused[type(exc).__name__] = self.refused.get(type(exc).__name__, 0) + 1


async def mixed_load(booker: Booker, world: World, stop: asyncio.Event, tally: Tally, payers: int = 8,
                     seed: int = 0) -> None:
    """Payments to the hot merchant with every 5th operation a refund debiting it, until ``stop``."""

    async def payer(i: int) -> None:
        rng = random.Random(seed * 1000 + i)
        customer = world.customers[i % len(world.customers)]
        while not stop.is_set():
            amount = rng.randint(100, 3000)
            try:
                if rng.random() < 0.2:
                    await refund(booker, world, customer, amount)
                    tally.merchant_net -= amount
                else:
                    fee = amount // 50
                    await pay(booker, world, customer, amount, fee)
                    tally.payments += 1
                    tally.merchant_net += amount - fee
                    tally.fee_total += fee
            except (InsufficientFunds, HotBufferError) as exc:
                tally.refuse(exc)
                await asyncio.sleep(0.01)

    await asyncio.gather(*(payer(i) for i in range(payers)))
