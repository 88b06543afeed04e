"""Numbered SQL migrations (``engine/migrations/NNN_name.sql``) applied in order at start.

Each file runs in its own transaction and is recorded in ``schema_migrations``; a session-level
advisory lock serialises concurrent starters, so two processes migrating at once apply each file once.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

log = logging.getLogger(__name__)

MIGRATION_LOCK_KEY = 0x7061_7965  # "paye": one advisory lock key for migrations
_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    number: int
    name: str
    sql: str


def load_migrations() -> list[Migration]:
    """All migration files, sorted by number; two files with one number is a packaging bug."""
    found: list[Migration] = []
    for entry in resources.files("engine.migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text("utf-8")))
    found.sort(key=lambda m: m.number)
    numbers = [m.number for m in found]
    assert len(numbers) == len(set(numbers)), f"duplicate migration numbers: {numbers}"
    return found


async def migrate(conn: asyncpg.Connection) -> list[str]:
    """Apply pending migrations; returns the names applied by this call. Logs one info line when it applied any
    (how many, the latest), each file at debug."""
    applied_now: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " number int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["number"] for r in await conn.fetch("SELECT number FROM schema_migrations")}
        for migration in load_migrations():
            if migration.number in done:
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (number, name) VALUES ($1, $2)",
                    migration.number, migration.name,
                )
            log.debug("migration applied", extra={"migration": migration.name})
            applied_now.append(migration.name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
    # One line for the phase (a fresh database applies every file; naming each is detail for debug).
    if applied_now:
        log.info("migrations applied", extra={"count": len(applied_now), "latest": applied_now[-1]})
    else:
        log.debug("migrations: schema up to date")
    return applied_now
