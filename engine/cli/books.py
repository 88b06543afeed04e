"""What an operator command that books needs when it runs beside the engine, straight against PostgreSQL: a small
pool, a Booker, transaction numbers under a node lease of its own, and the platform accounts. Shared by the CLIs
that resolve things by booking (payouts, refunds).

Hot legs such a command posts are written buffered in PostgreSQL (it has no buffer of its own): the running engine's
recovery sweep hands them to its flushers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg

from accounts.model import AccountId
from engine.booking import Booker
from engine.db import create_pool
from engine.keys import ACCOUNT, new_id
from engine.merchants.store import ensure_platform_accounts
from engine.settings import Settings
from engine.txn_no import NodeLease, TxnNoGenerator


@dataclass(frozen=True)
class OperatorBooks:
    settings: Settings
    pool: asyncpg.Pool
    booker: Booker
    txn_nos: TxnNoGenerator

    async def platform_accounts(self, currency: str) -> dict[str, AccountId]:
        async with self.pool.acquire() as conn:
            return await ensure_platform_accounts(conn, currency, self.settings.hot_internal_accounts,
                                                  lambda: new_id(ACCOUNT))


@asynccontextmanager
async def operator_books(settings: Settings, database_url: str) -> AsyncIterator[OperatorBooks]:
    """The books for one command; the node lease is given back and the pool closed when it ends."""
    pool = await create_pool(database_url, 1, 4, 60)
    try:
        async with pool.acquire() as conn:
            lease = await NodeLease.acquire(conn, settings.node_lease_s)
        try:
            txn_nos = TxnNoGenerator(settings.system_code, settings.environment_code, settings.shard, lease.node_id)
            yield OperatorBooks(settings, pool, Booker(pool), txn_nos)
        finally:
            async with pool.acquire() as conn:
                await lease.release(conn)
    finally:
        await pool.close()
