"""The operator surface of the hot-account buffer: its default tuning, changes to the live tuning, the
status of every hot account. The HTTP routes (``GET /admin/buffer``, ``GET|PUT /admin/buffer/settings``)
are in handlers.py, the CLI (``payengine flush``, ``payengine buffer status|tune``) in engine/cli/buffer.py;
the sink, the booker and the in-process flushers are built by engine/bootstrap.py.
"""

from __future__ import annotations

from typing import Any

from accounts.model import Account
from accounts.store import hot_open_accounts
from buffer.scripts import Scripts
from buffer.state import read_status
from buffer.tuning import BufferTuning, load_tuning, save_tuning
from engine.settings import Settings


def buffer_defaults(settings: Settings) -> BufferTuning:
    return BufferTuning(
        batch_size=settings.buffer_batch_size, flush_interval_ms=settings.buffer_flush_interval_ms,
        max_lag_ms=settings.buffer_max_lag_ms, max_depth=settings.buffer_max_depth,
        flusher_concurrency=settings.buffer_flusher_concurrency,
        backpressure_wait_ms=settings.buffer_backpressure_wait_ms,
    )


def owner_of(account: Account) -> dict[str, Any]:
    """Whose an account is, for a person reading a list of ids: the owner (merchant or customer id, or
    ``platform``), the role (a sub-account's index appended) and the currency."""
    role = account.role if account.sub_index is None else f"{account.role}#{account.sub_index}"
    return {"owner_id": account.owner_id, "role": role, "currency": account.currency}


async def buffer_status(pool: Any, redis: Any) -> list[dict[str, Any]]:
    """Status rows of every hot account, each with its owner, role and currency (the CLI prints the same)."""
    async with pool.acquire() as conn:
        accounts = await hot_open_accounts(conn)
    if not accounts:
        return []
    rows = await read_status(redis, Scripts(redis), [a.id for a in accounts])
    return [{**row.to_dict(), **owner_of(account)} for account, row in zip(accounts, rows, strict=True)]


async def change_tuning(pool: Any, defaults: BufferTuning, changes: dict[str, Any]) -> BufferTuning:
    """Apply ``changes`` to the stored tuning (``defaults`` while none is stored), store and return it.
    Raises TuningError for an unknown setting or a value out of bounds; nothing is stored then."""
    async with pool.acquire() as conn, conn.transaction():
        # Lock the table (its one row may not exist yet) so two concurrent changes do not lose each other's fields.
        await conn.execute("LOCK TABLE buffer_settings IN SHARE ROW EXCLUSIVE MODE")
        updated = (await load_tuning(conn, defaults)).updated(changes)
        await save_tuning(conn, updated)
    return updated
