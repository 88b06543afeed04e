"""Payout records -> the wire Structs: the one place that decides how a payout looks, to its merchant and to
operators (never a full card or account number: destinations masked, free text with long digit runs masked).
Amounts are values, not text, and are shown whole: a held payout's reported amount is what operators decide on."""

from __future__ import annotations

from typing import Any

import msgspec

from engine.payouts import wire as pw
from engine.payouts.destination import Destination, mask_digits
from engine.payouts.store import PayoutInternals, PayoutRecord

# Internal states the merchant need not tell apart: once we may have asked the channel, it is processing.
_PUBLIC_STATUS: dict[str, pw.PayoutStatusName] = {
    "pending": "pending", "sending": "processing", "processing": "processing", "succeeded": "succeeded",
    "failed": "failed"}


def payout_view(p: PayoutRecord) -> pw.Payout:
    masked = Destination(p.dest_kind, p.dest_number, p.dest_holder, p.dest_bank_code).masked
    return pw.Payout(
        id=p.id, merchant_payout_no=p.merchant_payout_no, amount=p.amount, currency=p.currency,
        source=p.source,
        customer_id=p.customer_id, channel=p.channel,
        destination=pw.Destination(p.dest_kind, masked, p.dest_holder, p.dest_bank_code),
        status=_PUBLIC_STATUS[p.status],
        txn_no=p.out_payout_no, channel_payout_no=p.channel_payout_no, failure_code=p.failure_code,
        failure_message=p.failure_message, description=p.description, created_at=p.created_at,
        updated_at=p.updated_at, finished_at=p.finished_at, hold_reason=p.hold_reason)


def _masked(text: str | None) -> str | None:
    return None if text is None else mask_digits(text)


def held_payout_view(p: PayoutRecord, hold_note: str | None) -> pw.HeldPayout:
    return pw.HeldPayout(
        id=p.id, merchant_id=p.merchant_id, merchant_payout_no=p.merchant_payout_no, amount=p.amount,
        currency=p.currency, source=p.source, customer_id=p.customer_id, channel=p.channel, status=p.status,
        hold_reason=p.hold_reason, hold_note=_masked(hold_note), reported_amount=p.reported_amount_minor,
        reported_currency=p.reported_currency, created_at=p.created_at, updated_at=p.updated_at)


def admin_payout_view(p: PayoutRecord, internals: PayoutInternals) -> pw.AdminPayout:
    risk: dict[str, Any] | None = None if internals.risk is None else msgspec.json.decode(internals.risk)
    return pw.AdminPayout(
        payout=payout_view(p), merchant_id=p.merchant_id, internal_status=p.status, channel_chosen=p.channel_chosen,
        sends=p.sends, attempts=p.attempts, first_sent_at=p.first_sent_at, last_sent_at=p.last_sent_at,
        next_attempt_at=internals.next_attempt_at, locked_until=internals.locked_until,
        last_error=_masked(internals.last_error), reported_amount=p.reported_amount_minor,
        reported_currency=p.reported_currency, risk=risk,
        transitions=[pw.TransitionView(t.from_status, t.to_status, t.event, _masked(t.reason), t.actor, t.at)
                     for t in internals.transitions])
