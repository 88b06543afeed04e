"""Which accounts are hot (and their overdraft floors), as this process last read them from PostgreSQL.

Read at most once per ``refresh_s`` so the request path pays no extra round trip per payment. An
account flagged hot is seen within ``refresh_s``; until then its debits are not reserved in Redis,
so flag accounts hot before they take debits (they normally start hot, or take only credits).
"""

from __future__ import annotations

import asyncio
import time

import asyncpg

from accounts.model import AccountId
from buffer.store import HotAccount, hot_accounts

REFRESH_S = 1.0


class HotAccounts:
    def __init__(self, pool: asyncpg.Pool, refresh_s: float = REFRESH_S) -> None:
        self._pool = pool
        self._refresh_s = refresh_s
        self._accounts: dict[AccountId, HotAccount] = {}
        self._read_at = float("-inf")
        self._lock = asyncio.Lock()

    async def current(self) -> dict[AccountId, HotAccount]:
        if time.monotonic() - self._read_at >= self._refresh_s:
            async with self._lock:
                if time.monotonic() - self._read_at >= self._refresh_s:
                    await self.refresh()
        return self._accounts

    async def refresh(self) -> None:
        """Re-read now (tests and admin actions that just flagged an account call this)."""
        async with self._pool.acquire() as conn:
            rows = await hot_accounts(conn)
        self._accounts = {a.id: a for a in rows}
        self._read_at = time.monotonic()
