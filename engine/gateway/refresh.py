"""Ask the channel now where one payment stands, and apply the answer (GET /v1/payments/{id}?sync=true).

For the API: `await refresh_payment(app[GATEWAY], payment_id)` before reading the payment. A success is
applied exactly as a notify would be; anything else leaves the payment to the janitor and expiry.
"""

from __future__ import annotations

from datetime import UTC, datetime

from channels.errors import ChannelError
from channels.protocol import ChannelStatus
from engine.gateway.context import Gateway
from engine.gateway.outcomes import ChannelPaid, Verdict, apply_paid
from engine.gateway.store import orders_of, payment_facts
from engine.payments.states import UNPAID


async def refresh_payment(gw: Gateway, payment_id: str) -> Verdict | None:
    """Query the channel order of an unpaid channel payment; returns the verdict when it was paid.

    Never raises for channel trouble (timeouts, outages): the stored status stays the answer."""
    async with gw.pool.acquire() as conn:
        payment = await payment_facts(conn, payment_id)
        orders = await orders_of(conn, payment_id) if payment and payment.status in UNPAID else {}
    for order in orders.values():
        if order.status != "created" or order.channel not in gw.channels:
            continue
        out_trade_no = order.out_trade_no
        try:
            status = await gw.query(order.channel, out_trade_no)
        except ChannelError:
            return None
        if status.status in (ChannelStatus.SUCCEEDED, ChannelStatus.REFUNDED) and status.channel_txn_id:
            return await apply_paid(gw, ChannelPaid(order.channel, out_trade_no, status.amount_minor, status.currency,
                                                    status.channel_txn_id, status.paid_at, "query"),
                                    datetime.now(UTC))
    return None
