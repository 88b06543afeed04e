"""SQL for hot-account detection: posting rate per account and waiters on account row locks.

Rates come from journal_legs ids (the primary key grows with time), so counting the legs of the
last window is a range scan on the primary key without a time index on the journal. Lock waits
are sampled: a backend waiting for an account row holds or waits for a 'tuple' lock on it, which
pg_locks names by (page, tuple); while the holder has not committed, that ctid is the row we see.
Legs on sub-accounts count for their parent, the identity that would be buffered or split.
"""

from __future__ import annotations

from dataclasses import dataclass

from accounts.model import AccountId
from accounts.store import Conn


@dataclass(frozen=True, slots=True)
class LegCount:
    account_id: AccountId  # the parent for legs on sub-accounts
    legs: int
    debit_legs: int  # legs that lowered the balance
    hot: bool
    unlimited_overdraft: bool
    sub_count: int


async def max_leg_id(conn: Conn) -> int:
    return int(await conn.fetchval("SELECT coalesce(max(id), 0) FROM journal_legs"))


async def leg_counts_since(conn: Conn, after_leg_id: int, limit: int) -> list[LegCount]:
    rows = await conn.fetch(
        "SELECT c.account_id, c.legs, c.debit_legs, p.hot, p.overdraft_mode = 'unlimited' AS unlimited,"
        " coalesce(sp.sub_count, 0) AS sub_count"
        " FROM (SELECT coalesce(a.parent_id, a.id) AS account_id, count(*) AS legs,"
        "       count(*) FILTER (WHERE l.delta < 0) AS debit_legs"
        "       FROM journal_legs l JOIN accounts a ON a.id = l.account_id WHERE l.id > $1 GROUP BY 1) c"
        " JOIN accounts p ON p.id = c.account_id LEFT JOIN account_splits sp ON sp.parent_id = c.account_id"
        " ORDER BY c.legs DESC LIMIT $2",
        after_leg_id, limit,
    )
    return [LegCount(AccountId(r["account_id"]), int(r["legs"]), int(r["debit_legs"]), r["hot"], r["unlimited"],
                     int(r["sub_count"])) for r in rows]


async def row_lock_waiters(conn: Conn) -> dict[AccountId, int]:
    """Backends queued on each account row right now (parents stand for their subs)."""
    locks = await conn.fetch(
        "SELECT page, tuple FROM pg_locks WHERE locktype = 'tuple' AND relation = 'accounts'::regclass"
    )
    if not locks:
        return {}
    wanted = [(int(r["page"]), int(r["tuple"])) for r in locks]
    rows = await conn.fetch(
        "SELECT coalesce(parent_id, id) AS account_id, ctid FROM accounts WHERE ctid = ANY($1::tid[])", wanted)
    by_ctid = {tuple(r["ctid"]): AccountId(r["account_id"]) for r in rows}
    waiters: dict[AccountId, int] = {}
    for ctid in wanted:
        account = by_ctid.get(ctid)
        if account is not None:
            waiters[account] = waiters.get(account, 0) + 1
    return waiters


async def transaction_lock_waiters(conn: Conn) -> int:
    """All backends waiting for another transaction or a row: the database-wide contention figure."""
    return int(await conn.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        " AND wait_event IN ('tuple', 'transactionid')"))
