"""The daily day-end scheduler on its own database: due times, catching up, and one run at a time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta

import asyncpg
import pytest
from prometheus_client import REGISTRY

from engine.dayend.flow import DayEndOptions
from engine.dayend.partitions import ensure_partitions
from engine.dayend.schedule import DayEndScheduler, is_due
from engine.settings import Settings, SettingsError
from tests.conftest import Servers
from tests.databases import private_database
from tests.dayend.conftest import Db

AT = time(0, 5)


def test_due_the_next_day_at_the_cut_off() -> None:
    day = date(2026, 11, 21)
    assert not is_due(day, datetime(2026, 11, 21, 23, 59, tzinfo=UTC), AT)
    assert not is_due(day, datetime(2026, 11, 22, 0, 4, 59, tzinfo=UTC), AT)
    assert is_due(day, datetime(2026, 11, 22, 0, 5, tzinfo=UTC), AT)
    assert is_due(day, datetime(2026, 11, 25, 12, 0, tzinfo=UTC), AT)  # days behind: still due


def test_setting_accepts_a_clock_time_or_off() -> None:
    assert Settings.from_env({"PAYENGINE_DAYEND_AT": "3:30"}).dayend_at == "03:30"
    assert Settings.from_env({"PAYENGINE_DAYEND_AT": "OFF"}).dayend_at == "off"
    assert Settings().dayend_at == "00:05"
    for bad in ("24:00", "12:60", "noon", "12:5", "-1:00"):
        with pytest.raises(SettingsError, match="PAYENGINE_DAYEND_AT"):
            Settings.from_env({"PAYENGINE_DAYEND_AT": bad})


async def _open_date(db: Db) -> date:
    value = await db.pool.fetchval("SELECT open_date FROM accounting_calendar")
    assert isinstance(value, date)
    return value


@pytest.fixture
async def db(servers: Servers) -> AsyncIterator[Db]:
    """A fresh database per test: the open date only ever moves forward, as in production."""
    async with private_database(servers.database_url, "dayend_schedule") as url:
        pool = await asyncpg.create_pool(url, min_size=1, max_size=8)
        assert pool is not None
        try:
            yield Db(url, pool)
        finally:
            await pool.close()


async def test_scheduler_closes_overdue_days_one_by_one_then_idles(db: Db) -> None:
    today = datetime.now(UTC).date()
    await db.pool.execute("UPDATE accounting_calendar SET open_date = $1", today - timedelta(days=2))
    options = DayEndOptions(drain_timeout_s=10, poll_interval_s=0.05)
    scheduler = DayEndScheduler(db.pool, AT, options, check_s=0.05)
    now = datetime.combine(today, time(0, 6), UTC)
    assert await scheduler.run_once(now) == "done"
    assert await _open_date(db) == today - timedelta(days=1)
    # Two schedulers (two API processes) at once: one runs it, the other finds it busy or already done.
    results = await asyncio.gather(scheduler.run_once(now), DayEndScheduler(db.pool, AT, options).run_once(now))
    assert sorted(results) in (["busy", "done"], ["done", "idle"]), results
    assert await _open_date(db) == today
    assert await scheduler.run_once(now) == "idle"  # today closes tomorrow at 00:05
    rows = await db.pool.fetch("SELECT accounting_date, status FROM day_ends ORDER BY accounting_date")
    assert [(r["accounting_date"], r["status"]) for r in rows][-2:] == [
        (today - timedelta(days=2), "done"), (today - timedelta(days=1), "done")]


async def test_run_loop_catches_up_and_stops_when_asked(db: Db) -> None:
    today = datetime.now(UTC).date()
    await db.pool.execute("UPDATE accounting_calendar SET open_date = $1", today - timedelta(days=3))
    scheduler = DayEndScheduler(db.pool, AT, DayEndOptions(drain_timeout_s=10, poll_interval_s=0.05), check_s=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(scheduler.run(stop))
    try:
        for _ in range(600):  # at most 30 s
            if await _open_date(db) == today:
                break
            await asyncio.sleep(0.05)
        assert await _open_date(db) == today
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


def _gauge(name: str) -> float | None:
    return REGISTRY.get_sample_value(name)


async def test_scheduler_publishes_partition_health_between_day_ends(db: Db) -> None:
    today = datetime.now(UTC).date()
    scheduler = DayEndScheduler(db.pool, AT, DayEndOptions(), health_every_s=300)
    await db.pool.execute("UPDATE accounting_calendar SET open_date = $1", today)
    async with db.pool.acquire() as conn:
        await ensure_partitions(conn, today, days_ahead=3)
    now = datetime.combine(today, time(12, 0), UTC)
    assert await scheduler.run_once(now) == "idle"
    assert _gauge("payengine_journal_partitions_ok") == 1
    assert _gauge("payengine_journal_partition_open_date_covered") == 1
    assert (_gauge("payengine_journal_partitions_days_ahead") or 0) >= 3
    assert _gauge("payengine_journal_partition_default_rows") == 0

    # Day-end stopped running long ago (here: the open date is far past the partitions made): the
    # gauges say so at the next health check, while the scheduler itself is still idle.
    far = today + timedelta(days=400)
    await db.pool.execute("UPDATE accounting_calendar SET open_date = $1", far)
    assert await scheduler.run_once(now + timedelta(seconds=30)) == "idle"
    assert _gauge("payengine_journal_partitions_ok") == 1  # not checked again within health_every_s
    assert await scheduler.run_once(now + timedelta(seconds=301)) == "idle"
    assert _gauge("payengine_journal_partitions_ok") == 0
    assert _gauge("payengine_journal_partition_open_date_covered") == 0
    assert _gauge("payengine_journal_partitions_days_ahead") == 0
