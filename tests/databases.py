"""Private databases on the session's PostgreSQL server, for tests that must not share the main one.

Advisory locks, the accounting calendar and every process's in-process flushers and gateway workers
are per database, so a test that kills processes, moves the open date or counts everything in a
table gets a database of its own (cheap: one CREATE DATABASE on the running server).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from engine.migrate import migrate


def database_url_for(server_url: str, name: str) -> str:
    """``server_url`` with its database name replaced by ``name`` (query string kept)."""
    base, _, query = server_url.partition("?")
    head, _, _old = base.rpartition("/")
    return f"{head}/{name}" + (f"?{query}" if query else "")


async def create_database(server_url: str, prefix: str, migrated: bool = True) -> str:
    """A new database named ``{prefix}_<random>``, migrated unless asked not to; returns its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = database_url_for(server_url, name)
    if migrated:
        conn = await asyncpg.connect(url)
        try:
            await migrate(conn)
        finally:
            await conn.close()
    return url


async def drop_database(server_url: str, url: str) -> None:
    """Drop the database ``url`` names, ending any session still connected to it."""
    name = url.partition("?")[0].rpartition("/")[2]
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@asynccontextmanager
async def session_pool(url: str) -> AsyncIterator[asyncpg.Pool]:
    """The test session's pool on the database ``url``, migrated first (a no-op when it is already).

    Idle connections close after a few seconds: every app and pool of the session shares one server's
    max_connections, and a pool grown by one test's burst must not hold its share to the session's end."""
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    pool = await asyncpg.create_pool(url, min_size=2, max_size=80, max_inactive_connection_lifetime=5)
    assert pool is not None
    try:
        yield pool
    finally:
        await pool.close()


@asynccontextmanager
async def private_database(server_url: str, prefix: str, migrated: bool = True) -> AsyncIterator[str]:
    """``create_database`` for the duration of the block, dropped afterwards."""
    url = await create_database(server_url, prefix, migrated)
    try:
        yield url
    finally:
        await drop_database(server_url, url)
