"""All SQL about payouts. Functions take a connection and run inside the caller's transaction.

Every state change is a compare-and-set on `status`, so two workers (one whose lease ran out, one that took
the payout over) can race on a payout and exactly one of them makes it final and books it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from accounts.model import AccountId
from accounts.store import Conn
from engine.payments.errors import DuplicateOrder

OPEN_STATUSES = ("pending", "sending", "processing")
FINAL_STATUSES = ("succeeded", "failed")


@dataclass(frozen=True, slots=True)
class PayoutFields:
    """What the merchant asked for and where the money comes from: fixed once the payout exists."""

    id: str
    merchant_id: str
    merchant_payout_no: str
    source: str
    customer_id: str | None
    source_account_id: AccountId
    frozen_account_id: AccountId
    amount: int
    currency: str
    channel: str
    dest_kind: str
    dest_number: str
    dest_holder: str
    dest_bank_code: str | None
    description: str | None
    channel_chosen: bool  # the merchant named the channel: it is never changed


@dataclass(frozen=True, slots=True)
class NewPayout(PayoutFields):
    out_payout_no: str
    risk: str | None  # JSON text of the control gate's record, when one is wired
    created_at: datetime


@dataclass(frozen=True, slots=True)
class PayoutRecord(PayoutFields):
    status: str
    out_payout_no: str
    final_txn_no: str | None
    channel_payout_no: str | None
    failure_code: str | None
    failure_message: str | None
    sends: int
    attempts: int
    first_sent_at: datetime | None
    last_sent_at: datetime | None
    finished_at: datetime | None
    created_at: datetime
    updated_at: datetime
    hold_reason: str | None  # set: kept open for a person (see hold_payout); never made final meanwhile


_COLUMNS = (
    "id, merchant_id, merchant_payout_no, source, customer_id, source_account_id, frozen_account_id, amount,"
    " currency, channel, dest_kind, dest_number, dest_holder, dest_bank_code, description, status, out_payout_no,"
    " final_txn_no, channel_payout_no, failure_code, failure_message, sends, attempts, first_sent_at,"
    " last_sent_at, finished_at, created_at, updated_at, channel_chosen, hold_reason"
)


def _record(r: asyncpg.Record) -> PayoutRecord:
    return PayoutRecord(
        r["id"], r["merchant_id"], r["merchant_payout_no"], r["source"], r["customer_id"],
        AccountId(r["source_account_id"]), AccountId(r["frozen_account_id"]), r["amount"], r["currency"].strip(),
        r["channel"], r["dest_kind"], r["dest_number"], r["dest_holder"], r["dest_bank_code"], r["description"],
        r["channel_chosen"], r["status"], r["out_payout_no"].strip(),
        r["final_txn_no"].strip() if r["final_txn_no"] else None,
        r["channel_payout_no"], r["failure_code"], r["failure_message"], r["sends"], r["attempts"],
        r["first_sent_at"], r["last_sent_at"], r["finished_at"], r["created_at"], r["updated_at"], r["hold_reason"])


async def insert_payout(conn: Conn, p: NewPayout) -> PayoutRecord:
    """Insert a pending payout, due for the worker at once; DuplicateOrder names an earlier one with the same
    merchant_payout_no (the caller's transaction, with its freeze, then rolls back)."""
    row = await conn.fetchrow(
        f"INSERT INTO payouts (id, merchant_id, merchant_payout_no, source, customer_id, source_account_id,"
        f" frozen_account_id, amount, currency, channel, dest_kind, dest_number, dest_holder, dest_bank_code,"
        f" description, status, out_payout_no, risk, next_attempt_at, created_at, updated_at, channel_chosen)"
        f" VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,'pending',$16,$17::jsonb,$18,$18,$18,$19)"
        f" ON CONFLICT ON CONSTRAINT payouts_merchant_payout_no DO NOTHING RETURNING {_COLUMNS}",
        p.id, p.merchant_id, p.merchant_payout_no, p.source, p.customer_id, p.source_account_id,
        p.frozen_account_id, p.amount, p.currency, p.channel, p.dest_kind, p.dest_number, p.dest_holder,
        p.dest_bank_code, p.description, p.out_payout_no, p.risk, p.created_at, p.channel_chosen)
    if row is None:
        existing = await conn.fetchval("SELECT id FROM payouts WHERE merchant_id = $1 AND merchant_payout_no = $2",
                                       p.merchant_id, p.merchant_payout_no)
        raise DuplicateOrder("merchant_payout_no", p.merchant_payout_no, existing or "a concurrent request")
    return _record(row)


async def get_payout(conn: Conn, merchant_id: str, payout_id: str) -> PayoutRecord | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM payouts WHERE id = $1 AND merchant_id = $2",
                              payout_id, merchant_id)
    return _record(row) if row else None


