"""Settlement records as the admin API and the CLI show them."""

from __future__ import annotations

import msgspec

from engine.settlement import advice_store, store, wire


def batch_view(batch: store.Batch) -> wire.BatchView:
    return msgspec.convert(batch, wire.BatchView, from_attributes=True)


def remittance(batch: store.Batch, lines: list[advice_store.RemittanceLine], limit: int) -> wire.Remittance:
    """One page of ``limit`` lines asked for; ``lines`` may hold one more, which says another page follows."""
    page = lines[:limit]
    return wire.Remittance(batch_view(batch), [wire.RemittanceLine(
        kind=line.kind, id=line.id, payment_id=line.payment_id, merchant_order_no=line.merchant_order_no,
        gross=line.gross, fee=line.fee, refunded=line.refunded, refund_fee=line.refund_fee, adjusted=line.adjusted,
        net=line.net) for line in page], page[-1].id if len(lines) > limit else None)


def held_list(held: list[advice_store.HeldPayment], limit: int) -> wire.HeldList:
    """``held`` may hold one more than ``limit``, which says more are held."""
    return wire.HeldList([wire.HeldPayment(
        merchant_id=h.merchant_id, payment_id=h.payment_id, merchant_order_no=h.merchant_order_no,
        currency=h.currency, amount=h.amount, fee=h.fee, net=h.net, channel=h.channel, booked_on=h.booked_on,
        reason=h.reason, recon_item_id=h.recon_item_id, recon_run_id=h.recon_run_id,
        outcome=h.outcome, state=h.state, our_amount=h.our_amount, their_amount=h.their_amount)
        for h in held[:limit]], len(held) > limit)
