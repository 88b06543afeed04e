"""Desk records to wire types."""

from __future__ import annotations

from engine.desk.codes import AdjustmentCode
from engine.desk.store import ProposalRecord
from engine.desk.wire import AdjustmentCodeView, CodeLeg, Proposal


def proposal_view(p: ProposalRecord) -> Proposal:
    return Proposal(p.id, p.kind, p.status, p.code, p.amount, p.currency, dict(p.accounts), p.original_txn_no,
                    p.reason, p.evidence, p.proposed_by, p.proposed_at, p.expires_at, p.decided_by, p.decided_at,
                    p.decision_note, p.txn_no, p.recon_item_id)


def code_view(c: AdjustmentCode) -> AdjustmentCodeView:
    return AdjustmentCodeView(c.code, c.rule.description, [CodeLeg(t.role, t.side.value) for t in c.rule.legs],
                              sorted(c.named_roles), sorted(c.platform_roles))
