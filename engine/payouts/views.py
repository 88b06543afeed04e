"""Payout records -> the wire Struct: the one place that decides how a payout looks (never a full number)."""

from __future__ import annotations

from engine.api import payout_wire as pw
from engine.payouts.destination import Destination
from engine.payouts.store import PayoutRecord

# Internal states the merchant need not tell apart: once we may have asked the channel, it is processing.
_PUBLIC_STATUS = {"pending": "pending", "sending": "processing", "processing": "processing",
                  "succeeded": "succeeded", "failed": "failed"}


def payout_view(p: PayoutRecord) -> pw.Payout:
    masked = Destination(p.dest_kind, p.dest_number, p.dest_holder, p.dest_bank_code).masked
    return pw.Payout(
        id=p.id, merchant_payout_no=p.merchant_payout_no, amount=p.amount, currency=p.currency,
        source=p.source,  # type: ignore[arg-type]
        customer_id=p.customer_id, channel=p.channel,
        destination=pw.Destination(p.dest_kind, masked, p.dest_holder, p.dest_bank_code),
        status=_PUBLIC_STATUS[p.status],  # type: ignore[arg-type]
        txn_no=p.out_payout_no, channel_payout_no=p.channel_payout_no, failure_code=p.failure_code,
        failure_message=p.failure_message, description=p.description, created_at=p.created_at,
        updated_at=p.updated_at, finished_at=p.finished_at, hold_reason=p.hold_reason)
