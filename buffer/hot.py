"""Which accounts are hot (and their overdraft floors), as this process last read them from PostgreSQL.

Read at most once per ``refresh_s`` so the request path pays no extra round trip per payment. An
account flagged hot is seen within ``refresh_s``; until then its debits are not reserved in Redis,
so flag accounts hot before they take debits (they normally start hot, or take only credits).
"""

from __future__ import annotations

import asyncio
import logging
import time

import asyncpg

from accounts.model import AccountId
from buffer.errors import BufferUnavailable
from buffer.store import HotAccount, hot_accounts

log = logging.getLogger(__name__)

REFRESH_S = 1.0
ACQUIRE_TIMEOUT_S = 5.0


class HotAccounts:
    """``current`` waits for the database only for the very first read (bounded by ACQUIRE_TIMEOUT_S);
    after that a stale view is refreshed in the background, because booking calls this while holding
    a pool connection and waiting for another one could deadlock a full pool."""

    def __init__(self, pool: asyncpg.Pool, refresh_s: float = REFRESH_S) -> None:
        self._pool = pool
        self._refresh_s = refresh_s
        self._accounts: dict[AccountId, HotAccount] | None = None
        self._read_at = float("-inf")
        self._lock = asyncio.Lock()
        self._refreshing: asyncio.Task[None] | None = None

    async def current(self) -> dict[AccountId, HotAccount]:
        if self._accounts is None:
            async with self._lock:
                if self._accounts is None:
                    await self.refresh()
        elif time.monotonic() - self._read_at >= self._refresh_s and (
                self._refreshing is None or self._refreshing.done()):
            self._refreshing = asyncio.create_task(self._refresh_quietly())
        assert self._accounts is not None
        return self._accounts

    async def refresh(self) -> None:
        """Re-read now (start-up, and tests or admin actions that just flagged an account)."""
        try:
            async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT_S) as conn:
                rows = await hot_accounts(conn)
        except TimeoutError:
            raise BufferUnavailable("*", "no database connection to read hot accounts") from None
        self._accounts = {a.id: a for a in rows}
        self._read_at = time.monotonic()

    async def _refresh_quietly(self) -> None:
        try:
            await self.refresh()
        except Exception:  # keep the last view; the next call tries again
            self._read_at = time.monotonic()
            log.warning("hot-account refresh failed; keeping the last view", exc_info=True)
