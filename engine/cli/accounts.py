"""CLI: ``payengine accounts split``: split an account (or resize its split) straight against the
database, with no API process running."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg

from accounts.split_store import SplitView
from engine.booking import Booker
from engine.ledger_admin.accounts import split_account
from engine.migrate import migrate
from engine.txn_no import NodeLease, TxnNoGenerator


async def split_from_cli(database_url: str, lease_s: int, system: int, environment: int, shard: int,
                         account_id: str, into: int) -> SplitView:
    """``payengine accounts split``: migrate, lease a node id for transaction numbers, resize, release."""
    conn = await asyncpg.connect(database_url)
    try:
        await migrate(conn)
        lease = await NodeLease.acquire(conn, lease_s)
        try:
            txn_nos = TxnNoGenerator(system, environment, shard, lease.node_id)
            pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
            try:
                return await split_account(Booker(pool), lambda: txn_nos.next(datetime.now(UTC)), account_id, into)
            finally:
                await pool.close()
        finally:
            await lease.release(conn)
    finally:
        await conn.close()