async def payout_by_out_no(conn: Conn, out_payout_no: str) -> PayoutRecord | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM payouts WHERE out_payout_no = $1", out_payout_no)
    return _record(row) if row else None


_CLAIM = f"""
UPDATE payouts p SET locked_by = $2, locked_until = now() + make_interval(secs => $3),
                     attempts = p.attempts + 1, updated_at = now()
FROM (SELECT id FROM payouts
      WHERE next_attempt_at <= now() AND channel = ANY($1::text[]) AND (locked_until IS NULL OR locked_until < now())
      ORDER BY next_attempt_at, id LIMIT $4 FOR UPDATE SKIP LOCKED) c
WHERE p.id = c.id
RETURNING {", ".join("p." + c.strip() for c in _COLUMNS.split(","))}
"""


async def claim_due_payouts(conn: Conn, channels: Sequence[str], worker: str, lease_s: float,
                            limit: int) -> list[PayoutRecord]:
    """Take up to `limit` due open payouts of channels this process serves. A lease that ran out (the worker
    died) makes a payout takeable again: no janitor needed. Rows other workers hold are skipped."""
    rows = await conn.fetch(_CLAIM, list(channels), worker, float(lease_s), limit)
    return [_record(r) for r in rows]


async def mark_sending(conn: Conn, payout_id: str, worker: str, channel: str) -> bool:
    """Before every create call, committed: from now on a crash leaves an unknown outcome to be queried.
    False when the lease was lost (another worker has the payout), and when `channel` would move a payout that
    may not move: one whose channel the merchant chose, or one sent already (a send that may have arrived pins
    the channel, since the same out_payout_no at a second channel could pay twice)."""
    status = await conn.execute(
        "UPDATE payouts SET status = 'sending', channel = $3, sends = sends + 1, last_sent_at = now(),"
        " first_sent_at = coalesce(first_sent_at, now()), updated_at = now()"
        " WHERE id = $1 AND locked_by = $2 AND hold_reason IS NULL AND status IN ('pending', 'sending')"
        "   AND (channel = $3 OR (status = 'pending' AND NOT channel_chosen))", payout_id, worker, channel)
    return status.endswith(" 1")


async def reschedule(conn: Conn, payout_id: str, worker: str, delay_s: float, error: str | None,
                     status: str | None = None, channel_payout_no: str | None = None) -> bool:
    """Release the lease and come back after `delay_s`; optionally move sending -> processing."""
    result = await conn.execute(
        "UPDATE payouts SET next_attempt_at = now() + make_interval(secs => $3), locked_by = NULL,"
        " locked_until = NULL, last_error = $4, status = coalesce($5, status),"
        " channel_payout_no = coalesce($6, channel_payout_no), updated_at = now()"
        " WHERE id = $1 AND locked_by = $2 AND status IN ('pending', 'sending', 'processing')",
        payout_id, worker, float(delay_s), error, status, channel_payout_no)
    return result.endswith(" 1")


async def finish_payout(conn: Conn, payout_id: str, status: str, final_txn_no: str, channel_payout_no: str | None,
                        failure_code: str | None, failure_message: str | None, now: datetime) -> PayoutRecord | None:
    """Make an open payout final (compare-and-set); None when it was final already (nothing to book)."""
    assert status in FINAL_STATUSES
    row = await conn.fetchrow(
        f"UPDATE payouts SET status = $2, final_txn_no = $3, channel_payout_no = coalesce($4, channel_payout_no),"
        f" failure_code = $5, failure_message = $6, finished_at = $7, updated_at = $7, next_attempt_at = NULL,"
        f" locked_by = NULL, locked_until = NULL"
        f" WHERE id = $1 AND status IN ('pending', 'sending', 'processing') AND hold_reason IS NULL"
        f" RETURNING {_COLUMNS}",
        payout_id, status, final_txn_no, channel_payout_no, failure_code, failure_message, now)
    return _record(row) if row else None


async def hold_payout(conn: Conn, payout_id: str, worker: str, reason: str, note: str) -> bool:
    """Keep an open payout open for a person: its amount stays frozen, no worker takes it again and nothing can
    make it final until the hold is cleared. False when the lease was lost."""
    result = await conn.execute(
        "UPDATE payouts SET hold_reason = $3, last_error = $4, next_attempt_at = NULL, locked_by = NULL,"
        " locked_until = NULL, updated_at = now()"
        " WHERE id = $1 AND locked_by = $2 AND status IN ('pending', 'sending', 'processing')",
        payout_id, worker, reason, note)
    return result.endswith(" 1")


async def admission_of(conn: Conn, payout_id: str) -> str | None:
    """The control gate's admission id recorded with the payout (None when no gate admitted it)."""
    found: str | None = await conn.fetchval("SELECT risk->>'admission' FROM payouts WHERE id = $1", payout_id)
    return found

