"""Daily partitions of journal_legs (migration 070): created ahead by day-end, and a health check.

Postings never wait for this module: a leg whose date has no partition lands in journal_legs_default,
so a day-end that did not run (or could not get its lock) costs nothing but a warning. Day-end makes
the partitions for the next ``days_ahead`` dates; each is its own short transaction with a lock
timeout, because attaching a partition briefly locks the tables the legs' foreign keys point at
(accounts, journal_entries) and must not stall bookings behind a long-running statement. A partition
that could not be made now is made by the next run; legs that reached the default partition meanwhile
are moved into their day's partition when it is created (journal_legs_add_partition).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import asyncpg

from engine.dayend import metrics

log = logging.getLogger(__name__)

DAYS_AHEAD_DEFAULT = 7
DAYS_AHEAD_WARN = 2  # fewer partitions ahead of the open date than this: day-end has not run for days
LOCK_TIMEOUT_MS_DEFAULT = 2_000
DEFAULT_ROWS_COUNTED_MAX = 10_000  # counting stops here: the check only needs "how bad", not an exact number
_DAILY = re.compile(r"^journal_legs_(\d{8})$")


@dataclass(frozen=True, slots=True)
class PartitionHealth:
    open_date: date
    days_ahead: int  # consecutive daily partitions after the open date (the open date's own not counted)
    open_date_covered: bool  # the open date has its own partition (else its legs go to the default one)
    default_rows: int  # legs in the default partition, counted up to DEFAULT_ROWS_COUNTED_MAX
    daily_partitions: int

    @property
    def ok(self) -> bool:
        return self.open_date_covered and self.days_ahead >= DAYS_AHEAD_WARN and self.default_rows == 0

    def as_dict(self) -> dict[str, object]:
        return {"open_date": self.open_date.isoformat(), "days_ahead": self.days_ahead,
                "open_date_covered": self.open_date_covered, "default_rows": self.default_rows,
                "daily_partitions": self.daily_partitions, "ok": self.ok}


async def daily_partition_dates(conn: asyncpg.Connection) -> list[date]:
    """Dates that have their own partition, ascending."""
    names = await conn.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'journal_legs'::regclass")
    found = (_DAILY.match(r["relname"]) for r in names)
    return sorted(datetime.strptime(m.group(1), "%Y%m%d").date() for m in found if m)


async def ensure_partitions(conn: asyncpg.Connection, first_day: date, days_ahead: int = DAYS_AHEAD_DEFAULT,
                            lock_timeout_ms: int = LOCK_TIMEOUT_MS_DEFAULT) -> list[date]:
    """Create the partitions for ``first_day`` .. ``first_day + days_ahead`` that are missing.

    Idempotent; returns the dates created now. A date whose lock could not be had within
    ``lock_timeout_ms`` is skipped with a warning (its legs go to the default partition meanwhile)."""
    created: list[date] = []
    for offset in range(days_ahead + 1):
        day = first_day + timedelta(days=offset)
        try:
            async with conn.transaction():
                await conn.execute(f"SET LOCAL lock_timeout = {int(lock_timeout_ms)}")
                if await conn.fetchval("SELECT journal_legs_add_partition($1)", day):
                    created.append(day)
        except asyncpg.LockNotAvailableError:
            log.warning("journal partition not created: lock timeout", extra={"accounting_date": day.isoformat()})
    if created:
        log.info("journal partitions created", extra={"dates": [d.isoformat() for d in created]})
    return created


async def partition_health(conn: asyncpg.Connection, open_date: date) -> PartitionHealth:
    """How far ahead of ``open_date`` partitions exist, and whether legs fell into the default partition."""
    dates = set(await daily_partition_dates(conn))
    ahead = 0
    while open_date + timedelta(days=ahead + 1) in dates:
        ahead += 1
    default_rows = int(await conn.fetchval(
        f"SELECT count(*) FROM (SELECT 1 FROM journal_legs_default LIMIT {DEFAULT_ROWS_COUNTED_MAX}) d"))
    return PartitionHealth(open_date, ahead, open_date in dates, default_rows, len(dates))


def publish_health(health: PartitionHealth) -> None:
    """Set the partition gauges (engine/dayend/metrics.py) and warn when the partitions need attention."""
    metrics.PARTITIONS_DAYS_AHEAD.set(health.days_ahead)
    metrics.PARTITION_OPEN_DATE_COVERED.set(int(health.open_date_covered))
    metrics.PARTITION_DEFAULT_ROWS.set(health.default_rows)
    metrics.PARTITIONS_OK.set(int(health.ok))
    if not health.ok:
        log.warning("journal partitions need attention", extra=health.as_dict())


async def prepare_partitions(conn: asyncpg.Connection, open_date: date,
                             days_ahead: int = DAYS_AHEAD_DEFAULT) -> PartitionHealth:
    """Day-end's step: create partitions from ``open_date`` on, then check and publish the health."""
    await ensure_partitions(conn, open_date, days_ahead)
    health = await partition_health(conn, open_date)
    publish_health(health)
    return health
