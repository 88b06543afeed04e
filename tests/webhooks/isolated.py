"""A database and a Redis of their own, inside the session's PostgreSQL server, for background workers.

Every app in the test session runs its webhook and expiry workers, and they claim whatever is due in
the database they see. Tests that time retries or tell the delay queue from the sweep need workers
nobody else shares: a fresh database (migrated) in the same server and a fresh redis-server.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from engine import embedded
from engine.migrate import migrate


@dataclass(frozen=True)
class Isolated:
    database_url: str
    redis_url: str
    redis_dir: Path


@asynccontextmanager
async def isolated_servers(database_url: str, prefix: str) -> AsyncIterator[Isolated]:
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(database_url)
    try:
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    parts = urlsplit(database_url)
    url = urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    root = Path(tempfile.mkdtemp(prefix="pe-iso-", dir="/tmp"))
    redis_dir = root / "redis"
    handle = embedded.start_redis(redis_dir, appendonly=False)
    try:
        yield Isolated(url, handle.url, redis_dir)
    finally:
        embedded.stop_redis(redis_dir, kill=True)
        shutil.rmtree(root, ignore_errors=True)
