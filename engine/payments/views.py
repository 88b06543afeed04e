"""Store records -> wire Structs: the one place the API decides how an object looks."""

from __future__ import annotations

from engine.payments import wire
from engine.payments.store import PaymentRecord, RefundRecord


def payment_view(p: PaymentRecord) -> wire.Payment:
    voucher = None
    if p.voucher is not None:
        v = p.voucher
        voucher = wire.Voucher(v.id, v.status, v.channel, v.pay_url, v.qr_code, v.expires_at)
    return wire.Payment(
        id=p.id, merchant_order_no=p.merchant_order_no, amount=p.amount, currency=p.currency,
        method=p.method, customer_id=p.customer_id, status=p.status,
        amount_refunded=p.amount_refunded, fee=p.fee, txn_no=p.txn_no, voucher=voucher, expires_at=p.expires_at,
        description=p.description, metadata=p.metadata, created_at=p.created_at, updated_at=p.updated_at,
    )


def refund_view(r: RefundRecord) -> wire.Refund:
    return wire.Refund(r.id, r.payment_id, r.merchant_refund_no, r.amount, r.status,
                       r.reason, r.txn_no, r.created_at, rerouted_to=r.rerouted_to, payout_id=r.payout_id)
