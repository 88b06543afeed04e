"""SQL for split accounts: resize (split, grow, shrink), sweeps, sub listing, parent sums, and the
process-local directory the booking path routes with.

Every change of money here is one SWEEP entry posted through the caller's ``post`` (the booking
transaction), so hot subs get their buffered legs enqueued like any other entry, in the caller's
database transaction: a resize is all or nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from accounts.errors import AccountClosed, NotSplittable, SplitConflict, UnknownAccount
from accounts.journal import EntryDraft, make_entry
from accounts.model import AccountId, OverdraftMode, Side
from accounts.split import (
    SWEEP_CODE,
    NeedBalances,
    SplitLayout,
    SubAccount,
    check_split_count,
    delta_legs,
    plan_rebalance,
    plan_sweep,
    route_entry,
)
from accounts.store import Conn, PostedEntry

Post = Callable[[EntryDraft], Awaitable[PostedEntry]]
# How long a new hot sub waits before routing uses it: longer than the buffer's hot-account cache
# (buffer.hot.REFRESH_S = 1 s) so every process reserves debits on it from the first routed leg.
HOT_SUB_ACTIVATION_S = 2.5
# Advisory lock class for "someone is resizing this parent" (second key: hashtext(parent id)).
SPLIT_LOCK_CLASS = 0x5350  # "SP"


def sub_account_id(parent_id: str, index: int) -> AccountId:
    return AccountId(f"{parent_id}.s{index:03d}")


# What a sub may hold: 'available' is balance - frozen, plus legs still buffered for hot subs.
_AVAILABLE_SQL = (
    "a.balance - a.frozen + CASE WHEN a.hot THEN coalesce((SELECT sum(l.delta) FROM journal_legs l"
    " WHERE l.account_id = a.id AND l.status = 'buffered'), 0) ELSE 0 END"
)


async def load_layouts(conn: Conn) -> dict[AccountId, SplitLayout]:
    rows = await conn.fetch(
        "SELECT p.id AS parent_id, p.currency, p.normal_side, s.id, s.sub_index, s.hot,"
        " s.overdraft_mode, s.overdraft_limit"
        " FROM account_splits sp JOIN accounts p ON p.id = sp.parent_id"
        " JOIN accounts s ON s.parent_id = p.id AND s.sub_index < sp.sub_count AND s.status = 'open'"
        " LEFT JOIN split_sub_activations act ON act.account_id = s.id"
        " WHERE act.active_from IS NULL OR act.active_from <= now()"
        " ORDER BY p.id, s.sub_index"
    )
    grouped: dict[AccountId, list[Any]] = {}
    for r in rows:
        grouped.setdefault(AccountId(r["parent_id"]), []).append(r)
    return {
        parent: SplitLayout(parent, rs[0]["currency"], Side(rs[0]["normal_side"]), tuple(
            SubAccount(AccountId(r["id"]), r["sub_index"], r["hot"], _floor(r["overdraft_mode"], r["overdraft_limit"]))
            for r in rs
        ))
        for parent, rs in grouped.items()
    }


def _floor(mode: str, limit: int) -> int | None:
    if mode == OverdraftMode.UNLIMITED:
        return None
    return -limit if mode == OverdraftMode.LIMIT else 0


async def available_balances(conn: Conn, account_ids: frozenset[AccountId]) -> dict[AccountId, int]:
    rows = await conn.fetch(f"SELECT a.id, {_AVAILABLE_SQL} AS available FROM accounts a"
                            " WHERE a.id = ANY($1::text[])", list(account_ids))
    return {AccountId(r["id"]): int(r["available"]) for r in rows}


class SplitDirectory:
    """Which accounts are split, cached per process for ``ttl_s``.

    A stale view is safe for money: a leg that still lands on the parent row or on a retired sub
    stays in the family (parent shown = own row + Σ subs) and ``tidy`` sweeps it into active subs;
    retired subs are closed only after a grace period longer than this cache lives.
    """

    def __init__(self, ttl_s: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._layouts: dict[AccountId, SplitLayout] = {}
        self._loaded_at: float | None = None
        self._lock = asyncio.Lock()

    def invalidate(self) -> None:
        self._loaded_at = None

    async def layouts(self, conn: Conn) -> Mapping[AccountId, SplitLayout]:
        if self._fresh():
            return self._layouts
        async with self._lock:  # one refresh at a time; the others reuse its result
            if not self._fresh():
                self._layouts = await load_layouts(conn)
                self._loaded_at = self._clock()
        return self._layouts

    def _fresh(self) -> bool:
        return self._loaded_at is not None and self._clock() - self._loaded_at < self.ttl_s

    async def route(self, conn: Conn, entry: EntryDraft) -> EntryDraft:
        """The entry with legs on split parents moved to their subs (unchanged when none are split).

        Raises InsufficientFunds or CurrencyMismatch from routing; nothing is written."""
        layouts = await self.layouts(conn)
        if not layouts:
            return entry
        available: dict[AccountId, int] = {}
        # Each round adds every sub a debit asked for, so one round per split parent is the most needed.
        for _ in range(len(layouts) + 1):
            routed = route_entry(entry, layouts, available)
            if not isinstance(routed, NeedBalances):
                return routed
            available.update(await available_balances(conn, routed.account_ids))
            # A sub that vanished since the layout was read counts as empty rather than looping.
            available.update({a: 0 for a in routed.account_ids if a not in available})
        raise AssertionError("routing kept asking for balances it was given")


@dataclass(frozen=True, slots=True)
class SubView:
    id: AccountId
    index: int
    balance_minor: int
    pending_minor: int  # net of legs still buffered (hot subs)
    status: str
    active: bool
    hot: bool


@dataclass(frozen=True, slots=True)
class SplitView:
    parent_id: AccountId
    currency: str
    sub_count: int  # active subs; 0 when the account is not split
    own_balance_minor: int  # what is still on the parent row itself (normally 0 once split)
    subs: tuple[SubView, ...]

    @property
    def balance_minor(self) -> int:
        """The parent's balance as shown: its own row plus all its subs."""
        return self.own_balance_minor + sum(s.balance_minor for s in self.subs)

    @property
    def pending_minor(self) -> int:
        return sum(s.pending_minor for s in self.subs)


