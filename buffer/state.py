"""An account's buffer state in Redis: (re)loading it from PostgreSQL and reading it for status.

Redis holds a cache of the applied balance plus the queue of pending legs; PostgreSQL is the record.
When Redis has lost an account's state, ``load_account`` rebuilds it from one PostgreSQL snapshot.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from buffer.keys import account_keys, leg_member
from buffer.scripts import Scripts, run_scripts
from buffer.store import BufferedLeg, snapshot

LOAD_LEGS_MAX = 200_000  # bound of one rebuild; max_depth back-pressure keeps real buffers far below


def now_ms() -> int:
    return int(time.time() * 1000)


def apply_order(legs: Iterable[tuple[str, int, int, int]]) -> list[tuple[str, int, int, int]]:
    """Order ``(txn_no, leg_no, delta, enqueued_ms)`` legs of ONE account for applying.

    Entries keep their order; inside one entry the credits to the account come before its debits
    (PAY_WALLET credits and debits gateway transit), so a batch boundary between two legs of one
    entry can never leave a running balance below the floor that the entry as a whole respects.
    """
    groups: dict[str, list[tuple[str, int, int, int]]] = {}
    for leg in legs:
        groups.setdefault(leg[0], []).append(leg)
    ordered: list[tuple[str, int, int, int]] = []
    for group in groups.values():
        ordered.extend(sorted(group, key=lambda g: (-g[2], g[1])))
    return ordered


def leg_args(legs: Sequence[tuple[str, int, int, int]]) -> list[Any]:
    """Flatten ordered legs into the (member, delta, enqueued_ms) triples the scripts take."""
    args: list[Any] = []
    for txn_no, leg_no, delta, at_ms in legs:
        args.extend((leg_member(txn_no, leg_no), delta, at_ms))
    return args


def pg_legs(legs: Sequence[BufferedLeg], at_ms: int) -> list[tuple[str, int, int, int]]:
    """Legs read from PostgreSQL, in apply order, entering the buffer at ``at_ms``.

    Their age in the buffer (which back-pressure compares with max_lag_ms) counts from when Redis got
    them, not from the leg's insert: a booking whose transaction ran long, or whose enqueue was lost,
    is put back by the sweep seconds after its insert, and is flushed in the next round. Counting
    from the insert made every such leg look like a flusher falling behind (back-pressure refusals
    under the mixed load test while flush rounds took milliseconds). Legs the flusher really does not
    keep up with still age here, from the moment they entered."""
    return apply_order((b.txn_no, b.leg_no, b.delta, at_ms) for b in legs)


async def load_account(conn: Any, redis: aioredis.Redis, scripts: Scripts, account_id: str) -> bool:
    """Rebuild an account's lost state from one PostgreSQL snapshot. False if it was already loaded.

    Safe without the flusher's lock: the script does nothing once the state is loaded, and a flush
    committing concurrently leaves applied + pending consistent whichever side of it the snapshot fell.
    """
    balance, legs = await snapshot(conn, account_id, LOAD_LEGS_MAX)
    keys = account_keys(account_id)
    now = now_ms()
    loaded = await scripts.load(keys=list(keys.all()), args=[now, balance, *leg_args(pg_legs(legs, now))],
                                client=redis)
    return bool(loaded)


@dataclass(frozen=True, slots=True)
class BufferStatus:
    account_id: str
    loaded: bool
    depth: int
    oldest_age_ms: int
    applied_minor: int | None  # cached in Redis; None when the state is not loaded
    pending_minor: int
    reserved_minor: int
    last_batch_legs: int
    last_batch_ms: int
    applied_per_s: float
    last_flush_ms: int

    @property
    def projected_minor(self) -> int | None:
        if self.applied_minor is None:
            return None
        return self.applied_minor + self.pending_minor - self.reserved_minor

    def to_dict(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id, "loaded": self.loaded, "depth": self.depth,
            "oldest_age_ms": self.oldest_age_ms, "applied": self.applied_minor, "pending": self.pending_minor,
            "reserved": self.reserved_minor, "projected": self.projected_minor,
            "applied_per_s": round(self.applied_per_s, 1), "last_batch_legs": self.last_batch_legs,
            "last_batch_ms": self.last_batch_ms,
        }


def _b2s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def read_status(redis: aioredis.Redis, scripts: Scripts, account_ids: Sequence[str]) -> list[BufferStatus]:
    """Depth, oldest age, cached balances and last flush figures per account, one round trip."""
    now = now_ms()
    rows = await run_scripts(redis, [(scripts.status, account_keys(a).all(), [now]) for a in account_ids])
    out: list[BufferStatus] = []
    for account_id, r in zip(account_ids, rows, strict=True):
        applied = int(_b2s(r[3]))
        out.append(BufferStatus(account_id, bool(r[0]), int(r[1]), int(r[2]), applied if r[0] else None,
                                int(r[4]), int(r[5]), int(r[6]), int(r[7]), float(_b2s(r[8])), int(r[9])))
    return out
