"""The money checks every scenario ends with; a run that loses or duplicates money fails loudly.

Checks are scoped to the scenario's own accounts (and their sub-accounts), so they also hold on a
shared database. Every entry a scenario books touches only accounts it opened, which is what makes
a trial balance over that subset meaningful.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

DRAIN_TIMEOUT_S = 120.0
# An entry of the scenario: its ref is one of $1, or one of them followed by '/' and a payment's id.
REF_MATCHES = "({e}.ref = ANY($1::text[]) OR split_part({e}.ref, '/', 1) = ANY($1::text[]))"


class MoneyCheckFailed(AssertionError):
    """Money was lost, duplicated or left unapplied; the message lists every broken check."""


@dataclass
class MoneyScope:
    label: str
    account_ids: list[str]  # every account the scenario's entries touch (parents; subs are found)
    # Journal entry refs of the scenario's payments; an entry whose ref is one of these followed by '/' and
    # anything counts too (the batched mode books each entry with its payment's id as ref, as the API does).
    refs: list[str]
    expected_entries: int  # payments the load generator saw succeed
    expected_totals: dict[str, int] = field(default_factory=dict)  # account id -> Σ legs over it and its subs


async def _scope_ids(conn: asyncpg.Connection, account_ids: Sequence[str]) -> list[str]:
    rows = await conn.fetch("SELECT id FROM accounts WHERE id = ANY($1::text[]) OR parent_id = ANY($1::text[])",
                            list(account_ids))
    return [r["id"] for r in rows]


async def buffered_legs(pool: asyncpg.Pool, account_ids: Sequence[str]) -> int:
    async with pool.acquire() as conn:
        ids = await _scope_ids(conn, account_ids)
        return int(await conn.fetchval(
            "SELECT count(*) FROM journal_legs WHERE account_id = ANY($1::text[]) AND status = 'buffered'", ids))


async def wait_drained(pool: asyncpg.Pool, account_ids: Sequence[str], timeout_s: float = DRAIN_TIMEOUT_S,
                       poll_s: float = 0.05) -> float:
    """Wait until no leg on these accounts is still buffered; returns seconds waited (to within ``poll_s``),
    raises past the bound."""
    started = time.monotonic()
    last_report = started
    while True:
        left = await buffered_legs(pool, account_ids)
        waited = time.monotonic() - started
        if left == 0:
            return waited
        if waited > timeout_s:
            raise MoneyCheckFailed(f"buffers not drained after {timeout_s:.0f}s: {left} legs still buffered")
        if time.monotonic() - last_report >= 1.0:
            print(f"  draining: {left} legs buffered after {waited:.1f}s", file=sys.stderr, flush=True)
            last_report = time.monotonic()
        await asyncio.sleep(poll_s)


async def check_money(pool: asyncpg.Pool, scope: MoneyScope,
                      drain_timeout_s: float = DRAIN_TIMEOUT_S) -> dict[str, Any]:
    """Drain, then check: trial balance, balances = Σ legs, entry count, expected totals. Raises on any failure."""
    drain_s = await wait_drained(pool, scope.account_ids, drain_timeout_s)
    problems: list[str] = []
    async with pool.acquire() as conn:
        ids = await _scope_ids(conn, scope.account_ids)
        totals = await conn.fetch(
            "SELECT currency, coalesce(sum(balance) FILTER (WHERE normal_side = 'D'), 0) AS d,"
            " coalesce(sum(balance) FILTER (WHERE normal_side = 'C'), 0) AS c"
            " FROM accounts WHERE id = ANY($1::text[]) GROUP BY currency", ids)
        for row in totals:
            if row["d"] != row["c"]:
                problems.append(f"trial balance broken in {row['currency']}: debit-normal {row['d']} "
                                f"!= credit-normal {row['c']}")
        mismatched = await conn.fetch(
            "SELECT a.id, a.balance, coalesce(sum(l.delta) FILTER (WHERE l.status = 'applied'), 0) AS legs"
            " FROM accounts a LEFT JOIN journal_legs l ON l.account_id = a.id"
            " WHERE a.id = ANY($1::text[]) GROUP BY a.id, a.balance"
            " HAVING a.balance <> coalesce(sum(l.delta) FILTER (WHERE l.status = 'applied'), 0)", ids)
        for row in mismatched[:10]:
            problems.append(f"account {row['id']}: balance {row['balance']} != Σ applied legs {row['legs']}")
        entries = int(await conn.fetchval(
            f"SELECT count(*) FROM journal_entries WHERE {REF_MATCHES.format(e='journal_entries')}", scope.refs))
        if entries != scope.expected_entries:
            problems.append(f"journal entries {entries} != payments acknowledged {scope.expected_entries}")
        unbalanced = int(await conn.fetchval(
            "SELECT count(*) FROM (SELECT e.txn_no FROM journal_entries e JOIN journal_legs l USING (txn_no)"
            f" WHERE {REF_MATCHES.format(e='e')} GROUP BY e.txn_no"
            " HAVING sum(CASE l.side WHEN 'D' THEN l.amount ELSE -l.amount END) <> 0) x", scope.refs))
        if unbalanced:
            problems.append(f"{unbalanced} entries whose debits != credits")
        for account_id, expected in scope.expected_totals.items():
            actual = int(await conn.fetchval(
                "SELECT coalesce(sum(l.delta), 0) FROM journal_legs l JOIN accounts a ON a.id = l.account_id"
                " WHERE a.id = $1 OR a.parent_id = $1", account_id))
            if actual != expected:
                problems.append(f"account {account_id} (+subs): Σ legs {actual} != expected {expected}")
    if problems:
        raise MoneyCheckFailed(f"money checks FAILED for {scope.label}:\n  " + "\n  ".join(problems))
    return {"money_checks": "ok", "accounts_checked": len(ids), "entries": entries, "drain_s": round(drain_s, 2)}
