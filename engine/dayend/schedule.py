"""The daily day-end: close the open accounting date once its calendar day is over.

Every API process runs a ``DayEndScheduler`` (``PAYENGINE_DAYEND_AT``, default 00:05 UTC; ``off`` turns
it off, e.g. when an external scheduler calls ``payengine day-end``). The open date D is due at
D + 1 day at that time. Running it everywhere is safe: day-end holds a PostgreSQL advisory lock for
the whole run (another process gets DayEndRunning and waits for the next check), a closed date is
never closed again, and an interrupted run is resumed from its recorded step. After an outage the
scheduler catches up one day per run, oldest first, because each run opens the next date.

A run that ends 'failed' (the trial balance did not hold, a buffer did not drain in time) is retried
only after ``retry_after_s``: it needs an operator, and retrying every check would flood the logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, date, datetime, time, timedelta

import asyncpg
from prometheus_client import Counter

from engine.dayend.calendar import AccountingCalendar, read_open_date
from engine.dayend.flow import DayEndError, DayEndOptions, DayEndRunning, run_day_end
from engine.dayend.partitions import partition_health, publish_health

log = logging.getLogger(__name__)

CHECK_S = 30.0
RETRY_AFTER_S = 600.0
HEALTH_EVERY_S = 300.0  # partition health between day-ends (gauges in engine/dayend/metrics.py)

RUNS = Counter("payengine_dayend_scheduled_runs_total", "Day-end runs started by the scheduler", ["result"])


def due_at(open_date: date, at: time) -> datetime:
    """When the open date closes: the next calendar day at ``at`` (UTC)."""
    return datetime.combine(open_date + timedelta(days=1), at, UTC)


def is_due(open_date: date, now: datetime, at: time) -> bool:
    return now >= due_at(open_date, at)


class DayEndScheduler:
    def __init__(self, pool: asyncpg.Pool, at: time, options: DayEndOptions,
                 calendar: AccountingCalendar | None = None, check_s: float = CHECK_S,
                 retry_after_s: float = RETRY_AFTER_S, health_every_s: float = HEALTH_EVERY_S) -> None:
        self.pool = pool
        self.health_every_s = health_every_s
        self._health_at: datetime | None = None
        self.at = at
        self.options = options
        self.calendar = calendar
        self.check_s = check_s
        self.retry_after_s = retry_after_s

    async def run_once(self, now: datetime) -> str:
        """One check: 'idle' (not due), 'done', 'failed', 'busy' (another process runs it) or 'error'."""
        async with self.pool.acquire() as conn:
            open_date = await read_open_date(conn)
            if self._health_at is None or (now - self._health_at).total_seconds() >= self.health_every_s:
                # A day-end that did not run for days shows here (days ahead falling, legs in the
                # default partition) before the partitions run out.
                publish_health(await partition_health(conn, open_date))
                self._health_at = now
        if not is_due(open_date, now, self.at):
            return "idle"
        log.info("scheduled day-end starting", extra={"accounting_date": open_date.isoformat()})
        try:
            row = await run_day_end(self.pool, None, self.options, self.calendar)
        except DayEndRunning:
            result = "busy"
        except DayEndError as exc:
            log.error("scheduled day-end refused", extra={"accounting_date": open_date.isoformat(), "error": str(exc)})
            result = "error"
        else:
            result = "done" if row.status == "done" else "failed"
            if result == "failed":
                log.error("scheduled day-end failed", extra={"accounting_date": row.accounting_date.isoformat(),
                                                             "error": row.error})
        RUNS.labels(result).inc()
        return result

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                result = await self.run_once(datetime.now(UTC))
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("scheduled day-end check failed", extra={"error": type(exc).__name__})
                result = "error"
            # 'done' may leave more days to catch up: check again at once.
            pause = 0.0 if result == "done" else self.retry_after_s if result in ("failed", "error") \
                else self.check_s
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), pause)
