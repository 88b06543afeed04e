"""Split-account test helpers: a parent with a funding source, money moves through Booker, and the
family invariants (parent shown = Σ subs = Σ applied legs, overdraft never broken)."""

from __future__ import annotations

from dataclasses import dataclass

from accounts.journal import LegDraft, make_entry
from accounts.model import Account, AccountKind, OverdraftMode, Side
from accounts.split_store import split_view
from accounts.store import Conn, PostedEntry
from engine.booking import Booker
from engine.ledger_admin.accounts import split_account
from tests.factories import new_txn_no, open_test_account, today

D, C = Side.DEBIT, Side.CREDIT


@dataclass(frozen=True)
class Family:
    parent: Account  # credit-normal merchant account, the one that gets split
    source: Account  # debit-normal internal account with unlimited overdraft: money comes from here


async def open_family(conn: Conn, hot: bool = False, overdraft: OverdraftMode = OverdraftMode.NEVER,
                      limit_minor: int = 0, currency: str = "CNY") -> Family:
    parent = await open_test_account(conn, role="merchant_pending", kind=AccountKind.MERCHANT, hot=hot,
                                     overdraft=overdraft, limit_minor=limit_minor, currency=currency)
    source = await open_test_account(conn, role="channel_receivable", kind=AccountKind.INTERNAL,
                                     overdraft=OverdraftMode.UNLIMITED, currency=currency)
    return Family(parent, source)


async def credit(booker: Booker, fam: Family, amount: int, source: Account | None = None) -> PostedEntry:
    """Move money from ``source`` (default: the family's) to the parent; writers that must not queue
    on one source row pass their own."""
    cur, src = fam.parent.currency, (source or fam.source)
    return await booker.book(make_entry(new_txn_no(), "ADJUST", today(), [
        LegDraft(src.id, D, amount, cur), LegDraft(fam.parent.id, C, amount, cur)]))


async def debit(booker: Booker, fam: Family, amount: int, source: Account | None = None) -> PostedEntry:
    cur, src = fam.parent.currency, (source or fam.source)
    return await booker.book(make_entry(new_txn_no(), "ADJUST", today(), [
        LegDraft(fam.parent.id, D, amount, cur), LegDraft(src.id, C, amount, cur)]))


async def open_source(conn: Conn, currency: str = "CNY") -> Account:
    return await open_test_account(conn, role="channel_receivable", kind=AccountKind.INTERNAL,
                                   overdraft=OverdraftMode.UNLIMITED, currency=currency)


async def split(booker: Booker, account_id: str, into: int, hot_activation_s: float = 1.2) -> None:
    """Split with a hot-sub activation just past the buffer's 1 s hot-account cache."""
    await split_account(booker, new_txn_no, account_id, into, hot_activation_s)


async def check_family(conn: Conn, parent_id: str) -> int:
    """Assert the family invariants and return the parent's balance as shown."""
    view = await split_view(conn, parent_id)
    rows = await conn.fetch(
        "SELECT a.id, a.balance, a.frozen, a.overdraft_mode, a.overdraft_limit,"
        " coalesce((SELECT sum(delta) FROM journal_legs l WHERE l.account_id = a.id AND l.status = 'applied'), 0) AS s,"
        " coalesce((SELECT min(balance_after) FROM journal_legs l WHERE l.account_id = a.id"
        "           AND l.status = 'applied'), 0) AS low"
        " FROM accounts a WHERE a.id = $1 OR a.parent_id = $1", parent_id)
    for r in rows:
        assert r["balance"] == r["s"], f"{r['id']}: balance {r['balance']} != Σ legs {r['s']}"
        if r["overdraft_mode"] != "unlimited":
            floor = -r["overdraft_limit"] if r["overdraft_mode"] == "limit" else 0
            assert r["low"] >= floor, f"{r['id']} went to {r['low']} below its floor {floor}"
            assert r["balance"] - r["frozen"] >= floor
    assert view.balance_minor == sum(int(r["s"]) for r in rows), "parent shown != Σ legs of the family"
    return view.balance_minor
