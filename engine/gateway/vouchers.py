"""The create_voucher job: get the channel's voucher for a pending payment, or fail over, or give up.

One run makes one attempt at one channel. Our order number at every channel is the payment's txn_no,
so a retry at the same channel can only return the same channel order. A timeout leaves the order
*unknown*: the next run asks the channel (query) before creating again. A channel that refuses,
answers garbage or keeps failing is marked failed for this payment and the next run takes the next
channel in routing order; with none left the voucher fails and the merchant hears `voucher.failed`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from accounts.store import Conn
from channels.errors import (
    AmountMismatch,
    BadSignature,
    ChannelError,
    ChannelRejected,
    ChannelTimeout,
    ChannelUnavailable,
    MalformedResponse,
    OrderNotFound,
)
from channels.protocol import ChannelStatus, VoucherRequest, VoucherResult
from engine.controls.usage_release import release_now
from engine.gateway.context import Gateway
from engine.gateway.events import write_payment_event
from engine.gateway.jobs import Done, Failed, JobResult, Retry, backoff_s
from engine.gateway.metrics import VOUCHERS
from engine.gateway.outcomes import ChannelPaid, apply_paid
from engine.gateway.store import (
    ChannelOrder,
    ClaimedJob,
    NewException,
    PaymentFacts,
    begin_attempt,
    finish_job,
    mark_voucher_failed,
    mark_voucher_ready,
    payment_facts,
    record_exception,
    schedule_query,
    set_order_status,
    voucher_work,
)

log = logging.getLogger(__name__)

CREATE_VOUCHER_JOB = "create_voucher"
PAY_URL_CHARS_MAX = 2048
# A run that found every channel's breaker open waits at least this long before looking again.
BREAKER_WAIT_S = 0.5


@dataclass(frozen=True, slots=True)
class _GiveUp:
    payment: PaymentFacts
    code: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class _Go:
    payment: PaymentFacts
    order: ChannelOrder
    previous: ChannelOrder | None


async def run_voucher_job(gw: Gateway, job: ClaimedJob, now: datetime) -> JobResult:
    # One connection for reading and planning: every pool checkout costs a reset round trip on return.
    async with gw.pool.acquire() as conn:
        step = await _plan(gw, conn, job, now)
    if isinstance(step, _GiveUp):
        return await _give_up(gw, job, step.payment, step.code, now, step.detail)
    if isinstance(step, _Go):
        return await _attempt(gw, job, step.payment, step.order, step.previous, now)
    return step


async def _plan(gw: Gateway, conn: Conn, job: ClaimedJob, now: datetime) -> JobResult | _GiveUp | _Go:
    """Which channel to ask now (recorded before asking), or why not."""
    work = await voucher_work(conn, job.ref_id)
    if work is None:
        return Failed(f"no voucher {job.ref_id}")
    payment, orders = work
    if payment.status != "pending_voucher" or payment.voucher_status != "pending":
        return Done(f"payment is {payment.status}")
    if now >= payment.expires_at:
        return Done("payment expired; the janitor closes it")
    settings = gw.settings
    if payment.channel not in gw.channels:
        return _GiveUp(payment, "unknown_channel", f"channel {payment.channel!r} is not configured")
    if job.attempts > settings.gateway_job_attempts_max:
        return _GiveUp(payment, "attempts_exhausted")
    open_channels = [c for c in gw.channels if c not in orders or orders[c].status != "failed"]
    ranked = [c for c in gw.route(payment.currency, payment.amount, payment.channel) if c in open_channels]
    if not ranked:
        if open_channels:  # shut out only by open breakers: wait for one to half-open
            delay_s = max(BREAKER_WAIT_S, backoff_s(job.attempts, settings.gateway_backoff_base_ms,
                                                    settings.gateway_backoff_max_ms))
            return Retry(delay_s, "every usable channel's breaker is open")
        return _GiveUp(payment, "no_channel", f"tried {sorted(orders)}")
    name = ranked[0]
    if not gw.health.admit(name, time.monotonic()):
        return Retry(BREAKER_WAIT_S, f"{name} breaker busy probing")
    order = await begin_attempt(conn, name, payment.txn_no, payment.id, now)
    for left in orders.values():  # moving on from an unknown order: the janitor finds and closes it
        if left.status == "unknown" and left.channel != name:
            await schedule_query(conn, left.channel, left.out_trade_no, now)
    return _Go(payment, order, orders.get(name))


async def _attempt(gw: Gateway, job: ClaimedJob, payment: PaymentFacts, order: ChannelOrder,
                   previous: ChannelOrder | None, now: datetime) -> JobResult:
    name, out_trade_no = order.channel, order.out_trade_no
    request = VoucherRequest(out_trade_no=out_trade_no, amount_minor=payment.amount, currency=payment.currency,
                             description=payment.description or f"payment {payment.id}",
                             expires_at=payment.expires_at)
    try:
        if previous is not None and previous.status == "unknown":
            settled = await _query_first(gw, payment, name, out_trade_no, now)
            if settled is not None:
                return settled
        result = await gw.call(name, "create_voucher", lambda ch: ch.create_voucher(request))
        _check_voucher(name, request, result)
    except ChannelTimeout as error:
        return await _retry_or_move_on(gw, order, "unknown", str(error), now)
    except ChannelUnavailable as error:
        return await _retry_or_move_on(gw, order, "creating", str(error), now)
    except ChannelRejected as error:
        log.warning("channel refused the voucher; failing over", extra={"channel": name, "code": error.code,
                                                                        "payment_id": payment.id})
        return await _move_on(gw, order, str(error), now)
    except (MalformedResponse, AmountMismatch, BadSignature) as error:
        log.warning("channel answered a voucher request with something we cannot trust; failing over",
                    extra={"channel": name, "payment_id": payment.id, "error": str(error)})
        async with gw.pool.acquire() as conn:
            await record_exception(conn, NewException(
                "bad_channel_answer", f"bad_channel_answer:{name}:{out_trade_no}", f"create_voucher: {error}",
                channel=name, payment_id=payment.id, out_trade_no=out_trade_no, amount=payment.amount,
                currency=payment.currency), now)
        await _close_quietly(gw, name, out_trade_no)
        return await _move_on(gw, order, str(error), now)
    # Stamped when the channel answered, not when the job started: that is when the voucher became ready.
    return await _store_ready(gw, job, payment, name, result, datetime.now(UTC))


def _check_voucher(name: str, request: VoucherRequest, result: VoucherResult) -> None:
    if result.out_trade_no != request.out_trade_no:
        raise MalformedResponse(name, f"voucher for {result.out_trade_no!r}, asked for {request.out_trade_no!r}")
    if not result.pay_url or len(result.pay_url) > PAY_URL_CHARS_MAX or not result.channel_order_id:
        raise MalformedResponse(name, "voucher without a usable pay URL or channel order id")


async def _query_first(gw: Gateway, payment: PaymentFacts, name: str, out_trade_no: str,
                       now: datetime) -> JobResult | None:
    """After a timeout: does the order exist? None means go ahead and (re)create it, idempotently."""
    try:
        status = await gw.query(name, out_trade_no)
    except OrderNotFound:
        return None
    if status.status in (ChannelStatus.SUCCEEDED, ChannelStatus.REFUNDED) and status.channel_txn_id:
        await apply_paid(gw, ChannelPaid(name, out_trade_no, status.amount_minor, status.currency,
                                         status.channel_txn_id, status.paid_at, "query"), now)
        return Done("paid before its voucher was stored")
    if status.status in (ChannelStatus.CLOSED, ChannelStatus.FAILED):
        async with gw.pool.acquire() as conn:
            await set_order_status(conn, name, out_trade_no, "failed", now, f"channel says {status.status}")
        return Retry(0.0, f"{name} order is {status.status}; next channel")
    return None


async def _retry_or_move_on(gw: Gateway, order: ChannelOrder, status: str, error: str, now: datetime) -> JobResult:
    settings = gw.settings
    if order.attempts >= settings.gateway_attempts_per_channel:
        if status == "unknown":  # it may exist: make sure the payer cannot use it
            await _close_quietly(gw, order.channel, order.out_trade_no)
        return await _move_on(gw, order, error, now)
    async with gw.pool.acquire() as conn:
        await set_order_status(conn, order.channel, order.out_trade_no, status, now, error)
    return Retry(backoff_s(order.attempts, settings.gateway_backoff_base_ms, settings.gateway_backoff_max_ms), error)


async def _move_on(gw: Gateway, order: ChannelOrder, error: str, now: datetime) -> JobResult:
    async with gw.pool.acquire() as conn:
        await set_order_status(conn, order.channel, order.out_trade_no, "failed", now, error)
    return Retry(0.0, f"{order.channel} failed: {error}")


async def _close_quietly(gw: Gateway, name: str, out_trade_no: str) -> None:
    """Best effort: an order we abandon must not stay payable. The janitor's close job is the backstop."""
    try:
        await gw.call(name, "close", lambda ch: ch.close(out_trade_no))
    except ChannelError as error:
        log.info("closing an abandoned channel order failed", extra={"channel": name, "error": str(error)})


