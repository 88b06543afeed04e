"""Migrations are recorded, safe to run twice and from two connections at once."""

from __future__ import annotations

import asyncio

import asyncpg

from engine.migrate import load_migrations, migrate
from tests.conftest import Servers


async def test_migrations_are_idempotent_and_concurrency_safe(pool: asyncpg.Pool, servers: Servers) -> None:
    conns = [await asyncpg.connect(servers.database_url) for _ in range(2)]
    try:
        applied = await asyncio.gather(*(migrate(c) for c in conns))
        assert applied == [[], []]  # the session fixture already applied everything
        numbers = [r["number"] for r in await conns[0].fetch("SELECT number FROM schema_migrations ORDER BY 1")]
        assert numbers == [m.number for m in load_migrations()]
    finally:
        for c in conns:
            await c.close()


def test_migration_files_are_numbered_uniquely() -> None:
    migrations = load_migrations()
    assert migrations and migrations[0].number == 1
    assert len({m.number for m in migrations}) == len(migrations)
