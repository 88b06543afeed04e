"""All SQL of reconciliation: runs, items, our side of the comparison, and clearing earlier suspects.

Our reference as a channel knows it may be the payment id, its transaction number or its voucher id
(refunds: refund id or transaction number); lookups accept any of them. Our side of a statement date
is the channel payments and refunds whose journal entry (transaction number = the payment's or
refund's txn_no) is dated that accounting date.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import orjson

from accounts.store import Conn
from engine.recon.matching import OUR_PAYMENT_STATUS, OUR_REFUND_STATUS, Item, OurTxn
from engine.recon.strategy import ACTION_STATE, Action


@dataclass(frozen=True, slots=True)
class ReconRun:
    id: str
    channel: str
    statement_date: date
    status: str
    started_at: datetime
    finished_at: datetime | None
    error: str | None
    summary: dict[str, Any] | None
    malformed: list[dict[str, Any]] | None
    generation: int = 1  # 1: the first run of its channel and date; n + 1 supersedes run n
    supersedes: str | None = None
    superseded_by: str | None = None
    superseded_at: datetime | None = None
    operator: str | None = None  # who asked for the re-run


RUN_COLUMNS = ("id, channel, statement_date, status, started_at, finished_at, error, summary::text AS summary,"
                " malformed::text AS malformed, generation, supersedes, superseded_by, superseded_at, operator")


def run_of(r: Any) -> ReconRun:
    return ReconRun(r["id"], r["channel"], r["statement_date"], r["status"], r["started_at"], r["finished_at"],
                    r["error"], orjson.loads(r["summary"]) if r["summary"] else None,
                    orjson.loads(r["malformed"]) if r["malformed"] else None, r["generation"], r["supersedes"],
                    r["superseded_by"], r["superseded_at"], r["operator"])


async def open_run(conn: Conn, run_id: str, channel: str, day: date) -> ReconRun:
    """The live run for (channel, day): a new one, or the existing one (done, refused or interrupted; after a
    re-run, the latest: engine/recon/runs_store.py)."""
    await conn.execute(
        "INSERT INTO recon_runs (id, channel, statement_date, status) VALUES ($1, $2, $3, 'running')"
        " ON CONFLICT (channel, statement_date) WHERE superseded_by IS NULL DO NOTHING", run_id, channel, day)
    r = await conn.fetchrow(f"SELECT {RUN_COLUMNS} FROM recon_runs WHERE channel = $1 AND statement_date = $2"
                            " AND superseded_by IS NULL", channel, day)
    return run_of(r)


async def get_run(conn: Conn, run_id: str) -> ReconRun | None:
    r = await conn.fetchrow(f"SELECT {RUN_COLUMNS} FROM recon_runs WHERE id = $1", run_id)
    return run_of(r) if r else None


async def finish_run(conn: Conn, run_id: str, status: str, summary: dict[str, Any] | None,
                     malformed: list[dict[str, Any]] | None, error: str | None) -> None:
    await conn.execute(
        "UPDATE recon_runs SET status = $2, summary = $3::jsonb, malformed = $4::jsonb, error = $5,"
        " finished_at = now() WHERE id = $1",
        run_id, status, orjson.dumps(summary).decode() if summary is not None else None,
        orjson.dumps(malformed).decode() if malformed is not None else None, error)


async def find_ours(conn: Conn, payment_refs: Sequence[str], refund_refs: Sequence[str],
                    supplemented: set[str]) -> dict[tuple[str, str], OurTxn]:
    """Our transactions named by the statement, keyed (kind, reference as the file wrote it).

    A payment this run supplemented counts as still pending, so a rerun sees what the first run saw; a
    closed payment the gateway booked as a late success (and refunded) has the status 'late'."""
    found: dict[tuple[str, str], OurTxn] = {}
    wanted = set(payment_refs)
    rows = await conn.fetch(
        "SELECT p.id, p.txn_no, v.id AS voucher_id, p.merchant_id, p.status, p.amount, p.currency,"
        "  EXISTS (SELECT 1 FROM exceptions x WHERE x.payment_id = p.id AND x.kind = 'late_success') AS late"
        " FROM payments p LEFT JOIN vouchers v ON v.payment_id = p.id"
        " WHERE p.method = 'channel' AND (p.id = ANY($1::text[]) OR p.txn_no = ANY($1::text[])"
        "   OR v.id = ANY($1::text[]))", list(wanted))
    for r in rows:
        status = "pending" if r["id"] in supplemented else OUR_PAYMENT_STATUS.get(r["status"], r["status"])
        if status == "closed" and r["late"]:
            status = "late"  # paid after we closed it: booked and refunded by the gateway
        for ref in (r["id"], r["txn_no"], r["voucher_id"]):
            if ref in wanted:
                found[("payment", ref)] = OurTxn("payment", ref, r["id"], None, r["merchant_id"], status,
                                                 r["amount"], r["currency"].strip())
    wanted = set(refund_refs)
    rows = await conn.fetch(
        "SELECT r.id, r.txn_no, r.payment_id, r.merchant_id, r.status, r.amount, p.currency"
        " FROM refunds r JOIN payments p ON p.id = r.payment_id"
        " WHERE r.id = ANY($1::text[]) OR r.txn_no = ANY($1::text[])", list(wanted))
    for r in rows:
        for ref in (r["id"], r["txn_no"]):
            if ref in wanted:
                found[("refund", ref)] = OurTxn("refund", ref, r["payment_id"], r["id"], r["merchant_id"],
                                                OUR_REFUND_STATUS.get(r["status"], r["status"]), r["amount"],
                                                r["currency"].strip())
    # The gateway's automatic refunds of late successes live on its exception records, not in refunds.
    rows = await conn.fetch(
        "SELECT x.id, x.out_refund_no, x.payment_id, p.merchant_id, x.refund_status, x.amount, x.currency"
        " FROM exceptions x JOIN payments p ON p.id = x.payment_id WHERE x.out_refund_no = ANY($1::text[])",
        list(wanted))
    for r in rows:
        status = _AUTO_REFUND_STATUS.get(r["refund_status"] or "", "pending")
        found[("refund", r["out_refund_no"])] = OurTxn("refund", r["out_refund_no"], r["payment_id"], r["id"],
                                                       r["merchant_id"], status, r["amount"], r["currency"].strip())
    return found


_AUTO_REFUND_STATUS = {"requested": "pending", "succeeded": "succeeded", "failed": "failed"}


async def expected_successes(conn: Conn, channel: str, day: date) -> list[OurTxn]:
    """Our successful channel payments and refunds booked on accounting date ``day`` for ``channel`` that
    no other date's statement has shown (a success supplemented from yesterday's file is booked today)."""
    rows = await conn.fetch(
        "SELECT 'payment' AS kind, p.txn_no AS ref, p.id AS payment_id, NULL AS refund_id, p.merchant_id, p.amount,"
        "  p.currency FROM payments p JOIN journal_entries e ON e.txn_no = p.txn_no"
        " WHERE p.method = 'channel' AND p.channel = $1 AND p.status = 'succeeded' AND e.accounting_date = $2"
        "   AND NOT EXISTS (SELECT 1 FROM recon_items i JOIN recon_runs u ON u.id = i.run_id"
        "                   WHERE i.payment_id = p.id AND i.kind = 'payment' AND i.their_status <> 'missing'"
        "                     AND u.statement_date <> $2 AND u.superseded_by IS NULL)"
        " UNION ALL"
        " SELECT 'refund', r.txn_no, r.payment_id, r.id, r.merchant_id, r.amount, p.currency"
        " FROM refunds r JOIN payments p ON p.id = r.payment_id JOIN journal_entries e ON e.txn_no = r.txn_no"
        " WHERE p.method = 'channel' AND p.channel = $1 AND r.status = 'succeeded' AND e.accounting_date = $2"
        "   AND NOT EXISTS (SELECT 1 FROM recon_items i JOIN recon_runs u ON u.id = i.run_id"
        "                   WHERE i.refund_id = r.id AND i.kind = 'refund' AND i.their_status <> 'missing'"
        "                     AND u.statement_date <> $2 AND u.superseded_by IS NULL)"
        " UNION ALL"
        " SELECT 'refund', x.out_refund_no, x.payment_id, x.id, p.merchant_id, x.amount, x.currency"
        " FROM exceptions x JOIN payments p ON p.id = x.payment_id JOIN journal_entries e ON e.txn_no = x.refund_txn_no"
        " WHERE x.channel = $1 AND x.refund_status = 'succeeded' AND e.accounting_date = $2"
        "   AND NOT EXISTS (SELECT 1 FROM recon_items i JOIN recon_runs u ON u.id = i.run_id"
        "                   WHERE i.refund_id = x.id AND i.kind = 'refund' AND i.their_status <> 'missing'"
        "                     AND u.statement_date <> $2 AND u.superseded_by IS NULL)",
        channel, day)
    return [OurTxn(r["kind"], r["ref"], r["payment_id"], r["refund_id"], r["merchant_id"], "succeeded",
                   r["amount"], r["currency"].strip()) for r in rows]


async def supplemented_by(conn: Conn, run_id: str) -> set[str]:
    rows = await conn.fetch("SELECT payment_id FROM recon_supplements WHERE run_id = $1", run_id)
    return {r["payment_id"] for r in rows}


async def save_items(conn: Conn, run_id: str, items: Sequence[Item]) -> None:
    """Replace the run's items (a rerun after a crash writes the same set again) in one statement.

    Supplements start 'open' and become 'resolved' once booked."""
    def state(item: Item) -> str:
        return "open" if item.action is Action.SUPPLEMENT else ACTION_STATE[item.action]

    await conn.execute("DELETE FROM recon_items WHERE run_id = $1", run_id)
    await conn.execute(
        "INSERT INTO recon_items (run_id, kind, reference, channel_txn_id, payment_id, refund_id, merchant_id,"
        " currency, our_status, their_status, our_amount, their_amount, outcome, action, state, payout_id)"
        " SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],"
        "   $8::text[], $9::text[], $10::text[], $11::bigint[], $12::bigint[], $13::text[], $14::text[], $15::text[],"
        "   $16::text[])",
        run_id, [i.kind for i in items], [i.reference for i in items], [i.channel_txn_id for i in items],
        # A payout's id travels in OurTxn.payment_id (the matching key); the row names it as payout_id.
        [i.ours.payment_id if i.ours and i.kind != "payout" else None for i in items],
        [i.ours.refund_id if i.ours else None for i in items],
        [i.ours.merchant_id if i.ours else None for i in items],
        [(i.ours.currency if i.ours else i.theirs.currency if i.theirs else None) for i in items],
        [i.our_status for i in items], [i.their_status for i in items],
        [i.ours.amount_minor if i.ours else None for i in items],
        [i.theirs.amount_minor if i.theirs else None for i in items],
        [i.outcome.value for i in items], [i.action.value for i in items], [state(i) for i in items],
        [i.ours.payment_id if i.ours and i.kind == "payout" else None for i in items],
    )


async def set_item_state(conn: Conn, run_id: str, kind: str, reference: str, state: str, note: str) -> None:
    await conn.execute(
        "UPDATE recon_items SET state = $4, note = $5, updated_at = now()"
        " WHERE run_id = $1 AND kind = $2 AND reference = $3", run_id, kind, reference, state, note)


async def clear_earlier_shorts(conn: Conn, run_id: str, payment_ids: Sequence[str],
                               refund_ids: Sequence[str]) -> int:
    """Suspects of earlier statements that this statement shows after all (a cut-off difference)."""
    status = await conn.execute(
        "UPDATE recon_items SET state = 'cleared', note = 'shown in the statement of run ' || $1,"
        " updated_at = now()"
        " WHERE state = 'open' AND outcome = 'short' AND run_id <> $1"
        "   AND ((kind = 'payment' AND payment_id = ANY($2::text[]))"
        "        OR (kind = 'refund' AND refund_id = ANY($3::text[])))",
        run_id, list(payment_ids), list(refund_ids))
    return int(status.split()[-1])


async def items_of(conn: Conn, run_id: str, exceptions_only: bool, limit: int) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT id, kind, reference, channel_txn_id, payment_id, refund_id, payout_id, merchant_id, currency,"
        " our_status, their_status, our_amount, their_amount, outcome, action, state, note, resolution,"
        " carried_from FROM recon_items"
        " WHERE run_id = $1 AND (NOT $2 OR outcome <> 'matched' OR state <> 'ok') ORDER BY id LIMIT $3",
        run_id, exceptions_only, limit)
    return [{k: (v.strip() if k == "currency" and v else v) for k, v in r.items()} for r in rows]


async def open_item_counts(conn: Conn) -> dict[tuple[str, str], int]:
    """Items of every run still open, by (channel, outcome) (the partial index recon_items_open finds them)."""
    rows = await conn.fetch("SELECT r.channel, i.outcome, count(*) AS n FROM recon_items i"
                            " JOIN recon_runs r ON r.id = i.run_id WHERE i.state = 'open' GROUP BY 1, 2")
    return {(r["channel"], r["outcome"]): int(r["n"]) for r in rows}


async def item_counts(conn: Conn, run_id: str) -> dict[str, dict[str, int]]:
    rows = await conn.fetch(
        "SELECT outcome, state, count(*) AS n FROM recon_items WHERE run_id = $1 GROUP BY 1, 2", run_id)
    out: dict[str, dict[str, int]] = {}
    for r in rows:
        out.setdefault(r["outcome"], {})[r["state"]] = int(r["n"])
    return out


# ---------------------------------------------------------------- differences resolved by money (resolution.py)

@dataclass(frozen=True, slots=True)
class DifferenceRow:
    id: int
    run_id: str
    channel: str
    kind: str
    reference: str
    state: str
    outcome: str
    payment_id: str | None
    refund_id: str | None
    payout_id: str | None
    currency: str | None
    our_status: str
    their_status: str
    our_amount: int | None
    their_amount: int | None
    booked_txn_no: str | None  # the entry of ours the item is about (a reversal mirrors it)


async def difference(conn: Conn, item_id: int) -> DifferenceRow | None:
    r = await conn.fetchrow(
        "SELECT i.id, i.run_id, u.channel, i.kind, i.reference, i.state, i.outcome, i.payment_id, i.refund_id,"
        " i.payout_id, i.currency, i.our_status, i.their_status, i.our_amount, i.their_amount,"
        " CASE i.kind WHEN 'payment' THEN (SELECT p.txn_no FROM payments p WHERE p.id = i.payment_id)"
        "  WHEN 'refund' THEN coalesce((SELECT r.txn_no FROM refunds r WHERE r.id = i.refund_id),"
        "                              (SELECT x.refund_txn_no FROM exceptions x WHERE x.id = i.refund_id))"
        "  WHEN 'payout' THEN (SELECT o.final_txn_no FROM payouts o WHERE o.id = i.payout_id) END AS booked_txn_no"
        " FROM recon_items i JOIN recon_runs u ON u.id = i.run_id WHERE i.id = $1", item_id)
    if r is None:
        return None
    currency = r["currency"].strip() if r["currency"] else None
    return DifferenceRow(r["id"], r["run_id"], r["channel"], r["kind"], r["reference"], r["state"], r["outcome"],
                         r["payment_id"], r["refund_id"], r["payout_id"], currency, r["our_status"], r["their_status"],
                         r["our_amount"], r["their_amount"], r["booked_txn_no"])


async def start_resolving(conn: Conn, item_id: int, resolution: str, note: str, now: datetime) -> bool:
    """open -> resolving (a proposal will close it); False when the item is not open."""
    moved = await conn.fetchval(
        "UPDATE recon_items SET state = 'resolving', resolution = $2, note = $3, updated_at = $4"
        " WHERE id = $1 AND state = 'open' RETURNING id", item_id, resolution, note, now)
    return moved is not None


async def close_difference(conn: Conn, item_id: int, resolution: str, operator: str, note: str,
                           now: datetime) -> bool:
    """open -> resolved at once (nothing to book); False when the item is not open: never closed twice."""
    moved = await conn.fetchval(
        "UPDATE recon_items SET state = 'resolved', resolution = $2, resolved_by = $3, note = $4, resolved_at = $5,"
        " updated_at = $5 WHERE id = $1 AND state = 'open' RETURNING id", item_id, resolution, operator, note, now)
    return moved is not None


async def unresolved_differences(conn: Conn) -> tuple[int, datetime | None]:
    """Differences not closed yet (open or resolving), and when the run that found the oldest started."""
    r = await conn.fetchrow("SELECT count(*) AS n, min(u.started_at) AS oldest FROM recon_items i"
                            " JOIN recon_runs u ON u.id = i.run_id WHERE i.state IN ('open', 'resolving')")
    return int(r["n"]), r["oldest"]
