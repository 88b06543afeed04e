"""All SQL of the desk: proposals, their compare-and-set decisions, the entries a reversal mirrors, and the
reconciliation differences a proposal resolves.

Functions take a connection and run in whatever transaction the caller holds. Every decision is one
``UPDATE ... WHERE status = 'proposed'``: of two concurrent approvals the second waits for the first's row
lock, then finds the proposal decided and changes nothing. The recon item a proposal resolves is linked from
here (``recon_item_id``) and moved here, in the approving or rejecting transaction, so reconciliation imports
the desk and never the other way round.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, NoReturn

import orjson

from accounts.journal import LegDraft
from accounts.model import AccountId, AccountKind, OverdraftMode, OverdraftRule, Side
from accounts.store import Conn
from engine.desk.errors import EntryAlreadyReversed, FourEyesRequired, ProposalExpired, ProposalNotOpen
from engine.desk.states import ProposalKind, ProposalStatus
from engine.errors import NotFound
from engine.merchants.store import PLATFORM_OWNER, ensure_account


@dataclass(frozen=True, slots=True)
class ProposalRecord:
    id: str
    kind: ProposalKind
    status: ProposalStatus
    code: str
    currency: str
    amount: int
    accounts: dict[str, str]
    original_txn_no: str | None
    reason: str
    evidence: str | None
    proposed_by: str
    proposed_at: datetime
    expires_at: datetime
    decided_by: str | None = None
    decided_at: datetime | None = None
    decision_note: str | None = None
    txn_no: str | None = None
    recon_item_id: int | None = None


_COLUMNS = ("id, kind, status, code, currency, amount, accounts::text AS accounts, original_txn_no, reason, evidence,"
            " proposed_by, proposed_at, expires_at, decided_by, decided_at, decision_note, txn_no, recon_item_id")


def _record(r: Any) -> ProposalRecord:
    return ProposalRecord(
        r["id"], ProposalKind(r["kind"]), ProposalStatus(r["status"]), r["code"], r["currency"].strip(), r["amount"],
        orjson.loads(r["accounts"]), r["original_txn_no"], r["reason"], r["evidence"], r["proposed_by"],
        r["proposed_at"], r["expires_at"], r["decided_by"], r["decided_at"], r["decision_note"], r["txn_no"],
        r["recon_item_id"])


async def insert_proposal(conn: Conn, p: ProposalRecord) -> None:
    """Raises EntryAlreadyReversed when the entry has a reversal proposed or booked already (the partial unique
    index decides, so two operators proposing at once get one proposal)."""
    inserted = await conn.fetchval(
        "INSERT INTO desk_proposals (id, kind, status, code, currency, amount, accounts, original_txn_no, reason,"
        " evidence, proposed_by, proposed_at, expires_at, recon_item_id)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10, $11, $12, $13, $14)"
        " ON CONFLICT (original_txn_no) WHERE kind = 'reversal' AND status IN ('proposed', 'approved') DO NOTHING"
        " RETURNING 1",
        p.id, p.kind, p.status, p.code, p.currency, p.amount, orjson.dumps(p.accounts).decode(),
        p.original_txn_no, p.reason, p.evidence, p.proposed_by, p.proposed_at, p.expires_at, p.recon_item_id)
    if inserted is None:
        by = await conn.fetchval("SELECT id FROM desk_proposals WHERE original_txn_no = $1 AND kind = 'reversal'"
                                 " AND status IN ('proposed', 'approved')", p.original_txn_no)
        raise EntryAlreadyReversed(p.original_txn_no or "", by)


async def get_proposal(conn: Conn, kind: ProposalKind, proposal_id: str) -> ProposalRecord | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM desk_proposals WHERE id = $1 AND kind = $2",
                              proposal_id, kind)
    return _record(row) if row else None


async def list_proposals(conn: Conn, kind: ProposalKind, status: ProposalStatus | None, limit: int,
                         starting_after: str | None) -> tuple[list[ProposalRecord], bool]:
    """Newest first; ``starting_after`` is the previous page's last id. Returns (page, has_more)."""
    cursor: Any = None
    if starting_after is not None:
        cursor = await conn.fetchrow("SELECT proposed_at, id FROM desk_proposals WHERE id = $1 AND kind = $2",
                                     starting_after, kind)
        if cursor is None:
            raise NotFound(str(kind), starting_after, "starting_after")
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM desk_proposals WHERE kind = $1 AND ($2::text IS NULL OR status = $2)"
        " AND ($3::timestamptz IS NULL OR (proposed_at, id) < ($3, $4::text))"
        " ORDER BY proposed_at DESC, id DESC LIMIT $5",
        kind, status, cursor["proposed_at"] if cursor else None, cursor["id"] if cursor else None, limit + 1)
    return [_record(r) for r in rows[:limit]], len(rows) > limit


async def decide(conn: Conn, kind: ProposalKind, proposal_id: str, to: ProposalStatus, operator: str,
                 note: str | None, now: datetime, txn_no: str | None = None) -> ProposalRecord:
    """Move a proposal from ``proposed`` to ``to`` (approved with its entry's ``txn_no``, or rejected) by an
    operator other than its proposer, before it expires. Raises NotFound, FourEyesRequired, ProposalExpired or
    ProposalNotOpen (then nothing changed)."""
    row = await conn.fetchrow(
        f"UPDATE desk_proposals SET status = $3, decided_by = $4, decided_at = $5, decision_note = $6, txn_no = $7"
        f" WHERE id = $1 AND kind = $2 AND status = 'proposed' AND expires_at > $5 AND proposed_by <> $4"
        f" RETURNING {_COLUMNS}", proposal_id, kind, to, operator, now, note, txn_no)
    if row is not None:
        return _record(row)
    await _raise_refusal(conn, kind, proposal_id, operator, now)


