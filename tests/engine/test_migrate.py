"""Migrations are recorded, safe to run twice and from two connections at once."""

from __future__ import annotations

import asyncio
import logging
import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

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


async def test_a_fresh_database_logs_one_summary_line_and_each_migration_at_debug(
        pool: asyncpg.Pool, servers: Servers, caplog: pytest.LogCaptureFixture) -> None:
    name = f"migrate_log_{uuid.uuid4().hex[:12]}"
    await pool.execute(f"CREATE DATABASE {name}")
    try:
        conn = await asyncpg.connect(_database_url(servers.database_url, name))
        try:
            with caplog.at_level(logging.DEBUG, logger="engine.migrate"):
                applied = await migrate(conn)
                again = await migrate(conn)
        finally:
            await conn.close()
    finally:
        await pool.execute(f"DROP DATABASE {name} WITH (FORCE)")
    assert applied == [m.name for m in load_migrations()] and again == []
    info = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert [(r.getMessage(), r.__dict__["count"], r.__dict__["latest"]) for r in info] == [
        ("migrations applied", len(applied), applied[-1])]
    assert len([r for r in caplog.records if r.getMessage() == "migration applied"]) == len(applied)


def _database_url(url: str, database: str) -> str:
    """``url`` pointing at another database of the same server (the path names it)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))
