"""The ledger's PostgreSQL store: every SQL statement about accounts, entries and legs.

Functions take an asyncpg connection and run inside whatever transaction the caller holds; a
posting that fails raises a typed LedgerError and, because it is one statement, leaves nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

import asyncpg

from accounts.errors import (
    AccountClosed,
    CurrencyMismatch,
    DuplicateTransaction,
    InsufficientFunds,
    LedgerError,
    UnbalancedEntry,
    UnknownAccount,
)
from accounts.journal import EntryDraft
from accounts.model import (
    Account,
    AccountId,
    AccountKind,
    AccountSpec,
    OverdraftMode,
    OverdraftRule,
    Side,
)
from accounts.subjects import SUBJECTS


class Conn(Protocol):
    """The part of an asyncpg connection (or pool proxy) the stores use."""

    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str: ...
    async def fetch(self, query: str, *args: Any, timeout: float | None = None) -> list[Any]: ...
    async def fetchrow(self, query: str, *args: Any, timeout: float | None = None) -> Any: ...
    async def fetchval(self, query: str, *args: Any, column: int = 0, timeout: float | None = None) -> Any: ...
    def transaction(self, *, isolation: str | None = None, readonly: bool = False,
                    deferrable: bool = False) -> Any: ...


@dataclass(frozen=True, slots=True)
class PostedLeg:
    leg_no: int
    account_id: AccountId
    status: str  # 'applied' or 'buffered'
    seq: int | None
    balance_after: int | None
    delta: int


@dataclass(frozen=True, slots=True)
class PostedEntry:
    txn_no: str
    legs: tuple[PostedLeg, ...]

    @property
    def buffered_legs(self) -> tuple[PostedLeg, ...]:
        return tuple(leg for leg in self.legs if leg.status == "buffered")


@dataclass(frozen=True, slots=True)
class StatementLine:
    seq: int
    txn_no: str
    txn_code: str
    leg_no: int
    account_id: AccountId
    side: Side
    amount_minor: int
    delta: int
    balance_after: int
    accounting_date: date
    applied_at: datetime


@dataclass(frozen=True, slots=True)
class CurrencyTotals:
    currency: str
    debit_normal_minor: int
    credit_normal_minor: int

    @property
    def balanced(self) -> bool:
        return self.debit_normal_minor == self.credit_normal_minor


@dataclass(frozen=True, slots=True)
class TrialBalance:
    applied: tuple[CurrencyTotals, ...]  # account balances as applied
    projected: tuple[CurrencyTotals, ...]  # applied plus legs still buffered
    mismatched_accounts: tuple[tuple[AccountId, int, int], ...]  # (id, balance, Σ applied legs)
    buffered_legs: int

    @property
    def holds(self) -> bool:
        """Projected totals balance and every balance equals the sum of its applied legs."""
        return all(t.balanced for t in self.projected) and not self.mismatched_accounts

    @property
    def holds_drained(self) -> bool:
        """As ``holds`` and, with nothing buffered, the applied balances balance too."""
        return self.holds and self.buffered_legs == 0 and all(t.balanced for t in self.applied)


_ERRORS_BY_SQLSTATE: dict[str, Callable[[str], LedgerError]] = {
    "PE001": lambda detail: InsufficientFunds(detail),
    "PE002": lambda detail: UnknownAccount(detail),
    "PE003": lambda detail: CurrencyMismatch("account currency", "leg currency", detail),
    "PE004": lambda detail: AccountClosed(detail),
}


def translate_error(exc: asyncpg.PostgresError) -> LedgerError | None:
    """Map a database error raised by the ledger's SQL to its domain error (None if it is not one)."""
    sqlstate = getattr(exc, "sqlstate", None)
    detail = getattr(exc, "detail", None) or ""
    if sqlstate in _ERRORS_BY_SQLSTATE:
        return _ERRORS_BY_SQLSTATE[sqlstate](detail)
    if sqlstate == "PE005":
        return UnbalancedEntry("?", 0, 0)
    if isinstance(exc, asyncpg.UniqueViolationError) and exc.constraint_name == "journal_entries_pkey":
        return DuplicateTransaction(detail)
    return None


def _account(row: asyncpg.Record) -> Account:
    return Account(
        id=AccountId(row["id"]),
        kind=AccountKind(row["kind"]),
        owner_id=row["owner_id"],
        role=row["role"],
        subject_code=row["subject_code"],
        currency=row["currency"],
        normal_side=Side(row["normal_side"]),
        balance_minor=row["balance"],
        frozen_minor=row["frozen"],
        overdraft=OverdraftRule(OverdraftMode(row["overdraft_mode"]), row["overdraft_limit"]),
        hot=row["hot"],
        parent_id=AccountId(row["parent_id"]) if row["parent_id"] else None,
        sub_index=row["sub_index"],
        status=row["status"],
    )


