"""Handing a world's flush locks to the flushers under test, and to nobody else.

The session database is shared with other tests whose apps run in-process flushers on the
*standalone* Redis; such a flusher that grabbed one of our hot accounts would apply its legs from
PostgreSQL (correctly: PostgreSQL is the record) while our cluster still queues them. So a lock is
never simply released: it is released only once a flusher of ours is queued for it (standby
flushers wait in ``pg_advisory_lock``, and PostgreSQL grants a released lock to the first waiter).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import asyncpg

from buffer.store import flush_lock_key


def _lock_ids(account_id: str) -> tuple[int, int]:
    key = flush_lock_key(account_id) & 0xFFFF_FFFF_FFFF_FFFF  # pg_locks shows a bigint key as two oids
    return key >> 32, key & 0xFFFF_FFFF


async def waiters(pool: asyncpg.Pool, account_id: str) -> int:
    classid, objid = _lock_ids(account_id)
    return int(await pool.fetchval(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        " AND classid = $1::bigint::oid AND objid = $2::bigint::oid AND objsubid = 1", classid, objid))


async def holder_app(pool: asyncpg.Pool, account_id: str) -> str | None:
    """application_name of the session holding the account's flush lock (flushers name their pid)."""
    classid, objid = _lock_ids(account_id)
    name = await pool.fetchval(
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
        " WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1::bigint::oid"
        " AND l.objid = $2::bigint::oid AND l.objsubid = 1", classid, objid)
    return str(name) if name is not None else None


async def hand_over(pool: asyncpg.Pool, holder: asyncpg.Connection, accounts: Sequence[str],
                    timeout_s: float = 30) -> None:
    """Release ``holder``'s lock on each account as soon as someone queues for it."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    left = list(accounts)
    while left:
        for account_id in list(left):
            if await waiters(pool, account_id):
                await holder.execute("SELECT pg_advisory_unlock($1)", flush_lock_key(account_id))
                left.remove(account_id)
        assert asyncio.get_running_loop().time() < deadline, f"nobody queued for {left}"
        await asyncio.sleep(0.02)


class Backstop:
    """One connection per account queued for its lock (application_name ``backstop``): whoever holds
    a lock now, when they let go it comes to us unless someone queued earlier."""

    APP = "backstop"

    def __init__(self) -> None:
        self.by_account: dict[str, tuple[asyncpg.Connection, asyncio.Task[object]]] = {}

    async def queue(self, database_url: str, pool: asyncpg.Pool, accounts: Sequence[str]) -> None:
        for account_id in accounts:
            before = await waiters(pool, account_id)
            conn = await asyncpg.connect(database_url, server_settings={"application_name": self.APP})
            task = asyncio.create_task(conn.execute("SELECT pg_advisory_lock($1)", flush_lock_key(account_id)))
            self.by_account[account_id] = (conn, task)
            while True:  # polling pg_locks: there is no event to wait on
                if task.done() or await waiters(pool, account_id) > before:
                    break
                await asyncio.sleep(0.01)

    async def settle(self, pool: asyncpg.Pool, timeout_s: float = 30) -> None:
        """Per account: if we got the lock, pass it on to the next waiter; if a flusher got it
        before us, withdraw our request."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        for account_id, (conn, task) in list(self.by_account.items()):
            while True:
                holder = await holder_app(pool, account_id)
                if holder is not None:
                    break
                assert asyncio.get_running_loop().time() < deadline, f"nobody holds {account_id}"
                await asyncio.sleep(0.02)
            if holder == self.APP:
                await task
                await hand_over(pool, conn, [account_id], timeout_s)
            else:
                task.cancel()
                conn.terminate()
            del self.by_account[account_id]

    async def close(self) -> None:
        for conn, task in self.by_account.values():
            task.cancel()
            conn.terminate()
        self.by_account.clear()