async def _store_ready(gw: Gateway, job: ClaimedJob, payment: PaymentFacts, name: str, result: VoucherResult,
                       now: datetime) -> JobResult:
    expires_at = min(result.expires_at or payment.expires_at, payment.expires_at)
    next_query_at = now + timedelta(seconds=gw.settings.janitor_query_schedule_s[0])
    async with gw.pool.acquire() as conn, conn.transaction():
        moved = await mark_voucher_ready(conn, payment, name, result.channel_order_id, result.pay_url, expires_at,
                                         next_query_at, now, job.id)
        if moved:
            await write_payment_event(conn, payment.merchant_id, payment.id, "voucher.ready", now)
    if not moved:
        async with gw.pool.acquire() as conn:
            current = await payment_facts(conn, payment.id)
        if current is not None and current.status in ("closed", "failed"):
            # Closed while we were asking: the close job may have run before this order existed.
            await _close_quietly(gw, name, result.out_trade_no)
            async with gw.pool.acquire() as conn:
                await set_order_status(conn, name, result.out_trade_no, "closed", now)
        log.info("payment moved while its voucher was created", extra={"payment_id": payment.id})
        return Done("payment moved on while the voucher was created")
    VOUCHERS.labels("ready").inc()
    return Done(f"ready at {name}", recorded=True)


async def _give_up(gw: Gateway, job: ClaimedJob, payment: PaymentFacts, code: str, now: datetime,
                   detail: str = "") -> JobResult:
    async with gw.pool.acquire() as conn, conn.transaction():
        if code == "unknown_channel":
            await record_exception(conn, NewException(
                "unknown_channel", f"unknown_channel:{payment.id}", detail, channel=payment.channel,
                payment_id=payment.id, amount=payment.amount, currency=payment.currency), now)
        moved = await mark_voucher_failed(conn, payment, code, now)
        if moved:
            await write_payment_event(conn, payment.merchant_id, payment.id, "voucher.failed", now)
        await finish_job(conn, job.id, "done")
    log.warning("voucher failed", extra={"payment_id": payment.id, "code": code, "detail": detail})
    VOUCHERS.labels("failed").inc()
    if moved:  # a failed payment took no money: its counted limit usage goes back
        await release_now(gw.pool, gw.release_usage, payment.id)
    return Done(f"voucher failed: {code}", recorded=True)