_ACCOUNT_COLUMNS = (
    "id, kind, owner_id, role, subject_code, currency, normal_side, balance, frozen, overdraft_mode,"
    " overdraft_limit, hot, parent_id, sub_index, status"
)


async def open_account(conn: Conn, spec: AccountSpec) -> Account:
    """Open an account; its normal side comes from its subject."""
    subject = SUBJECTS[spec.subject_code]
    row = await conn.fetchrow(
        f"INSERT INTO accounts (id, kind, owner_id, role, subject_code, currency, normal_side,"
        f" overdraft_mode, overdraft_limit, hot) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)"
        f" RETURNING {_ACCOUNT_COLUMNS}",
        spec.id, spec.kind.value, spec.owner_id, spec.role, spec.subject_code, spec.currency,
        subject.normal_side.value, spec.overdraft.mode.value, spec.overdraft.limit_minor, spec.hot,
    )
    assert row is not None
    return _account(row)


async def get_account(conn: Conn, account_id: str) -> Account | None:
    row = await conn.fetchrow(f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE id = $1", account_id)
    return _account(row) if row else None


async def get_accounts(conn: Conn, account_ids: Sequence[str]) -> dict[AccountId, Account]:
    rows = await conn.fetch(f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE id = ANY($1::text[])",
                            list(account_ids))
    return {AccountId(r["id"]): _account(r) for r in rows}


async def find_account(conn: Conn, owner_id: str, role: str, currency: str) -> Account | None:
    row = await conn.fetchrow(
        f"SELECT {_ACCOUNT_COLUMNS} FROM accounts"
        " WHERE owner_id = $1 AND role = $2 AND currency = $3 AND parent_id IS NULL",
        owner_id, role, currency,
    )
    return _account(row) if row else None


async def accounts_of_owner(conn: Conn, owner_id: str) -> list[Account]:
    rows = await conn.fetch(
        f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE owner_id = $1 ORDER BY parent_id NULLS FIRST, id",
        owner_id,
    )
    return [_account(r) for r in rows]


async def hot_open_accounts(conn: Conn) -> list[Account]:
    """Open accounts flagged hot, whole (owner, role, currency, parent), ordered by id."""
    rows = await conn.fetch(f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE hot AND status = 'open' ORDER BY id")
    return [_account(r) for r in rows]


async def set_hot(conn: Conn, account_id: str, hot: bool) -> None:
    await conn.execute("UPDATE accounts SET hot = $2 WHERE id = $1", account_id, hot)


async def post_entry(conn: Conn, entry: EntryDraft) -> PostedEntry:
    """Book one entry. Normal legs are applied at once, hot-account legs are written 'buffered'.

    Raises InsufficientFunds, UnknownAccount, CurrencyMismatch, AccountClosed, UnbalancedEntry or
    DuplicateTransaction; the entry is then not booked (the caller's transaction must roll back).
    """
    try:
        rows = await conn.fetch(
            "SELECT * FROM ledger_post_entry($1, $2, $3, $4, $5::text[], $6::text[], $7::bigint[], $8::text[])",
            entry.txn_no, entry.txn_code, entry.accounting_date, entry.ref, *leg_arrays(entry),
        )
    except asyncpg.PostgresError as exc:
        raise_ledger_error(exc, entry.txn_no)
        raise
    return posted_entry(entry.txn_no, rows)


def leg_arrays(entry: EntryDraft, unnamed: AccountId | None = None) -> tuple[list[str | None], list[str],
                                                                                list[int], list[str]]:
    """The legs as ledger_post_entry takes them (accounts, sides, amounts, currencies). A leg on the
    ``unnamed`` account goes with a NULL account, for a statement that names it itself (a payer's wallet
    found with the payment's customer check)."""
    legs = entry.legs
    return ([None if unnamed is not None and leg.account_id == unnamed else leg.account_id for leg in legs],
            [leg.side.value for leg in legs], [leg.amount_minor for leg in legs], [leg.currency for leg in legs])


def raise_ledger_error(exc: asyncpg.PostgresError, txn_no: str) -> None:
    """Raise the ledger's domain error for a database error of a posting, if it is one (else return)."""
    domain = translate_error(exc)
    if domain is None:
        return
    if isinstance(domain, DuplicateTransaction):
        domain = DuplicateTransaction(txn_no)
    raise domain from None


def posted_entry(txn_no: str, rows: Sequence[Any]) -> PostedEntry:
    """The rows ledger_post_entry returned, as a PostedEntry (legs in leg order)."""
    posted = tuple(
        PostedLeg(r["r_leg_no"], AccountId(r["r_account_id"]), r["r_status"], r["r_seq"],
                  r["r_balance_after"], r["r_delta"])
        for r in rows
    )
    return PostedEntry(txn_no, tuple(sorted(posted, key=lambda p: p.leg_no)))


_STATEMENT_SQL = (
    "SELECT l.seq, l.txn_no, e.txn_code, l.leg_no, l.account_id, l.side, l.amount, l.delta,"
    " l.balance_after, l.accounting_date, l.applied_at"
    " FROM journal_legs l JOIN journal_entries e ON e.accounting_date = l.accounting_date AND e.txn_no = l.txn_no"
    " WHERE l.account_id = $1 AND l.seq IS NOT NULL AND l.seq > $2{dates}"
    " ORDER BY l.seq LIMIT $3"
)


def leg_date_bounds(first_param: int, from_date: date | None, to_date: date | None) -> tuple[str, list[date]]:
    """SQL conditions on ``l.accounting_date`` (inclusive bounds, numbered from ``$first_param``) and their
    parameters. Spelled out only when given: "$4 IS NULL OR ..." would defeat partition pruning."""
    dates = (f" AND l.accounting_date >= ${first_param}" if from_date else "") + (
        f" AND l.accounting_date <= ${first_param + 1 if from_date else first_param}" if to_date else "")
    return dates, [d for d in (from_date, to_date) if d is not None]


async def statement(conn: Conn, account_id: str, limit: int = 100, after_seq: int | None = None,
                    from_date: date | None = None, to_date: date | None = None) -> list[StatementLine]:
    """Applied legs of one account in sequence order, each with the balance it left.

    ``from_date`` / ``to_date`` (inclusive accounting dates) restrict the statement to those days; the
    journal is partitioned by accounting date (migration 070), so only their partitions are read."""
    dates, bounds = leg_date_bounds(4, from_date, to_date)
    rows = await conn.fetch(_STATEMENT_SQL.format(dates=dates), account_id, after_seq or 0, limit, *bounds)
    return [
        StatementLine(r["seq"], r["txn_no"], r["txn_code"], r["leg_no"], AccountId(r["account_id"]),
                      Side(r["side"]), r["amount"], r["delta"], r["balance_after"],
                      r["accounting_date"], r["applied_at"])
        for r in rows
    ]


async def pending_net(conn: Conn, account_id: str) -> int:
    """Net effect of legs still buffered on an account (what the buffer has yet to apply)."""
    value = await conn.fetchval(
        "SELECT coalesce(sum(delta), 0) FROM journal_legs WHERE account_id = $1 AND status = 'buffered'",
        account_id,
    )
    return int(value)


async def trial_balance(conn: Conn) -> TrialBalance:
    """Per currency Σ debit-normal = Σ credit-normal, and every balance = Σ of its applied legs."""
    totals = await conn.fetch(
        "WITH pending AS (SELECT account_id, sum(delta) AS net FROM journal_legs"
        "                 WHERE status = 'buffered' GROUP BY account_id)"
        " SELECT a.currency,"
        "  coalesce(sum(a.balance) FILTER (WHERE a.normal_side = 'D'), 0) AS d_applied,"
        "  coalesce(sum(a.balance) FILTER (WHERE a.normal_side = 'C'), 0) AS c_applied,"
        "  coalesce(sum(a.balance + coalesce(p.net, 0)) FILTER (WHERE a.normal_side = 'D'), 0) AS d_proj,"
        "  coalesce(sum(a.balance + coalesce(p.net, 0)) FILTER (WHERE a.normal_side = 'C'), 0) AS c_proj"
        " FROM accounts a LEFT JOIN pending p ON p.account_id = a.id GROUP BY a.currency ORDER BY 1"
    )
    mismatched = await conn.fetch(
        "SELECT a.id, a.balance, coalesce(s.total, 0) AS total FROM accounts a"
        " LEFT JOIN (SELECT account_id, sum(delta) AS total FROM journal_legs WHERE status = 'applied'"
        "            GROUP BY account_id) s ON s.account_id = a.id"
        " WHERE a.balance <> coalesce(s.total, 0)"
    )
    buffered = await conn.fetchval("SELECT count(*) FROM journal_legs WHERE status = 'buffered'")
    return TrialBalance(
        applied=tuple(CurrencyTotals(r["currency"], int(r["d_applied"]), int(r["c_applied"])) for r in totals),
        projected=tuple(CurrencyTotals(r["currency"], int(r["d_proj"]), int(r["c_proj"])) for r in totals),
        mismatched_accounts=tuple((AccountId(r["id"]), int(r["balance"]), int(r["total"])) for r in mismatched),
        buffered_legs=int(buffered),
    )


def row_to_dict(row: asyncpg.Record) -> dict[str, Any]:
    return dict(row.items())
