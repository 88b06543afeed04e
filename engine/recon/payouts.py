"""Our side of a channel statement for payouts (SQL), in reconciliation's terms (`OurTxn`).

A payout is named at the channel by its out_payout_no. Our side of a statement date is the payouts of that
channel whose final entry (PAYOUT_SETTLE) is dated that accounting date and that no other date's statement has
shown. For an OurTxn of kind 'payout', `payment_id` carries the payout's id (the matching key).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from accounts.store import Conn
from engine.recon.matching import OurTxn

# Ours, in the strategy table's words: anything not final may still change, as a pending payment may.
OUR_PAYOUT_STATUS: dict[str, str] = {"pending": "pending", "sending": "pending", "processing": "pending",
                                     "succeeded": "succeeded", "failed": "failed"}


async def find_payouts(conn: Conn, references: Sequence[str]) -> dict[tuple[str, str], OurTxn]:
    """Payouts named by the statement, keyed ('payout', out_payout_no)."""
    rows = await conn.fetch(
        "SELECT id, out_payout_no, merchant_id, status, amount, currency FROM payouts"
        " WHERE out_payout_no = ANY($1::text[])", list(references))
    found: dict[tuple[str, str], OurTxn] = {}
    for r in rows:
        ref = r["out_payout_no"].strip()
        found[("payout", ref)] = OurTxn("payout", ref, r["id"], None, r["merchant_id"],
                                        OUR_PAYOUT_STATUS[r["status"]], r["amount"], r["currency"].strip())
    return found


async def expected_payouts(conn: Conn, channel: str, day: date) -> list[OurTxn]:
    """Our succeeded payouts at `channel` booked on accounting date `day`, not shown by another date's file."""
    rows = await conn.fetch(
        "SELECT p.id, p.out_payout_no, p.merchant_id, p.amount, p.currency FROM payouts p"
        " JOIN journal_entries e ON e.txn_no = p.final_txn_no"
        " WHERE p.channel = $1 AND p.status = 'succeeded' AND e.accounting_date = $2"
        "   AND NOT EXISTS (SELECT 1 FROM recon_items i JOIN recon_runs u ON u.id = i.run_id"
        "                   WHERE i.payout_id = p.id AND i.kind = 'payout' AND i.their_status <> 'missing'"
        "                     AND u.statement_date <> $2 AND u.superseded_by IS NULL)",
        channel, day)
    return [OurTxn("payout", r["out_payout_no"].strip(), r["id"], None, r["merchant_id"], "succeeded", r["amount"],
                   r["currency"].strip()) for r in rows]