async def split_view(conn: Conn, parent_id: str) -> SplitView:
    """The parent with its subs and sums; raises UnknownAccount."""
    rows = await conn.fetch(
        "SELECT a.id, a.sub_index, a.balance, a.currency, a.status, a.hot, coalesce(sp.sub_count, 0) AS sub_count,"
        " coalesce((SELECT sum(l.delta) FROM journal_legs l WHERE l.account_id = a.id AND l.status = 'buffered'),"
        " 0) AS pending"
        " FROM accounts a LEFT JOIN account_splits sp ON sp.parent_id = $1"
        " WHERE a.id = $1 OR a.parent_id = $1 ORDER BY a.sub_index NULLS FIRST",
        parent_id,
    )
    if not rows or rows[0]["id"] != parent_id:
        raise UnknownAccount(parent_id)
    head, count = rows[0], int(rows[0]["sub_count"])
    subs = tuple(
        SubView(AccountId(r["id"]), r["sub_index"], int(r["balance"]), int(r["pending"]), r["status"],
                r["sub_index"] < count and r["status"] == "open", r["hot"])
        for r in rows[1:]
    )
    return SplitView(AccountId(parent_id), head["currency"], count, int(head["balance"]), subs)


async def _lock_parent(conn: Conn, parent_id: str) -> Any:
    """Serialise resizes of one parent (a second one fails fast) and freeze the parent row."""
    if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1, hashtext($2))", SPLIT_LOCK_CLASS, parent_id):
        raise SplitConflict(parent_id)
    row = await conn.fetchrow(
        "SELECT a.*, sp.sub_count FROM accounts a LEFT JOIN account_splits sp ON sp.parent_id = a.id"
        " WHERE a.id = $1 FOR UPDATE OF a", parent_id)
    if row is None:
        raise UnknownAccount(parent_id)
    if row["status"] != "open":
        raise AccountClosed(parent_id)
    if row["parent_id"] is not None:
        raise NotSplittable(parent_id, "it is a sub-account; split its parent instead")
    return row


