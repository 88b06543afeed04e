"""Live flush settings: stored in PostgreSQL (table buffer_settings), re-read at least once a second.

PostgreSQL rather than Redis because Redis may be lost at any moment; an SRE's change must survive it.
Without a stored row every process uses the defaults it was started with (PAYENGINE_BUFFER_*).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from dataclasses import dataclass
from typing import Any

import asyncpg

log = logging.getLogger(__name__)

REFRESH_S = 0.5  # re-read twice a second so a change is seen within 1 s everywhere

# name -> (low, high): the same bounds as the table's CHECKs, so a bad PUT is refused with a clear
# message before it reaches the database.
LIMITS: dict[str, tuple[int, int]] = {
    "batch_size": (1, 100_000),
    "flush_interval_ms": (1, 60_000),
    "max_lag_ms": (1, 3_600_000),
    "max_depth": (1, 100_000_000),
    "flusher_concurrency": (1, 64),
    "backpressure_wait_ms": (0, 60_000),
}


class TuningError(ValueError):
    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


@dataclass(frozen=True, slots=True)
class BufferTuning:
    batch_size: int = 1000
    flush_interval_ms: int = 20
    max_lag_ms: int = 5000
    max_depth: int = 100_000
    flusher_concurrency: int = 2
    backpressure_wait_ms: int = 0  # 0 = refuse at once (see errors.BufferBackpressure)

    def to_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)

    def updated(self, changes: dict[str, Any]) -> BufferTuning:
        """A copy with ``changes`` applied; raises TuningError for unknown fields or bad values."""
        for name, value in changes.items():
            if name not in LIMITS:
                raise TuningError(name, "unknown setting")
            if isinstance(value, bool) or not isinstance(value, int):
                raise TuningError(name, "must be an integer")
            low, high = LIMITS[name]
            if not low <= value <= high:
                raise TuningError(name, f"must be between {low} and {high}")
        return dataclasses.replace(self, **changes)


_COLUMNS = ", ".join(LIMITS)


async def load_tuning(conn: Any, defaults: BufferTuning) -> BufferTuning:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM buffer_settings WHERE id")
    if row is None:
        return defaults
    return BufferTuning(**{name: int(row[name]) for name in LIMITS})


async def save_tuning(conn: Any, tuning: BufferTuning) -> None:
    values = tuning.to_dict()
    placeholders = ", ".join(f"${i}" for i in range(1, len(LIMITS) + 1))
    updates = ", ".join(f"{name} = EXCLUDED.{name}" for name in LIMITS)
    await conn.execute(
        f"INSERT INTO buffer_settings (id, {_COLUMNS}) VALUES (true, {placeholders})"
        f" ON CONFLICT (id) DO UPDATE SET {updates}, updated_at = now()",
        *[values[name] for name in LIMITS],
    )


class LiveTuning:
    """The current tuning as seen by this process, refreshed from PostgreSQL every REFRESH_S.

    ``current`` never waits for the database: when the value is stale it starts a refresh in the
    background and returns the last value (the defaults until the first read lands). Booking calls it
    while holding a pool connection, so waiting here for another connection could deadlock a full pool.
    """

    def __init__(self, pool: asyncpg.Pool, defaults: BufferTuning) -> None:
        self._pool = pool
        self.defaults = defaults
        self._current = defaults
        self._read_at = float("-inf")
        self._refreshing: asyncio.Task[BufferTuning] | None = None

    @property
    def cached(self) -> BufferTuning:
        """The last value read, without I/O."""
        return self._current

    async def current(self) -> BufferTuning:
        if time.monotonic() - self._read_at >= REFRESH_S and (self._refreshing is None or self._refreshing.done()):
            self._refreshing = asyncio.create_task(self.refresh())
        return self._current

    async def refresh(self) -> BufferTuning:
        """Read now and wait for it (start-up, CLI, tests)."""
        try:
            async with self._pool.acquire(timeout=5) as conn:
                self._current = await load_tuning(conn, self.defaults)
        except Exception:  # a failed read keeps the last value; retried after REFRESH_S
            log.warning("buffer tuning read failed; keeping the last value", exc_info=True)
        finally:
            self._read_at = time.monotonic()
        return self._current
