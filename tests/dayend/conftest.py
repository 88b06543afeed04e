"""Day-end tests run in their own database on the session's PostgreSQL server.

Day-end moves the one open accounting date and checks every account, so it cannot share a database
with tests that leave buffered legs or deliberately broken balances behind. Each module gets a fresh,
migrated database (cheap: one CREATE DATABASE) and drops nothing: the server is temporary.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import pytest

from engine.migrate import migrate
from tests.conftest import Servers


@dataclass(frozen=True)
class Db:
    url: str
    pool: asyncpg.Pool


def database_url_for(server_url: str, name: str) -> str:
    base, _, query = server_url.partition("?")
    head, _, _old = base.rpartition("/")
    return f"{head}/{name}" + (f"?{query}" if query else "")


async def create_database(servers: Servers) -> str:
    name = f"dayend_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(servers.database_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = database_url_for(servers.database_url, name)
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    return url


@pytest.fixture(scope="module")
async def db(servers: Servers) -> AsyncIterator[Db]:
    url = await create_database(servers)
    pool = await asyncpg.create_pool(url, min_size=2, max_size=20)
    assert pool is not None
    try:
        yield Db(url, pool)
    finally:
        await pool.close()