async def _raise_refusal(conn: Conn, kind: ProposalKind, proposal_id: str, operator: str, now: datetime) -> NoReturn:
    found = await get_proposal(conn, kind, proposal_id)
    if found is None:
        raise NotFound(str(kind), proposal_id)
    if found.status is not ProposalStatus.PROPOSED:
        raise ProposalNotOpen(proposal_id, found.status)
    if found.proposed_by == operator:
        raise FourEyesRequired(proposal_id, operator)
    assert found.expires_at <= now, found
    raise ProposalExpired(proposal_id)


async def expire_overdue(conn: Conn, now: datetime) -> list[ProposalRecord]:
    """Every proposal past its expiry becomes expired (nothing was booked for it); returns them."""
    rows = await conn.fetch(
        f"UPDATE desk_proposals SET status = 'expired', decided_at = $1"
        f" WHERE status = 'proposed' AND expires_at <= $1 RETURNING {_COLUMNS}", now)
    return [_record(r) for r in rows]


async def open_proposals(conn: Conn, now: datetime) -> dict[str, tuple[int, datetime]]:
    """Undecided, unexpired proposals by kind: (count, oldest proposed_at)."""
    rows = await conn.fetch("SELECT kind, count(*) AS n, min(proposed_at) AS oldest FROM desk_proposals"
                            " WHERE status = 'proposed' AND expires_at > $1 GROUP BY kind", now)
    return {r["kind"]: (int(r["n"]), r["oldest"]) for r in rows}


# ---------------------------------------------------------------- platform accounts of the desk

async def loss_and_suspense(conn: Conn, currency: str, new_account_id: Any) -> dict[str, AccountId]:
    """The platform's loss account (role ``adjustments``) and suspense account in ``currency``, opened when
    first needed. Internal accounts: they may go either way, so overdraft is unlimited; never hot."""
    unlimited = OverdraftRule(OverdraftMode.UNLIMITED)
    return {role: await ensure_account(conn, PLATFORM_OWNER, role, currency, AccountKind.INTERNAL, False, unlimited,
                                       new_account_id())
            for role in ("adjustments", "suspense")}


# ---------------------------------------------------------------- the entry a reversal mirrors

@dataclass(frozen=True, slots=True)
class OriginalEntry:
    txn_no: str
    txn_code: str
    accounting_date: date
    is_reversal: bool  # it mirrors another entry
    reversed_by: str | None  # the mirror booked for it
    legs: tuple[LegDraft, ...]  # on the account each leg's money belongs to (a split's parent)
    buffered_legs: int


async def original_entry(conn: Conn, txn_no: str) -> OriginalEntry | None:
    entry = await conn.fetchrow(
        "SELECT e.txn_no, e.txn_code, e.accounting_date,"
        " EXISTS (SELECT 1 FROM journal_reversals r WHERE r.reversal_txn_no = e.txn_no) AS is_reversal,"
        " (SELECT r.reversal_txn_no FROM journal_reversals r WHERE r.original_txn_no = e.txn_no) AS reversed_by"
        " FROM journal_entries e WHERE e.txn_no = $1", txn_no)
    if entry is None:
        return None
    # A leg booked to a split's sub-account is mirrored on its parent, which routes it to an active sub.
    legs = await conn.fetch(
        "SELECT coalesce(a.parent_id, a.id) AS account_id, l.side, l.amount, l.currency, l.status"
        " FROM journal_legs l JOIN accounts a ON a.id = l.account_id"
        " WHERE l.txn_no = $1 AND l.accounting_date = $2 ORDER BY l.leg_no", txn_no, entry["accounting_date"])
    return OriginalEntry(
        entry["txn_no"], entry["txn_code"], entry["accounting_date"], entry["is_reversal"], entry["reversed_by"],
        tuple(LegDraft(AccountId(r["account_id"]), Side(r["side"]), r["amount"], r["currency"].strip()) for r in legs),
        sum(1 for r in legs if r["status"] == "buffered"))


async def link_reversal(conn: Conn, original_txn_no: str, reversal_txn_no: str, proposal_id: str) -> None:
    """Record the mirror of an entry; EntryAlreadyReversed when it has one (the primary key decides)."""
    linked = await conn.fetchval(
        "INSERT INTO journal_reversals (original_txn_no, reversal_txn_no, proposal_id) VALUES ($1, $2, $3)"
        " ON CONFLICT (original_txn_no) DO NOTHING RETURNING 1", original_txn_no, reversal_txn_no, proposal_id)
    if linked is None:
        by = await conn.fetchval("SELECT reversal_txn_no FROM journal_reversals WHERE original_txn_no = $1",
                                 original_txn_no)
        raise EntryAlreadyReversed(original_txn_no, by)


# ---------------------------------------------------------------- the reconciliation differences proposals resolve

async def close_linked_item(conn: Conn, item_id: int, operator: str, now: datetime) -> bool:
    """The proposal resolving this difference was booked: the difference closes (from 'resolving' only)."""
    closed = await conn.fetchval(
        "UPDATE recon_items SET state = 'resolved', resolved_by = $2, resolved_at = $3, updated_at = $3"
        " WHERE id = $1 AND state = 'resolving' RETURNING id", item_id, operator, now)
    return closed is not None


async def reopen_linked_items(conn: Conn, item_ids: Sequence[int], now: datetime) -> int:
    """Proposals resolving these differences were rejected or expired: nothing moved, they are open again."""
    status = await conn.execute(
        "UPDATE recon_items SET state = 'open', resolution = NULL, updated_at = $2"
        " WHERE id = ANY($1::bigint[]) AND state = 'resolving'", list(item_ids), now)
    return int(status.split()[-1])
