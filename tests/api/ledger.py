"""Ledger snapshots for "a rejected request changed nothing" checks (tests run one at a time)."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from accounts.store import trial_balance


@dataclass(frozen=True)
class LedgerSnapshot:
    entries: int
    legs: int
    balances: tuple[tuple[str, int], ...]
    payments: int
    refunds: int


async def snapshot(pool: asyncpg.Pool, owner_ids: list[str]) -> LedgerSnapshot:
    async with pool.acquire() as conn:
        tb = await trial_balance(conn)
        assert tb.holds, tb
        entries = await conn.fetchval("SELECT count(*) FROM journal_entries")
        legs = await conn.fetchval("SELECT count(*) FROM journal_legs")
        rows = await conn.fetch("SELECT id, balance FROM accounts WHERE owner_id = ANY($1::text[]) ORDER BY id",
                                owner_ids)
        payments = await conn.fetchval("SELECT count(*) FROM payments")
        refunds = await conn.fetchval("SELECT count(*) FROM refunds")
    return LedgerSnapshot(entries, legs, tuple((r["id"], r["balance"]) for r in rows), payments, refunds)
