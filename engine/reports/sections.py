"""The day report's open-exception sections: each comes from a section provider, and the report shows every
provider of EXCEPTION_SECTIONS in order.

The extension point: a provider is any ``async (conn, now) -> ExceptionSection`` (SectionProvider). A new kind of
exception (e.g. the exception desk's open adjustment proposals) joins the report by adding its provider to
EXCEPTION_SECTIONS (or by passing its own tuple to flow.build_day_report); nothing else changes: the JSON, the
page and the tests render any section the same way. A provider lists at most ITEMS_MAX rows, the oldest first,
and counts them all.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from accounts.store import Conn
from engine.desk.states import ProposalKind, ProposalStatus
from engine.desk.store import list_proposals
from engine.payouts.store import held_counts, held_payouts
from engine.reports import store
from engine.reports.wire import ExceptionSection
from engine.reroutes.store import awaiting_operator, failed_auto_refunds, failed_refunds

ITEMS_MAX = 100

SectionProvider = Callable[[Conn, datetime], Awaitable[ExceptionSection]]


async def open_recon_differences(conn: Conn, now: datetime) -> ExceptionSection:
    count, rows = await store.open_recon_differences(conn, ITEMS_MAX)
    columns = ["id", "channel", "statement_date", "outcome", "kind", "reference", "payment_id", "refund_id",
               "merchant_id", "our_amount", "their_amount", "action", "state"]
    return ExceptionSection("open_recon_differences", "Open reconciliation differences", count, columns, rows)


async def held_payouts_section(conn: Conn, now: datetime) -> ExceptionSection:
    count = sum((await held_counts(conn)).values())
    rows = [{"id": p.id, "merchant_id": p.merchant_id, "amount": p.amount, "currency": p.currency,
             "channel": p.channel, "status": p.status, "hold_reason": p.hold_reason,
             "waiting_s": round((now - p.updated_at).total_seconds())}
            for p, _ in await held_payouts(conn, None, None, ITEMS_MAX)]
    columns = ["id", "merchant_id", "amount", "currency", "channel", "status", "hold_reason", "waiting_s"]
    return ExceptionSection("held_payouts", "Payouts held for an operator", count, columns, rows)


async def failed_refunds_section(conn: Conn, now: datetime) -> ExceptionSection:
    count, _ = await awaiting_operator(conn)
    rows = [{"kind": "refund", "id": f.id, "merchant_id": f.merchant_id, "payment_id": f.payment_id,
             "amount": f.amount, "currency": f.currency, "failure": f.failure_code,
             "wallet_available": f.wallet_account_id is not None,
             "waiting_s": round((now - f.updated_at).total_seconds())}
            for f in await failed_refunds(conn, None, None, ITEMS_MAX)]
    rows += [{"kind": "auto_refund", "id": a.id, "merchant_id": a.merchant_id, "payment_id": a.payment_id,
              "amount": a.amount, "currency": a.currency, "failure": a.detail[-200:],
              "wallet_available": a.wallet_account_id is not None,
              "waiting_s": round((now - a.updated_at).total_seconds())}
             for a in await failed_auto_refunds(conn, ITEMS_MAX - len(rows))]
    columns = ["kind", "id", "merchant_id", "payment_id", "amount", "currency", "failure", "wallet_available",
               "waiting_s"]
    return ExceptionSection("failed_refunds", "Refunds the channel refused, awaiting an operator", count, columns,
                            rows)


async def open_proposals_section(conn: Conn, now: datetime) -> ExceptionSection:
    """The desk's adjustments and reversals awaiting a second operator (expired ones are not open)."""
    waiting = [p for kind in ProposalKind
               for p in (await list_proposals(conn, kind, ProposalStatus.PROPOSED, ITEMS_MAX, None))[0]
               if p.expires_at > now]
    waiting.sort(key=lambda p: p.proposed_at)
    rows = [{"kind": str(p.kind), "id": p.id, "code": p.code, "amount": p.amount, "currency": p.currency,
             "proposed_by": p.proposed_by, "recon_item_id": p.recon_item_id, "reason": p.reason,
             "waiting_s": round((now - p.proposed_at).total_seconds())} for p in waiting]
    columns = ["kind", "id", "code", "amount", "currency", "proposed_by", "recon_item_id", "reason", "waiting_s"]
    return ExceptionSection("open_proposals", "Adjustments and reversals awaiting a second operator", len(rows),
                            columns, rows[:ITEMS_MAX])


# Add a provider here to add a section (see the module docstring).
EXCEPTION_SECTIONS: tuple[SectionProvider, ...] = (
    open_recon_differences,
    held_payouts_section,
    failed_refunds_section,
    open_proposals_section,
)
