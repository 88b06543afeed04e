"""The database a command works on: the configured servers (started when embedded), every migration applied."""

from __future__ import annotations

import asyncpg

from engine.db import ServerUrls, ensure_servers
from engine.migrate import migrate
from engine.settings import Settings


async def migrated_servers(settings: Settings) -> ServerUrls:
    urls = ensure_servers(settings)
    conn = await asyncpg.connect(urls.database_url)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    return urls
