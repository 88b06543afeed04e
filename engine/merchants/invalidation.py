"""Every API process forgets a merchant as soon as it changes, wherever the change was made.

Each auth cache (engine/http/auth.py MerchantDirectory) keeps a merchant for PAYENGINE_MERCHANT_CACHE_S.
A change that must bite at once (suspension, key revoke or rotation, allowed methods) is made by
engine/merchants/flow.py, which sends ``pg_notify`` in the change's own transaction, so the note
goes out only on commit, from the admin API of any worker and from the CLI alike. Each API process
listens on one connection of its own (outside the pool, so even a pool of one is never short) and drops
the merchant from its cache. If that connection is lost the cache TTL still bounds how long a stale
entry lives (a warning is logged).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import asyncpg

from engine.merchants.store import CHANGES_CHANNEL

log = logging.getLogger(__name__)

CLOSE_TIMEOUT_S = 2.0


class ChangeListener:
    """Calls ``forget(merchant_id)`` for every merchant change committed anywhere; ``stop`` when done."""

    def __init__(self, database_url: str, forget: Callable[[str], None]) -> None:
        self._database_url = database_url
        self._forget = forget
        self._conn: asyncpg.Connection | None = None

    async def start(self) -> None:
        conn = await asyncpg.connect(self._database_url)
        try:
            await conn.add_listener(CHANGES_CHANNEL, self._on_change)
            conn.add_termination_listener(self._on_lost)
        except BaseException:
            await conn.close()
            raise
        self._conn = conn

    def _on_change(self, conn: object, pid: int, channel: str, merchant_id: str) -> None:
        self._forget(merchant_id)

    def _on_lost(self, conn: object) -> None:
        log.warning("merchant change listener lost its connection; auth cache entries now live their full TTL")

    async def stop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        conn.remove_termination_listener(self._on_lost)  # closing on purpose is not a loss
        # The connection may be gone already (database restarted): close it whatever state it is in.
        try:
            await conn.close(timeout=CLOSE_TIMEOUT_S)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError):
            conn.terminate()
