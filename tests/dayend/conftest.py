"""Day-end tests run in their own database on the session's PostgreSQL server.

Day-end moves the one open accounting date and checks every account, so it cannot share a database
with tests that leave buffered legs or deliberately broken balances behind. Each module gets a fresh,
migrated database (cheap: one CREATE DATABASE) and drops nothing: the server is temporary.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import pytest

from tests.conftest import Servers
from tests.databases import create_database


@dataclass(frozen=True)
class Db:
    url: str
    pool: asyncpg.Pool


@pytest.fixture(scope="module")
async def db(servers: Servers) -> AsyncIterator[Db]:
    url = await create_database(servers.database_url, "dayend")
    pool = await asyncpg.create_pool(url, min_size=2, max_size=20)
    assert pool is not None
    try:
        yield Db(url, pool)
    finally:
        await pool.close()
