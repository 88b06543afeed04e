"""The auto_refund job: give back money a channel collected for a payment we had already closed.

Idempotent at the channel on our out_refund_no, so retries after a timeout cannot refund twice; the
REFUND_CHANNEL entry is booked in the transaction that moves the exception's refund from requested
to succeeded (compare-and-set), so it is booked once.
"""

from __future__ import annotations

import logging
from datetime import datetime

from accounts.rules import build_entry
from accounts.store import find_account
from channels.errors import ChannelError, ChannelTimeout, ChannelUnavailable
from channels.protocol import RefundRequest, RefundStatus
from engine.gateway.context import Gateway
from engine.gateway.jobs import Done, Failed, JobResult, Retry, backoff_s
from engine.gateway.store import ClaimedJob, get_exception, payment_facts, set_refund_outcome

log = logging.getLogger(__name__)

AUTO_REFUND_REASON = "paid after the payment was closed"


async def run_auto_refund_job(gw: Gateway, job: ClaimedJob, now: datetime) -> JobResult:
    async with gw.pool.acquire() as conn:
        exc = await get_exception(conn, job.ref_id)
        payment = await payment_facts(conn, exc.payment_id) if exc and exc.payment_id else None
    if exc is None or payment is None:
        return Failed(f"exception {job.ref_id} or its payment is gone")
    if exc.refund_status != "requested":
        return Done(f"refund already {exc.refund_status}")
    assert exc.channel and exc.out_trade_no and exc.out_refund_no and exc.refund_txn_no
    assert exc.amount is not None and exc.currency is not None
    if exc.channel not in gw.channels:
        return Retry(60.0, f"channel {exc.channel} not configured in this process")
    request = RefundRequest(out_trade_no=exc.out_trade_no, out_refund_no=exc.out_refund_no, amount_minor=exc.amount,
                            payment_amount_minor=payment.amount, currency=exc.currency, reason=AUTO_REFUND_REASON)
    settings = gw.settings
    retry_s = backoff_s(job.attempts, settings.gateway_backoff_base_ms, settings.gateway_backoff_max_ms)
    try:
        result = await gw.call(exc.channel, "refund", lambda ch: ch.refund(request))
    except (ChannelTimeout, ChannelUnavailable) as error:
        return Retry(retry_s, str(error))
    except ChannelError as error:
        async with gw.pool.acquire() as conn:
            await set_refund_outcome(conn, exc.id, "failed", None, f"refund refused: {error}", now)
        # An operator re-routes it: POST /admin/exceptions/{id}/reroute, payengine refunds reroute (engine/reroutes/).
        log.error("auto-refund refused by the channel; operator needed", extra={"exception_id": exc.id})
        return Done("refund refused")
    if result.status is RefundStatus.PROCESSING:
        return Retry(retry_s, "refund processing at the channel")
    if result.status is RefundStatus.FAILED:
        async with gw.pool.acquire() as conn:
            await set_refund_outcome(conn, exc.id, "failed", result.channel_refund_id, "channel refund failed", now)
        log.error("auto-refund failed at the channel; operator needed", extra={"exception_id": exc.id})
        return Done("refund failed")
    platform = await gw.platform_accounts(exc.currency)
    async with gw.booker.transaction() as tx:
        if await set_refund_outcome(tx.conn, exc.id, "succeeded", result.channel_refund_id, None, now):
            pending = await find_account(tx.conn, payment.merchant_id, "merchant_pending", exc.currency)
            assert pending is not None
            await tx.post(build_entry(
                "REFUND_CHANNEL", exc.refund_txn_no, now.date(), exc.currency,
                {"merchant_pending": pending.id, "fee_income": platform["fee_income"],
                 "channel_receivable": platform["channel_receivable"]},
                {"amount": exc.amount, "fee": 0}, ref=exc.id))
    log.info("auto-refund succeeded", extra={"exception_id": exc.id, "channel": exc.channel})
    return Done("refunded")