async def resize(conn: Conn, post: Post, parent_id: str, into: int, txn_no: str,
                 accounting_date: date, hot_activation_s: float = HOT_SUB_ACTIVATION_S) -> SplitView:
    """Split ``parent_id`` into ``into`` subs, or grow/shrink an existing split, in the caller's
    transaction: subs are created (or reopened), the parent's own balance and the balances of
    subs no longer active are swept into the active ones in one SWEEP entry, and the count is
    recorded. New or reopened subs of a hot parent take routed legs only after ``hot_activation_s``.
    Raises InvalidSplitCount, SplitConflict, UnknownAccount, AccountClosed, NotSplittable.
    """
    into = check_split_count(into)
    parent = await _lock_parent(conn, parent_id)
    existing = {r["sub_index"]: r for r in await conn.fetch(
        "SELECT id, sub_index, status FROM accounts WHERE parent_id = $1", parent_id)}
    missing = [i for i in range(into) if i not in existing]
    if missing:
        await _create_subs(conn, parent, missing)
    reopen = [existing[i]["id"] for i in range(into) if i in existing and existing[i]["status"] == "closed"]
    if reopen:
        await conn.execute("UPDATE accounts SET status = 'open' WHERE id = ANY($1::text[])", reopen)
    # Timed from the clock, not the transaction start: waiting for the parent's row lock must not eat
    # into the activation delay or the retirement grace.
    if parent["hot"] and (missing or reopen):
        await conn.execute(
            "INSERT INTO split_sub_activations (account_id, active_from)"
            " SELECT unnest($1::text[]), clock_timestamp() + make_interval(secs => $2)"
            " ON CONFLICT (account_id) DO UPDATE SET active_from = EXCLUDED.active_from",
            [*(sub_account_id(parent_id, i) for i in missing), *reopen], hot_activation_s)
    await conn.execute(
        "INSERT INTO account_splits (parent_id, sub_count, resized_at) VALUES ($1, $2, clock_timestamp())"
        " ON CONFLICT (parent_id) DO UPDATE"
        " SET sub_count = $2, generation = account_splits.generation + 1, resized_at = clock_timestamp()",
        parent_id, into)
    if not parent["hot"]:
        await _sweep_into_active(conn, post, parent, into, txn_no, accounting_date, f"resize:{parent_id}:{into}")
    # A hot family is swept by ``tidy`` once routing has moved off the parent and retired subs: the
    # buffer checks a hot debit against Redis, where debits still in flight hold reservations that
    # no row lock here can wait out, so a sweep now could be refused or leave crumbs behind.
    return await split_view(conn, parent_id)


async def _create_subs(conn: Conn, parent: Any, indexes: list[int]) -> None:
    # Sub 0 carries a 'limit' parent's overdraft so the family's floor stays the parent's.
    await conn.execute(
        "INSERT INTO accounts (id, kind, owner_id, role, subject_code, currency, normal_side, overdraft_mode,"
        " overdraft_limit, hot, parent_id, sub_index)"
        " SELECT u.id, p.kind, p.owner_id, p.role, p.subject_code, p.currency, p.normal_side,"
        "  CASE WHEN u.idx = 0 OR p.overdraft_mode = 'unlimited' THEN p.overdraft_mode ELSE 'never' END,"
        "  CASE WHEN u.idx = 0 AND p.overdraft_mode = 'limit' THEN p.overdraft_limit ELSE 0 END,"
        "  p.hot, p.id, u.idx"
        " FROM accounts p, unnest($2::text[], $3::int[]) AS u(id, idx) WHERE p.id = $1",
        parent["id"], [sub_account_id(parent["id"], i) for i in indexes], indexes,
    )


