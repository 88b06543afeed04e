"""The open accounting date as the booking path sees it: cached in-process, refreshed often.

Correctness does not rest on this cache. PostgreSQL stamps every journal entry with the open date
under a shared advisory lock that the day-end switch takes exclusively (migration 050), so an entry
drafted with a stale date still books to the right one. The cache only makes the draft's date (and
what the caller shows or logs) right in the common case without a round trip per payment.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import asyncpg

from accounts.store import Conn
from engine.background import background

log = logging.getLogger(__name__)


async def read_open_date(conn: Conn) -> date:
    value = await conn.fetchval("SELECT open_date FROM accounting_calendar")
    if value is None:  # the migration seeds the row; a missing row is a broken database
        raise RuntimeError("accounting_calendar has no row; run migrations")
    assert isinstance(value, date)
    return value


class AccountingCalendar:
    """``current()`` never waits: it returns the last date read, refreshed every ``refresh_s``."""

    def __init__(self, pool: asyncpg.Pool, refresh_s: float) -> None:
        self._pool = pool
        self.refresh_s = refresh_s
        self._open: date | None = None
        self._read_at = 0.0

    def current(self) -> date:
        """The open accounting date (UTC calendar date until the first refresh)."""
        return self._open if self._open is not None else datetime.now(UTC).date()

    async def refresh(self) -> date:
        async with self._pool.acquire() as conn:
            self._open = await read_open_date(conn)
        self._read_at = time.monotonic()
        return self._open

    def switched(self, open_date: date) -> None:
        """This process ran the switch: use the new date at once."""
        self._open = open_date
        self._read_at = time.monotonic()

    async def run(self) -> None:
        """Refresh forever; a failed read keeps the last date (the database stamps entries anyway)."""
        while True:
            try:
                await self.refresh()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                log.warning("accounting date refresh failed; keeping %s", self._open, exc_info=True)
            await asyncio.sleep(self.refresh_s)


@contextlib.asynccontextmanager
async def running_calendar(pool: asyncpg.Pool, refresh_s: float) -> AsyncIterator[AccountingCalendar]:
    calendar = AccountingCalendar(pool, refresh_s)
    await calendar.refresh()
    async with background(("accounting-calendar", calendar.run())):
        yield calendar
