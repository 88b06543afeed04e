"""Reconciliation differences closed by what happens to their money, never by a flag alone.

    adjust    propose the adjustment the strategy suggests (strategy.suggested_adjustment: a short written off to
              the loss account, a long booked to suspense, an amount difference settled at the channel's amount)
    reverse   propose reversing our entry of the transaction (the payment's, refund's or payout's)
    explain   no money moves; the operator's note says why; closes at once
    superseded  a later run over a corrected or supplementary statement of the same date replaced this one:
              ``close_superseded`` (for the re-run, which builds the run itself)

``adjust`` and ``reverse`` move the item from ``open`` to ``resolving`` in the transaction that records the
desk proposal (linked to the item by the proposal's ``recon_item_id``); the desk closes the item in the
transaction that books the approved proposal, and reopens it when the proposal is rejected or expires. Every
move is a compare-and-set from ``open``, so a difference is never closed twice, and every one writes an audit row.
"""

from __future__ import annotations

from datetime import datetime

from accounts.store import Conn
from engine.audit.store import record as audit
from engine.desk import flow as desk
from engine.desk.store import ProposalRecord
from engine.desk.views import proposal_view
from engine.desk.wire import ProposeAdjustment, ProposeReversal
from engine.errors import NotFound, Unprocessable
from engine.recon import store, wire
from engine.recon.flow import ItemNotOpen
from engine.recon.store import DifferenceRow
from engine.recon.strategy import suggested_adjustment
from engine.services import Services

SUBJECT = "recon_item"


class NothingToBook(Unprocessable):
    """The action moves no money for this difference: 'adjust' where both sides moved the same amount, 'reverse'
    where we booked nothing. The operator explains it instead."""

    code = "nothing_to_book"
    param = "action"

    def __init__(self, item_id: int, action: str) -> None:
        super().__init__(f"reconciliation item {item_id} has nothing to {action}; explain it with a note instead")


async def resolve(ctx: Services, item_id: int, req: wire.ItemResolve, now: datetime) -> wire.ItemResolved:
    """Raises NotFound, ItemNotOpen (409: closed, or waiting for its proposal), NothingToBook (422), and what
    proposing the adjustment or reversal raises; then nothing was written."""
    async with ctx.pool.acquire() as conn:
        item = await store.difference(conn, item_id)
    if item is None:
        raise NotFound("reconciliation item", str(item_id))
    if item.state != "open":
        raise ItemNotOpen(str(item_id))
    if req.action == "explain":
        async with ctx.pool.acquire() as conn, conn.transaction():
            if not await store.close_difference(conn, item_id, "explain", req.operator, req.note, now):
                raise ItemNotOpen(str(item_id))
            await audit(conn, req.operator, "resolve", SUBJECT, str(item_id), {"action": "explain", "note": req.note})
        return wire.ItemResolved(item_id, "resolved", "explain", None)
    proposal = await _proposal(ctx, item, req, now)
    async with ctx.pool.acquire() as conn, conn.transaction():
        if not await store.start_resolving(conn, item_id, req.action, req.note, now):
            raise ItemNotOpen(str(item_id))
        await desk.record_proposal(conn, proposal)
        await audit(conn, req.operator, "resolve", SUBJECT, str(item_id),
                    {"action": req.action, "note": req.note, "proposal_id": proposal.id})
    return wire.ItemResolved(item_id, "resolving", req.action, proposal_view(proposal))


async def _proposal(ctx: Services, item: DifferenceRow, req: wire.ItemResolve, now: datetime) -> ProposalRecord:
    evidence = req.evidence or f"reconciliation {item.run_id} item {item.id}: {item.kind} {item.reference}"
    if req.action == "reverse":
        if item.booked_txn_no is None:
            raise NothingToBook(item.id, "reverse")
        return await desk.prepare_reversal(ctx, ProposeReversal(item.booked_txn_no, req.note, req.operator,
                                                                evidence=evidence), now, item.id)
    suggestion = suggested_adjustment(item.kind, item.our_status, item.their_status, item.our_amount,
                                      item.their_amount)
    if suggestion is None or item.currency is None:
        raise NothingToBook(item.id, "adjust")
    code, amount = suggestion
    return await desk.prepare_adjustment(ctx, ProposeAdjustment(code, amount, item.currency, req.note, req.operator,
                                                                evidence=evidence), now, item.id)


async def close_superseded(conn: Conn, item_id: int, superseding_run_id: str, operator: str, now: datetime) -> bool:
    """A later run over a corrected or supplementary statement replaced the one that found this difference:
    close it as 'superseded' (in the caller's transaction, with its audit row). False when it is not open (closed
    already, or waiting for a proposal: that proposal is decided first)."""
    note = f"superseded by reconciliation run {superseding_run_id}"
    if not await store.close_difference(conn, item_id, "superseded", operator, note, now):
        return False
    await audit(conn, operator, "resolve", SUBJECT, str(item_id), {"action": "superseded",
                                                                   "run_id": superseding_run_id})
    return True
