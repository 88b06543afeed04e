"""The close_order job: a payment closed here (merchant or expiry) closes its orders at the channels.

The API's close endpoint and the janitor's expiry both enqueue it in the transaction that closes the
payment. A channel that refuses because the order is already paid has the money: we query it and
apply the success, which for a closed payment books it and opens an auto-refund. Nothing is dropped.
"""

from __future__ import annotations

import logging
from datetime import datetime

from channels.errors import ChannelError, ChannelRejected, OrderNotFound
from channels.protocol import ChannelStatus
from engine.gateway.context import Gateway
from engine.gateway.jobs import Done, JobResult, Retry, backoff_s
from engine.gateway.outcomes import ChannelPaid, apply_paid
from engine.gateway.store import OPEN_ORDER_STATUSES, ChannelOrder, ClaimedJob, orders_of, set_order_status

log = logging.getLogger(__name__)



async def run_close_job(gw: Gateway, job: ClaimedJob, now: datetime) -> JobResult:
    async with gw.pool.acquire() as conn:
        orders = await orders_of(conn, job.ref_id)
    failures: list[str] = []
    for order in orders.values():
        if order.status not in OPEN_ORDER_STATUSES:
            continue
        if order.channel not in gw.channels:
            log.warning("cannot close an order at a channel no longer configured", extra={"channel": order.channel})
            continue
        try:
            await _close_one(gw, order, now)
        except ChannelError as error:
            failures.append(str(error))
    if failures:
        settings = gw.settings
        return Retry(backoff_s(job.attempts, settings.gateway_backoff_base_ms, settings.gateway_backoff_max_ms),
                     "; ".join(failures))
    return Done(f"closed {len(orders)} channel order(s)")


async def _close_one(gw: Gateway, order: ChannelOrder, now: datetime) -> None:
    name, out_trade_no = order.channel, order.out_trade_no
    try:
        await gw.call(name, "close", lambda ch: ch.close(out_trade_no))
    except OrderNotFound:
        pass  # never created there: nothing to close
    except ChannelRejected:
        status = await gw.query(name, out_trade_no)
        if status.status in (ChannelStatus.SUCCEEDED, ChannelStatus.REFUNDED) and status.channel_txn_id:
            await apply_paid(gw, ChannelPaid(name, out_trade_no, status.amount_minor, status.currency,
                                             status.channel_txn_id, status.paid_at, "close"), now)
            return
        if status.status is ChannelStatus.PENDING:
            raise
    async with gw.pool.acquire() as conn:
        await set_order_status(conn, name, out_trade_no, "closed", now)
