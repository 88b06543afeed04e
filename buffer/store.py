"""The buffer's SQL: apply a batch, snapshot an account's buffered legs, find hot accounts, read balances.

The batch itself is applied by the PL/pgSQL function ``buffer_apply_legs`` (migration 010), one
statement and so one transaction per batch.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from accounts.model import AccountId, OverdraftMode, Side
from accounts.store import Conn

# Advisory-lock keys: a fixed namespace in the high 32 bits, crc32 of the account id in the low 32,
# so flusher locks cannot collide with the migration lock or other users of advisory locks.
_LOCK_NAMESPACE = 0x6275_6600  # "buf\0"


def flush_lock_key(account_id: str) -> int:
    value = (_LOCK_NAMESPACE << 32) | zlib.crc32(account_id.encode())
    return value - (1 << 64) if value >= 1 << 63 else value


@dataclass(frozen=True, slots=True)
class BatchResult:
    applied: int  # legs that moved buffered -> applied in this batch
    net: int
    balance: int  # the account balance after the batch
    last_seq: int
    min_balance: int  # lowest running balance inside the batch


@dataclass(frozen=True, slots=True)
class BufferedLeg:
    txn_no: str
    leg_no: int
    delta: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class HotAccount:
    id: AccountId
    normal_side: Side
    overdraft_mode: OverdraftMode
    overdraft_limit: int
    frozen: int

    @property
    def floor(self) -> int | None:
        """Lowest balance a debit may leave (balance terms), or None when overdraft is unlimited."""
        if self.overdraft_mode is OverdraftMode.UNLIMITED:
            return None
        limit = self.overdraft_limit if self.overdraft_mode is OverdraftMode.LIMIT else 0
        return self.frozen - limit


@dataclass(frozen=True, slots=True)
class HotBalance:
    """What reads show for a hot account: applied (in the row), pending (buffered legs), projected."""

    account_id: AccountId
    applied_minor: int
    pending_minor: int

    @property
    def projected_minor(self) -> int:
        return self.applied_minor + self.pending_minor


async def apply_batch(conn: Conn, account_id: str, legs: Sequence[tuple[str, int]]) -> BatchResult:
    """Apply buffered legs ``(txn_no, leg_no)`` of one account in the given order, in one transaction."""
    row = await conn.fetchrow(
        "SELECT * FROM buffer_apply_legs($1, $2::text[], $3::int[])",
        account_id, [t for t, _ in legs], [n for _, n in legs],
    )
    assert row is not None
    return BatchResult(row["r_applied"], row["r_net"], row["r_balance"], row["r_last_seq"], row["r_min_balance"])


_APPLY_MANY_SQL = (
    "SELECT a.id, r.* FROM unnest($1::text[], $2::int[], $3::int[]) WITH ORDINALITY AS a(id, lo, hi, ord),"
    " LATERAL buffer_apply_legs(a.id, ($4::text[])[a.lo:a.hi], ($5::int[])[a.lo:a.hi]) r ORDER BY a.ord"
)


async def apply_batches(conn: Conn, batches: Sequence[tuple[str, Sequence[tuple[str, int]]]]) -> dict[str, BatchResult]:
    """Several accounts' batches in ONE statement, so one round trip and one transaction: all or none.

    Each account's legs are applied in the given order by the same function as ``apply_batch``; the
    accounts are taken in id order (the caller owns them all, so no other flusher locks them anyway)."""
    ordered = sorted(batches, key=lambda b: b[0])
    ids: list[str] = []
    lows: list[int] = []
    highs: list[int] = []
    txn_nos: list[str] = []
    leg_nos: list[int] = []
    for account_id, legs in ordered:
        ids.append(account_id)
        lows.append(len(txn_nos) + 1)
        txn_nos.extend(t for t, _ in legs)
        leg_nos.extend(n for _, n in legs)
        highs.append(len(txn_nos))
    rows = await conn.fetch(_APPLY_MANY_SQL, ids, lows, highs, txn_nos, leg_nos)
    return {r["id"]: BatchResult(r["r_applied"], r["r_net"], r["r_balance"], r["r_last_seq"], r["r_min_balance"])
            for r in rows}


_LEGS_SQL = (
    "SELECT txn_no, leg_no, delta, created_at FROM journal_legs"
    " WHERE account_id = $1 AND status = 'buffered' {extra} ORDER BY id LIMIT {limit}"
)


def _legs(rows: Sequence[Any]) -> list[BufferedLeg]:
    return [BufferedLeg(r["txn_no"], r["leg_no"], r["delta"], r["created_at"]) for r in rows]


async def snapshot(conn: Any, account_id: str, limit: int) -> tuple[int, list[BufferedLeg]]:
    """Balance and buffered legs (journal order) of one account, read in ONE snapshot."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        balance = await conn.fetchval("SELECT balance FROM accounts WHERE id = $1", account_id)
        rows = await conn.fetch(_LEGS_SQL.format(extra="", limit=int(limit)), account_id)
    return int(balance or 0), _legs(rows)


