"""Limit usage rows written together: the admissions that arrive while one insert is in flight go out as
the next one (engine/grouping.py).

Each admission still has its row committed (asynchronously, as before) before its counters are touched in
Redis, which is what the orphan sweep relies on; only the statements are shared. A failed group insert is
retried row by row, so one bad row fails alone.
"""

from __future__ import annotations

import logging

import asyncpg

from engine.controls.store import Usage, insert_usages
from engine.db import release_without_reset
from engine.grouping import Grouped

log = logging.getLogger(__name__)

GROUP_MAX = 512  # rows per statement


class UsageWriter:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._grouped: Grouped[Usage, None] = Grouped(self._write, GROUP_MAX)

    async def insert(self, usage: Usage) -> None:
        """Return once ``usage`` is committed; raise what its insert raised."""
        await self._grouped.call(usage)

    async def _write(self, rows: list[Usage]) -> list[BaseException | None]:
        try:
            await self._insert(rows)
        except Exception as exc:
            if len(rows) == 1:
                return [exc]
            log.warning("grouped usage insert failed; inserting one by one", extra={"error": repr(exc)})
            return [(await self._write([row]))[0] for row in rows]
        return [None] * len(rows)

    async def _insert(self, rows: list[Usage]) -> None:
        async with self._pool.acquire() as conn:
            await insert_usages(conn, rows)
            release_without_reset(conn)  # one statement, its setting transaction-local