async def _sweep_into_active(conn: Conn, post: Post, parent: Any, active_count: int, txn_no: str,
                             accounting_date: date, ref: str) -> PostedEntry | None:
    """One SWEEP entry moving the parent row's own money and the retired subs' money into the
    active subs. Sources are locked (parent already is) so the amounts read are the amounts moved."""
    parent_id = parent["id"]
    # Lock the whole family in id order (the parent's id sorts before its subs'), the order the
    # posting function locks in too, so a resize and a payment spread over subs cannot deadlock.
    family = await conn.fetch(
        f"SELECT a.id, a.sub_index, {_AVAILABLE_SQL} AS available FROM accounts a"
        " WHERE a.parent_id = $1 AND a.status = 'open' ORDER BY a.id FOR UPDATE", parent_id)
    own = await conn.fetchval(f"SELECT {_AVAILABLE_SQL} FROM accounts a WHERE a.id = $1", parent_id)
    sources = {AccountId(r["id"]): int(r["available"]) for r in family if r["sub_index"] >= active_count}
    sources[AccountId(parent_id)] = int(own)
    if not any(sources.values()):
        return None
    active = sorted((r for r in family if r["sub_index"] < active_count), key=lambda r: r["sub_index"])
    targets = [AccountId(r["id"]) for r in active]
    deltas = plan_sweep(sources, targets, {AccountId(r["id"]): int(r["available"]) for r in active})
    legs = delta_legs(deltas, Side(parent["normal_side"]), parent["currency"])
    return await post(make_entry(txn_no, SWEEP_CODE, accounting_date, legs, ref))


async def tidy(conn: Conn, post: Post, parent_id: str, txn_no: str, accounting_date: date,
               grace_s: float) -> list[AccountId]:
    """Sweep what stale routing left on the parent row or on retired subs into the active subs,
    then close retired subs that are empty, have nothing buffered and were retired more than
    ``grace_s`` ago (so no process can still route to them). Returns the subs closed.
    Raises SplitConflict when a resize of the same parent is running."""
    parent = await _lock_parent(conn, parent_id)
    if parent["sub_count"] is None:
        return []
    if not parent["hot"] or await _settled(conn, parent_id, grace_s):
        await _sweep_into_active(conn, post, parent, parent["sub_count"], txn_no, accounting_date,
                                 f"tidy:{parent_id}")
    rows = await conn.fetch(
        "UPDATE accounts a SET status = 'closed' FROM account_splits sp"
        " WHERE sp.parent_id = $1 AND a.parent_id = $1 AND a.sub_index >= sp.sub_count AND a.status = 'open'"
        "  AND a.balance = 0 AND a.frozen = 0 AND sp.resized_at < now() - make_interval(secs => $2)"
        "  AND NOT EXISTS (SELECT 1 FROM journal_legs l WHERE l.account_id = a.id AND l.status = 'buffered')"
        " RETURNING a.id", parent_id, grace_s)
    return [AccountId(r["id"]) for r in rows]


async def _settled(conn: Conn, parent_id: str, grace_s: float) -> bool:
    """No process can still route to the parent row or a retired sub: the last resize and every
    active sub's activation lie more than ``grace_s`` (longer than any routing cache) back."""
    return bool(await conn.fetchval(
        "SELECT sp.resized_at < now() - make_interval(secs => $2) AND NOT EXISTS ("
        "  SELECT 1 FROM split_sub_activations act JOIN accounts s ON s.id = act.account_id"
        "  WHERE s.parent_id = $1 AND s.sub_index < sp.sub_count"
        "   AND act.active_from > now() - make_interval(secs => $2))"
        " FROM account_splits sp WHERE sp.parent_id = $1", parent_id, grace_s))


