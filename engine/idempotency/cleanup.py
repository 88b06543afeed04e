"""Idempotency keys older than the retention go, in bounded batches, every few minutes."""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from engine.idempotency.store import delete_expired_idempotency_keys
from engine.settings import Settings

log = logging.getLogger(__name__)

IDEMPOTENCY_CLEANUP_INTERVAL_S = 300.0
IDEMPOTENCY_CLEANUP_BATCH_MAX = 10_000


async def idempotency_cleanup(pool: asyncpg.Pool, settings: Settings) -> None:
    while True:
        await asyncio.sleep(IDEMPOTENCY_CLEANUP_INTERVAL_S)
        try:
            async with pool.acquire() as conn:
                await delete_expired_idempotency_keys(conn, settings.idempotency_retention_s,
                                                      IDEMPOTENCY_CLEANUP_BATCH_MAX)
        except Exception:  # the loop must survive a database blip
            log.warning("idempotency cleanup failed; will retry", exc_info=True)
