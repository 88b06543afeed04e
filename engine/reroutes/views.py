"""Re-route records -> wire Structs."""

from __future__ import annotations

from engine.payments.store import RefundRecord
from engine.payments.views import refund_view
from engine.reroutes.store import AutoRefundFacts, RefundFacts
from engine.reroutes.wire import AdminRefund, AutoRefund


def admin_refund_view(f: RefundFacts) -> AdminRefund:
    refund = refund_view(RefundRecord(f.id, f.payment_id, f.merchant_refund_no, f.amount, f.status, f.reason,
                                      f.txn_no, f.created_at, f.rerouted_to, f.payout_id))
    return AdminRefund(refund, f.merchant_id, f.merchant_order_no, f.currency, f.customer_id,
                       f.wallet_account_id is not None, f.failure_code, f.updated_at, f.resolved_by,
                       f.resolution_note, f.resolved_at)


def auto_refund_view(f: AutoRefundFacts) -> AutoRefund:
    return AutoRefund(f.id, f.merchant_id, f.payment_id, f.merchant_order_no, f.amount, f.currency, f.refund_status,
                      f.customer_id, f.wallet_account_id is not None, f.rerouted_to, f.payout_id, f.resolved_by,
                      f.resolution, f.detail, f.updated_at)
