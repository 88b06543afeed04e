"""Transaction numbers: 32-digit business ids made without a database round trip.

Layout (digits, left to right)::

    0-7    yyyymmdd     UTC calendar date the number was made (sorts by day first)
    8      version      layout version, currently 1
    9-10   system       system code (PAYENGINE_SYSTEM_CODE)
    11     environment  environment code (PAYENGINE_ENVIRONMENT_CODE; prod/test/...)
    12-13  shard        database shard the entry belongs to (PAYENGINE_SHARD)
    14-17  node         this process's node id, leased in PostgreSQL at start (unique among live processes)
    18-25  ms of day    milliseconds since UTC midnight
    26-31  counter      per node within that millisecond

Two processes never share a node id while both hold their lease, so numbers are unique across
processes; within a process the (ms, counter) pair only grows, so numbers are strictly increasing
even if the wall clock steps back. The counter allows a million numbers per millisecond per node;
past that the generator borrows the next millisecond.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import asyncpg

LAYOUT_VERSION = 1
COUNTER_MAX = 999_999
MS_PER_DAY = 86_400_000


@dataclass(frozen=True, slots=True)
class TxnNoParts:
    day: date
    version: int
    system: int
    environment: int
    shard: int
    node: int
    ms_of_day: int
    counter: int


class TxnNoGenerator:
    """Makes strictly increasing transaction numbers for one process (not thread-safe; asyncio is)."""

    def __init__(self, system: int, environment: int, shard: int, node: int) -> None:
        assert 0 <= system <= 99 and 0 <= environment <= 9 and 0 <= shard <= 99 and 0 <= node <= 9999
        self._fixed = f"{LAYOUT_VERSION}{system:02d}{environment}{shard:02d}{node:04d}"
        self._day = date.min
        self._ms = 0
        self._counter = -1

    def next(self, now: datetime) -> str:
        now = now.astimezone(UTC)
        day = now.date()
        ms = (now.hour * 3600 + now.minute * 60 + now.second) * 1000 + now.microsecond // 1000
        if day > self._day:
            self._day, self._ms, self._counter = day, ms, 0
        elif ms > self._ms:
            self._ms, self._counter = ms, 0
        else:  # same millisecond, or the clock stepped back: keep counting from where we are
            self._counter += 1
            if self._counter > COUNTER_MAX:
                self._ms, self._counter = self._ms + 1, 0
        assert self._ms < MS_PER_DAY, "transaction number counter ran past the end of the day"
        return f"{self._day:%Y%m%d}{self._fixed}{self._ms:08d}{self._counter:06d}"


def parse_txn_no(txn_no: str) -> TxnNoParts:
    """Split a transaction number back into its fields; raises ValueError if it is not one."""
    if len(txn_no) != 32 or not txn_no.isdigit():
        raise ValueError(f"not a 32-digit transaction number: {txn_no!r}")
    return TxnNoParts(
        day=datetime.strptime(txn_no[0:8], "%Y%m%d").date(),
        version=int(txn_no[8]),
        system=int(txn_no[9:11]),
        environment=int(txn_no[11]),
        shard=int(txn_no[12:14]),
        node=int(txn_no[14:18]),
        ms_of_day=int(txn_no[18:26]),
        counter=int(txn_no[26:32]),
    )


class NodeLease:
    """A node id held in ``node_leases`` until it expires; renew it well before ``lease_s``."""

    def __init__(self, node_id: int, holder: str, lease_s: int) -> None:
        self.node_id = node_id
        self.holder = holder
        self.lease_s = lease_s

    @classmethod
    async def acquire(cls, conn: asyncpg.Connection, lease_s: int) -> NodeLease:
        holder = uuid.uuid4().hex
        # Take the lowest id that is free or expired; the upsert's WHERE makes the take atomic.
        node_id = await conn.fetchval(
            "WITH candidate AS ("
            "  SELECT g AS id FROM generate_series(0, 9999) g"
            "  LEFT JOIN node_leases l ON l.node_id = g"
            "  WHERE l.node_id IS NULL OR l.expires_at < now() ORDER BY g LIMIT 64)"
            " INSERT INTO node_leases (node_id, holder, expires_at)"
            " SELECT id, $1, now() + make_interval(secs => $2) FROM candidate ORDER BY id LIMIT 1"
            " ON CONFLICT (node_id) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at"
            "   WHERE node_leases.expires_at < now()"
            " RETURNING node_id",
            holder, float(lease_s),
        )
        if node_id is None:  # lost a race for the same id: try again once the other insert is visible
            return await cls.acquire(conn, lease_s)
        return cls(int(node_id), holder, lease_s)

    async def renew(self, conn: asyncpg.Connection) -> bool:
        """Extend the lease; False means it was lost (the process must stop making numbers)."""
        status = await conn.execute(
            "UPDATE node_leases SET expires_at = now() + make_interval(secs => $3)"
            " WHERE node_id = $1 AND holder = $2",
            self.node_id, self.holder, float(self.lease_s),
        )
        return bool(status.endswith(" 1"))

    async def release(self, conn: asyncpg.Connection) -> None:
        await conn.execute("DELETE FROM node_leases WHERE node_id = $1 AND holder = $2",
                           self.node_id, self.holder)


def renew_interval(lease_s: int) -> timedelta:
    return timedelta(seconds=max(1, lease_s // 3))