async def rebalance(conn: Conn, post: Post, parent_id: str, txn_no: str, accounting_date: date,
                    low_minor: int) -> PostedEntry | None:
    """Even out the active subs' balances in one SWEEP entry when some sub is under ``low_minor``
    (for debit-heavy accounts); None when no sub is that low. Raises SplitConflict."""
    parent = await _lock_parent(conn, parent_id)
    if parent["sub_count"] is None:
        return None
    rows = await conn.fetch(
        f"SELECT a.id, {_AVAILABLE_SQL} AS available FROM accounts a"
        " WHERE a.parent_id = $1 AND a.sub_index < $2 AND a.status = 'open'"
        "  AND NOT EXISTS (SELECT 1 FROM split_sub_activations act WHERE act.account_id = a.id"
        "                  AND act.active_from > now())"
        " ORDER BY a.id FOR UPDATE",
        parent_id, parent["sub_count"])
    balances = {AccountId(r["id"]): int(r["available"]) for r in rows}
    if not balances or min(balances.values()) >= low_minor:
        return None
    deltas = plan_rebalance(balances)
    if not deltas:
        return None
    legs = delta_legs(deltas, Side(parent["normal_side"]), parent["currency"])
    return await post(make_entry(txn_no, SWEEP_CODE, accounting_date, legs, f"rebalance:{parent_id}"))


async def split_parents(conn: Conn) -> list[AccountId]:
    return [AccountId(r["parent_id"]) for r in await conn.fetch("SELECT parent_id FROM account_splits")]


async def set_family_hot(conn: Conn, account_id: str, hot: bool) -> None:
    """Mark a parent and all its subs hot (or not): the buffer's flushers discover them by the flag."""
    await conn.execute("UPDATE accounts SET hot = $2 WHERE id = $1 OR parent_id = $1", account_id, hot)


@dataclass(frozen=True, slots=True)
class SplitStatementLine:
    applied_at: datetime
    sub_index: int  # -1 for a leg on the parent row itself
    seq: int
    account_id: AccountId
    txn_no: str
    txn_code: str
    side: Side
    amount_minor: int
    delta: int
    sub_balance_after: int
    balance_after: int  # the parent's balance as shown (own row + subs) after this leg


async def split_statement(conn: Conn, parent_id: str, limit: int = 100,
                          after: tuple[datetime, int, int] | None = None) -> list[SplitStatementLine]:
    """Applied legs of a parent and all its subs merged by (applied_at, sub, seq), each with the
    sub it landed on and the parent's running balance. ``after`` is the last line's key."""
    rows = await conn.fetch(
        "WITH fam AS (SELECT id, coalesce(sub_index, -1) AS sub_index FROM accounts WHERE id = $1 OR parent_id = $1),"
        " lines AS (SELECT l.applied_at, f.sub_index, l.seq, l.account_id, l.txn_no, e.txn_code, l.side, l.amount,"
        "  l.delta, l.balance_after, sum(l.delta) OVER (ORDER BY l.applied_at, f.sub_index, l.seq) AS running"
        "  FROM journal_legs l JOIN fam f ON f.id = l.account_id JOIN journal_entries e ON e.txn_no = l.txn_no"
        "  WHERE l.status = 'applied')"
        " SELECT * FROM lines WHERE $2::timestamptz IS NULL OR (applied_at, sub_index, seq) > ($2, $3, $4)"
        " ORDER BY applied_at, sub_index, seq LIMIT $5",
        parent_id, after[0] if after else None, after[1] if after else 0, after[2] if after else 0, limit,
    )
    return [
        SplitStatementLine(r["applied_at"], r["sub_index"], r["seq"], AccountId(r["account_id"]), r["txn_no"],
                           r["txn_code"], Side(r["side"]), r["amount"], r["delta"], r["balance_after"],
                           int(r["running"]))
        for r in rows
    ]