async def buffered_legs_older_than(conn: Conn, account_id: str, grace_ms: int, limit: int) -> list[BufferedLeg]:
    """Legs still buffered that were written more than ``grace_ms`` ago, in journal order."""
    rows = await conn.fetch(
        _LEGS_SQL.format(extra="AND created_at < clock_timestamp() - $2 * interval '1 millisecond'",
                         limit=int(limit)),
        account_id, grace_ms,
    )
    return _legs(rows)


async def count_buffered_older_than(conn: Conn, account_ids: Sequence[str], grace_ms: int) -> dict[str, int]:
    """Per account, its legs still buffered that were written more than ``grace_ms`` ago (absent: none)."""
    rows = await conn.fetch(
        "SELECT account_id, count(*) AS n FROM journal_legs WHERE account_id = ANY($1::text[])"
        " AND status = 'buffered' AND created_at < clock_timestamp() - $2 * interval '1 millisecond'"
        " GROUP BY account_id", list(account_ids), grace_ms)
    return {r["account_id"]: int(r["n"]) for r in rows}


async def hot_accounts(conn: Conn, only: Sequence[str] | None = None) -> list[HotAccount]:
    """Accounts flagged hot (optionally restricted to ``only``)."""
    rows = await conn.fetch(
        "SELECT id, normal_side, overdraft_mode, overdraft_limit, frozen FROM accounts"
        " WHERE hot AND status = 'open' AND ($1::text[] IS NULL OR id = ANY($1::text[])) ORDER BY id",
        list(only) if only is not None else None,
    )
    return [
        HotAccount(AccountId(r["id"]), Side(r["normal_side"]), OverdraftMode(r["overdraft_mode"]),
                   r["overdraft_limit"], r["frozen"])
        for r in rows
    ]


async def hot_balances(conn: Conn, account_ids: Sequence[str]) -> dict[AccountId, HotBalance]:
    """Applied, pending and projected balances from PostgreSQL (the record), one round trip."""
    rows = await conn.fetch(
        "SELECT a.id, a.balance, coalesce(p.net, 0) AS pending FROM accounts a"
        " LEFT JOIN LATERAL (SELECT sum(l.delta) AS net FROM journal_legs l"
        "                    WHERE l.account_id = a.id AND l.status = 'buffered') p ON true"
        " WHERE a.id = ANY($1::text[])",
        list(account_ids),
    )
    return {AccountId(r["id"]): HotBalance(AccountId(r["id"]), r["balance"], int(r["pending"])) for r in rows}


async def hot_balance(conn: Conn, account_id: str) -> HotBalance | None:
    """Applied / pending / projected for one account (None if it does not exist)."""
    return (await hot_balances(conn, [account_id])).get(AccountId(account_id))
