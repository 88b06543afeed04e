"""All SQL about payouts. Functions take a connection and run inside the caller's transaction.

Every state change is a compare-and-set on `status`, so two workers (one whose lease ran out, one that took
the payout over) can race on a payout and exactly one of them makes it final and books it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

import asyncpg

from accounts.model import AccountId
from accounts.store import Conn
from engine.controls.store import USAGE_OWED
from engine.errors import DuplicateOrder
from engine.payouts.decision import Hold
from engine.payouts.wire import PayoutSource

OPEN_STATUSES = ("pending", "sending", "processing")
FINAL_STATUSES = ("succeeded", "failed")


@dataclass(frozen=True, slots=True)
class PayoutFields:
    """What the merchant asked for and where the money comes from: fixed once the payout exists."""

    id: str
    merchant_id: str
    merchant_payout_no: str
    source: PayoutSource
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
    # While held as amount_mismatch: what the channel reported (None when it reported neither).
    reported_amount_minor: int | None = None
    reported_currency: str | None = None


_COLUMNS = (
    "id, merchant_id, merchant_payout_no, source, customer_id, source_account_id, frozen_account_id, amount,"
    " currency, channel, dest_kind, dest_number, dest_holder, dest_bank_code, description, status, out_payout_no,"
    " final_txn_no, channel_payout_no, failure_code, failure_message, sends, attempts, first_sent_at,"
    " last_sent_at, finished_at, created_at, updated_at, channel_chosen, hold_reason, reported_amount_minor,"
    " reported_currency"
)


def _record(r: asyncpg.Record) -> PayoutRecord:
    return PayoutRecord(
        r["id"], r["merchant_id"], r["merchant_payout_no"], cast(PayoutSource, r["source"]), r["customer_id"],
        AccountId(r["source_account_id"]), AccountId(r["frozen_account_id"]), r["amount"], r["currency"].strip(),
        r["channel"], r["dest_kind"], r["dest_number"], r["dest_holder"], r["dest_bank_code"], r["description"],
        r["channel_chosen"], r["status"], r["out_payout_no"].strip(),
        r["final_txn_no"].strip() if r["final_txn_no"] else None,
        r["channel_payout_no"], r["failure_code"], r["failure_message"], r["sends"], r["attempts"],
        r["first_sent_at"], r["last_sent_at"], r["finished_at"], r["created_at"], r["updated_at"], r["hold_reason"],
        r["reported_amount_minor"], r["reported_currency"])


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


async def payout_by_id(conn: Conn, payout_id: str) -> PayoutRecord | None:
    """Any merchant's payout (operators' view)."""
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM payouts WHERE id = $1", payout_id)
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
                        failure_code: str | None, failure_message: str | None, now: datetime,
                        held: bool = False) -> PayoutRecord | None:
    """Make an open payout final (compare-and-set); None when it was final already (nothing to book).
    `held`: a person resolves a held payout, so only a held one matches (and its hold is cleared); otherwise
    only one that is not held, so nothing the worker does can book a payout a person has to decide on. A pending
    payout (never sent) only fails: None for a success. A failure also records the limit usage the payout owes
    back (payment_store.USAGE_OWED, engine/controls/usage_release.py): owed exactly when the failure commits."""
    assert status in FINAL_STATUSES
    row = await conn.fetchrow(
        f"WITH p AS ("
        f" UPDATE payouts SET status = $2, final_txn_no = $3, channel_payout_no = coalesce($4, channel_payout_no),"
        f" failure_code = $5, failure_message = $6, finished_at = $7, updated_at = $7, next_attempt_at = NULL,"
        f" locked_by = NULL, locked_until = NULL, hold_reason = NULL, reported_amount_minor = NULL,"
        f" reported_currency = NULL"
        f" WHERE id = $1 AND status IN ('pending', 'sending', 'processing') AND (hold_reason IS NOT NULL) = $8"
        # A payout never sent (pending) cannot have been paid: it never settles.
        f"   AND ($2 <> 'succeeded' OR status <> 'pending')"
        f" RETURNING {_COLUMNS}, CASE WHEN $2 = 'failed' THEN risk->>'admission' END AS admission"
        f"), {USAGE_OWED}"
        f" SELECT * FROM p",
        payout_id, status, final_txn_no, channel_payout_no, failure_code, failure_message, now, held)
    return _record(row) if row else None


async def hold_payout(conn: Conn, payout_id: str, worker: str, hold: Hold) -> bool:
    """Keep an open payout open for a person: its amount stays frozen, no worker takes it again and nothing can
    make it final until a person resolves it (holds.py). A hold the channel's answer `accepted` moves a sending
    payout to processing (the channel has it) and keeps its channel_payout_no. False when the lease was lost:
    nothing changed."""
    result = await conn.execute(
        "UPDATE payouts SET hold_reason = $3, last_error = $4, next_attempt_at = NULL, locked_by = NULL,"
        " locked_until = NULL, updated_at = now(),"
        " status = CASE WHEN $5 AND status = 'sending' THEN 'processing' ELSE status END,"
        " channel_payout_no = coalesce($6, channel_payout_no), reported_amount_minor = $7, reported_currency = $8"
        " WHERE id = $1 AND locked_by = $2 AND status IN ('pending', 'sending', 'processing')",
        payout_id, worker, hold.reason, hold.note[:500], hold.accepted, hold.channel_payout_no,
        hold.reported_amount_minor, hold.reported_currency)
    return result.endswith(" 1")


async def release_hold(conn: Conn, payout_id: str, now: datetime) -> PayoutRecord | None:
    """Clear a held payout's hold and make it due at once: a worker asks the channel again (compare-and-set on
    the hold). None when it is not held (any more): resolved or never held."""
    row = await conn.fetchrow(
        f"UPDATE payouts SET hold_reason = NULL, reported_amount_minor = NULL, reported_currency = NULL,"
        f" next_attempt_at = $2, updated_at = $2"
        f" WHERE id = $1 AND hold_reason IS NOT NULL AND status IN ('pending', 'sending', 'processing')"
        f" RETURNING {_COLUMNS}", payout_id, now)
    return _record(row) if row else None


@dataclass(frozen=True, slots=True)
class Resolution:
    """A person's decision on a held payout, recorded as a transition in the transaction that carries it out."""

    action: str    # retry | fail | succeed
    note: str      # why, in the operator's words (long digit runs masked)
    actor: str     # who, and through what: "li.lei via cli"


