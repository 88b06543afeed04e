"""The channel_refund job: a merchant's refund of a channel payment, carried out at the channel.

The API reserves the amount on the payment and writes the refund `pending` with this job. Here the
channel is asked (idempotent on our out_refund_no, the refund's txn_no, so a retry after a timeout
cannot refund twice); its success books REFUND_CHANNEL (net from the merchant, the fee share back from
fee income, the gross off the channel receivable) in the transaction that moves the refund to
succeeded; a refusal moves it to failed and gives the reservation back. Each writes its outbox event.
"""

from __future__ import annotations

import logging
from datetime import datetime

import msgspec

from accounts.rules import build_entry
from channels.errors import ChannelError, ChannelTimeout, ChannelUnavailable
from channels.protocol import RefundRequest, RefundResult, RefundStatus
from engine.gateway.context import Gateway
from engine.gateway.jobs import Done, Failed, JobResult, Retry, backoff_s
from engine.gateway.store import ClaimedJob, RefundWork, finish_refund, refund_work
from engine.merchants.pricing import fee_txn_code
from engine.merchants.store import refund_source_accounts
from engine.payments.states import RefundEvent
from engine.payments.store import get_refund
from engine.payments.views import refund_view
from engine.webhooks.store import insert_outbox

log = logging.getLogger(__name__)

CHANNEL_REFUND_JOB = "channel_refund"


async def run_channel_refund_job(gw: Gateway, job: ClaimedJob, now: datetime) -> JobResult:
    async with gw.pool.acquire() as conn:
        work = await refund_work(conn, job.ref_id)
    if work is None:
        return Failed(f"no refund {job.ref_id}")
    if work.status != "pending":
        return Done(f"refund already {work.status}")
    if work.channel is None or work.out_trade_no is None:
        return await _finish(gw, work, None, "no_paid_channel_order", now)
    if work.channel not in gw.channels:
        return Retry(60.0, f"channel {work.channel} not configured in this process")
    request = RefundRequest(out_trade_no=work.out_trade_no, out_refund_no=work.txn_no, amount_minor=work.amount,
                            payment_amount_minor=work.payment_amount, currency=work.currency,
                            reason=work.reason or "")
    settings = gw.settings
    retry_s = backoff_s(job.attempts, settings.gateway_backoff_base_ms, settings.gateway_backoff_max_ms)
    try:
        result = await gw.call(work.channel, "refund", lambda ch: ch.refund(request))
    except (ChannelTimeout, ChannelUnavailable) as error:
        return Retry(retry_s, str(error))
    except ChannelError as error:
        # Final: an operator re-routes it (payengine refunds failed|reroute, engine/reroutes/).
        log.warning("channel refused a refund; operator needed", extra={"refund_id": work.id, "error": str(error)})
        return await _finish(gw, work, None, f"channel_refused: {error}"[:200], now)
    if result.status is RefundStatus.PROCESSING:
        return Retry(retry_s, "refund processing at the channel")
    return await _finish(gw, work, result, None if result.status is RefundStatus.SUCCEEDED else "channel_failed", now)


async def _finish(gw: Gateway, work: RefundWork, result: RefundResult | None, failure: str | None,
                  now: datetime) -> JobResult:
    succeeded = failure is None and result is not None
    platform = await gw.platform_accounts(work.currency) if succeeded else {}
    async with gw.booker.transaction() as tx:
        moved = await finish_refund(
            tx.conn, work.id, "succeeded" if succeeded else "failed", result.channel_refund_id if result else None,
            failure, (RefundEvent.CHANNEL_REFUND_SUCCEEDED if succeeded else RefundEvent.CHANNEL_REFUND_FAILED).value,
            now)
        if not moved:
            return Done("refund moved on meanwhile")
        if succeeded:
            accounts = {**await refund_source_accounts(tx.conn, work.merchant_id, work.currency, work.fee_collection),
                        "fee_income": platform["fee_income"], "channel_receivable": platform["channel_receivable"]}
            await tx.post(build_entry(
                fee_txn_code("REFUND_CHANNEL", work.fee_collection), work.txn_no, now.date(), work.currency,
                accounts,
                {"amount": work.amount, "fee": work.fee_refunded}, ref=work.id))
        record = await get_refund(tx.conn, work.merchant_id, work.id)
        assert record is not None
        await insert_outbox(tx.conn, work.merchant_id, "refund.succeeded" if succeeded else "refund.failed", work.id,
                            msgspec.json.encode(refund_view(record)), now)
    log.info("channel refund finished", extra={"refund_id": work.id, "succeeded": succeeded, "failure": failure})
    return Done("refunded" if succeeded else f"refund failed: {failure}")
