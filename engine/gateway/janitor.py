"""The janitor: finds what callbacks and workers missed, on a schedule from settings.

Each tick (bounded batches): jobs of a dead worker go back to the queue; orders awaiting payment whose
next query is due are asked at the channel, and the answer is applied as if notified; channel payments
past their deadline are closed here (after one last query, so a payer who paid in time is not refunded)
and their channel orders closed by the close_order job.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from channels.errors import ChannelError, OrderNotFound
from channels.protocol import ChannelStatus
from engine.controls.usage_release import release_now
from engine.gateway.channel_refunds import CHANNEL_REFUND_JOB
from engine.gateway.context import Gateway
from engine.gateway.outcomes import AUTO_REFUND_JOB, ChannelPaid, apply_paid
from engine.gateway.store import (
    ChannelOrder,
    claim_due_queries,
    expired_unpaid,
    orders_of,
    payment_facts,
    requeue_stale_jobs,
    schedule_query,
    set_order_status,
)
from engine.gateway.vouchers import CREATE_VOUCHER_JOB
from engine.payments.closing import CLOSE_ORDER_JOB, CLOSED_AT_CHANNEL, EXPIRED, close_payment, close_unpaid
from engine.payments.states import UNPAID
from engine.payments.store import get_payment

log = logging.getLogger(__name__)

GATEWAY_JOB_KINDS = (CREATE_VOUCHER_JOB, CLOSE_ORDER_JOB, AUTO_REFUND_JOB, CHANNEL_REFUND_JOB)


class Janitor:
    def __init__(self, gw: Gateway) -> None:
        self.gw = gw

    async def run(self) -> None:
        interval_s = self.gw.settings.janitor_interval_ms / 1000
        while True:
            try:
                await self.tick(datetime.now(UTC))
            except Exception:  # the loop must survive a database or channel blip
                log.warning("janitor tick failed; will retry", exc_info=True)
            await asyncio.sleep(interval_s)

    async def tick(self, now: datetime) -> None:
        gw = self.gw
        batch = gw.settings.janitor_batch_max
        # A claimed query is pushed this far ahead, so a janitor in another process skips it meanwhile.
        lease_s = 2 * gw.settings.gateway_call_timeout_ms / 1000 + gw.settings.janitor_interval_ms / 1000
        async with gw.pool.acquire() as conn:
            requeued = await requeue_stale_jobs(conn, GATEWAY_JOB_KINDS)
            due = await claim_due_queries(conn, now, lease_s, batch)
        if requeued:
            log.warning("jobs of a stopped worker requeued", extra={"jobs": requeued})
        await asyncio.gather(*(self._query(order, now) for order in due))
        async with gw.pool.acquire() as conn:
            expired = await expired_unpaid(conn, now, batch)
        await asyncio.gather(*(self._expire(merchant_id, payment_id, now) for merchant_id, payment_id in expired))

    async def _query(self, order: ChannelOrder, now: datetime) -> None:
        gw = self.gw
        if order.channel not in gw.channels:
            return
        try:
            status = await gw.query(order.channel, order.out_trade_no)
        except OrderNotFound:
            async with gw.pool.acquire() as conn:
                await set_order_status(conn, order.channel, order.out_trade_no,
                                       "failed" if order.status != "created" else "closed", now, "not at channel")
            log.warning("channel does not know an order we hold", extra={"channel": order.channel,
                                                                         "out_trade_no": order.out_trade_no})
            return
        except ChannelError as error:  # try again once the claim's lease runs out
            log.info("janitor query failed", extra={"channel": order.channel, "error": str(error)})
            return
        if status.status in (ChannelStatus.SUCCEEDED, ChannelStatus.REFUNDED) and status.channel_txn_id:
            await apply_paid(gw, ChannelPaid(order.channel, order.out_trade_no, status.amount_minor, status.currency,
                                             status.channel_txn_id, status.paid_at, "query"), now)
        elif status.status in (ChannelStatus.CLOSED, ChannelStatus.FAILED):
            await self._closed_at_channel(order, now)
        elif order.status != "created":  # an order we moved on from exists after all: nobody may pay it
            try:
                await gw.call(order.channel, "close", lambda ch: ch.close(order.out_trade_no))
            except ChannelError as error:
                log.info("closing an abandoned order failed", extra={"channel": order.channel, "error": str(error)})
                return
            async with gw.pool.acquire() as conn:
                await set_order_status(conn, order.channel, order.out_trade_no, "closed", now, "abandoned")
        else:
            schedule = gw.settings.janitor_query_schedule_s
            next_at = now + timedelta(seconds=schedule[order.queries]) if order.queries < len(schedule) else None
            async with gw.pool.acquire() as conn:
                await schedule_query(conn, order.channel, order.out_trade_no, next_at)

    async def _closed_at_channel(self, order: ChannelOrder, now: datetime) -> None:
        """The channel closed it (its own expiry): close ours too if that order was the payment's voucher."""
        gw = self.gw
        closed = False
        async with gw.pool.acquire() as conn, conn.transaction():
            facts = await payment_facts(conn, order.payment_id, lock=True)
            await set_order_status(conn, order.channel, order.out_trade_no, "closed", now, "closed at channel")
            if facts is not None and facts.status in UNPAID and facts.channel == order.channel:
                payment = await get_payment(conn, facts.merchant_id, facts.id)
                assert payment is not None, "a payment locked in this transaction is there"
                closed = await close_unpaid(conn, payment, CLOSED_AT_CHANNEL, now) is not None
        if closed:
            await release_now(gw.pool, gw.release_usage, order.payment_id)

    async def _paid_at_channel(self, order: ChannelOrder, now: datetime) -> bool:
        """One last query before closing; True when the payer did pay (then applied as a success)."""
        out_trade_no = order.out_trade_no
        try:
            paid = await self.gw.query(order.channel, out_trade_no)
        except ChannelError:
            return False  # close anyway: a success that comes later is refunded, not lost
        if paid.status not in (ChannelStatus.SUCCEEDED, ChannelStatus.REFUNDED) or not paid.channel_txn_id:
            return False
        await apply_paid(self.gw, ChannelPaid(order.channel, out_trade_no, paid.amount_minor, paid.currency,
                                              paid.channel_txn_id, paid.paid_at, "query"), now)
        return True

    async def _expire(self, merchant_id: str, payment_id: str, now: datetime) -> None:
        gw = self.gw
        async with gw.pool.acquire() as conn:
            orders = await orders_of(conn, payment_id)
        for order in orders.values():
            if order.status == "created" and order.channel in gw.channels and await self._paid_at_channel(order, now):
                return
        if await close_payment(gw.pool, merchant_id, payment_id, EXPIRED, now, gw.release_usage, only_if_due=True):
            log.info("payment expired", extra={"payment_id": payment_id})