async def record_resolution(conn: Conn, before: PayoutRecord, after: PayoutRecord, resolution: Resolution,
                            now: datetime) -> None:
    """The transitions row of a resolution: the event names the action and the hold it ended."""
    await conn.execute(
        "INSERT INTO transitions (object_id, from_status, to_status, event, reason, actor, at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)",
        before.id, before.status, after.status, f"resolve_{resolution.action}:{before.hold_reason}",
        resolution.note, resolution.actor, now)


@dataclass(frozen=True, slots=True)
class TransitionRow:
    from_status: str | None
    to_status: str
    event: str
    reason: str | None
    actor: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class PayoutInternals:
    """What only operators see: the worker's bookkeeping, the gate's record, the recorded transitions."""

    risk: str | None  # JSON text
    last_error: str | None
    next_attempt_at: datetime | None
    locked_until: datetime | None
    transitions: tuple[TransitionRow, ...]


TRANSITIONS_SHOWN_MAX = 100


async def payout_for_admin(conn: Conn, payout_id: str) -> tuple[PayoutRecord, PayoutInternals] | None:
    """Any merchant's payout with its internals (the newest TRANSITIONS_SHOWN_MAX transitions, oldest first)."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS}, risk::text AS risk_text, last_error, next_attempt_at, locked_until"
        f" FROM payouts WHERE id = $1", payout_id)
    if row is None:
        return None
    steps = await conn.fetch(
        "SELECT from_status, to_status, event, reason, actor, at FROM"
        " (SELECT * FROM transitions WHERE object_id = $1 ORDER BY id DESC LIMIT $2) t ORDER BY id",
        payout_id, TRANSITIONS_SHOWN_MAX)
    return _record(row), PayoutInternals(
        row["risk_text"], row["last_error"], row["next_attempt_at"], row["locked_until"],
        tuple(TransitionRow(s["from_status"], s["to_status"], s["event"], s["reason"], s["actor"], s["at"])
              for s in steps))


async def held_counts(conn: Conn) -> dict[str, int]:
    """How many payouts are held now, by hold reason (the partial index payouts_held finds them)."""
    rows = await conn.fetch("SELECT hold_reason, count(*) AS n FROM payouts WHERE hold_reason IS NOT NULL GROUP BY 1")
    return {r["hold_reason"]: int(r["n"]) for r in rows}


async def held_payouts(conn: Conn, merchant_id: str | None, starting_after: str | None,
                       limit: int) -> list[tuple[PayoutRecord, str | None]]:
    """Held payouts with their hold's note (last_error), newest first (created_at, id), up to `limit`, optionally
    of one merchant, after the payout `starting_after` (the last of the previous page). Held payouts are few
    (the partial index payouts_held finds them); the sort is over those alone."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS}, last_error FROM payouts"
        f" WHERE hold_reason IS NOT NULL AND ($1::text IS NULL OR merchant_id = $1)"
        f"   AND ($2::text IS NULL OR (created_at, id) < (SELECT created_at, id FROM payouts WHERE id = $2))"
        f" ORDER BY created_at DESC, id DESC LIMIT $3", merchant_id, starting_after, limit)
    return [(_record(r), r["last_error"]) for r in rows]
