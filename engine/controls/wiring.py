"""The controls' background loops: usage pruning, the orphan sweep and the owed counter resets.

Started by engine/bootstrap.py in every process that runs the gate's loops (API and gateway roles).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import date, timedelta

import asyncpg

from engine.background import BackgroundJob
from engine.controls import store
from engine.controls.errors import ControlsUnavailable
from engine.controls.gate import ControlGate
from engine.controls.metrics import USAGE_ORPHAN_SWEEP_FAILURES
from engine.controls.orphans import reset_owed, sweep_orphans
from engine.settings import Settings

log = logging.getLogger(__name__)

PRUNE_INTERVAL_S = 3600.0
PRUNE_BATCH_MAX = 10_000
PRUNE_BATCHES_MAX = 100


async def _prune_usage(pool: asyncpg.Pool, today: Callable[[], date]) -> None:
    """Usage rows past every window (a month) and the history (HISTORY_DAYS) go, in bounded batches."""
    while True:
        await asyncio.sleep(PRUNE_INTERVAL_S)
        before = today() - timedelta(days=store.HISTORY_DAYS + 31)
        try:
            async with pool.acquire() as conn:
                for _ in range(PRUNE_BATCHES_MAX):  # bounded; what is left goes next time
                    if await store.delete_old_usage(conn, before, PRUNE_BATCH_MAX) < PRUNE_BATCH_MAX:
                        break
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):  # the loop survives a database blip
            log.warning("pruning limit usage failed; will retry", exc_info=True)


async def _every(interval_s: float, what: str, step: Callable[[], Awaitable[object]]) -> None:
    """Run ``step`` every ``interval_s``; a database or Redis blip is counted and logged, and the loop goes on."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            await step()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, ControlsUnavailable):
            USAGE_ORPHAN_SWEEP_FAILURES.inc()
            log.warning("%s failed; will retry", what, exc_info=True)


def control_loops(pool: asyncpg.Pool, settings: Settings, gate: ControlGate,
                  today: Callable[[], date]) -> list[BackgroundJob]:
    """``today``: the open accounting date, the day notion of daily limits.

    - the orphan sweep gives back usage of admissions that never booked (orphans.py), every
      CONTROLS_ORPHAN_SWEEP_INTERVAL_S;
    - the owed resets drop and rebuild the counters of released usage Redis may still count (a give-back it
      did not answer, a retried release), every CONTROLS_RESET_INTERVAL_S: until then a customer is
      over-counted in Redis."""
    return [
        ("controls-prune-usage", _prune_usage(pool, today)),
        ("controls-sweep-orphans", _every(settings.controls_orphan_sweep_interval_s, "limit usage orphan sweep",
                                          lambda: sweep_orphans(pool, settings.controls_orphan_grace_s))),
        ("controls-reset-owed", _every(settings.controls_reset_interval_s, "limit counter resets",
                                       lambda: reset_owed(pool, gate.counters))),
    ]
