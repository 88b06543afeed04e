"""Limit usage rows written together: the admissions that arrive while one insert is in flight go out as
the next one (natural batching, as the payment batcher books payments).

Each admission still has its row committed (asynchronously, as before) before its counters are touched in
Redis, which is what the orphan sweep relies on; only the statements are shared. A failed group insert is
retried row by row, so one bad row fails alone.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from engine.controls.store import Usage, insert_usages
from engine.db import release_without_reset

log = logging.getLogger(__name__)

GROUP_MAX = 512  # rows per statement


class UsageWriter:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._pending: list[tuple[Usage, asyncio.Future[None]]] = []
        self._writing = False
        self._task: asyncio.Task[None] | None = None  # held: a task nobody references may be collected

    async def insert(self, usage: Usage) -> None:
        """Return once ``usage`` is committed; raise what its insert raised."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((usage, future))
        if not self._writing:
            self._writing = True
            self._task = asyncio.get_running_loop().create_task(self._write_all())
        await asyncio.shield(future)

    async def _write_all(self) -> None:
        group: list[tuple[Usage, asyncio.Future[None]]] = []
        try:
            while self._pending:
                group, self._pending = self._pending[:GROUP_MAX], self._pending[GROUP_MAX:]
                await self._write(group)
        finally:
            self._writing = False
            if self._pending or any(not f.done() for _, f in group):  # cancelled (shutdown): nobody waits forever
                _settle(group + self._pending, RuntimeError("usage writer stopped"))
                self._pending = []

    async def _write(self, group: list[tuple[Usage, asyncio.Future[None]]]) -> None:
        try:
            async with self._pool.acquire() as conn:
                await insert_usages(conn, [u for u, _ in group])
                release_without_reset(conn)  # one statement, its setting transaction-local
        except Exception as exc:
            if len(group) == 1:
                _settle(group, exc)
                return
            log.warning("grouped usage insert failed; inserting one by one", extra={"error": repr(exc)})
            for one in group:
                await self._write([one])
            return
        _settle(group, None)


def _settle(group: list[tuple[Usage, asyncio.Future[None]]], exc: Exception | None) -> None:
    for _, future in group:
        if not future.done():
            if exc is None:
                future.set_result(None)
            else:
                future.set_exception(exc)
