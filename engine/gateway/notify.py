"""POST /channels/{channel}/notify: a channel tells us an order was paid.

Verified by the channel's adapter (signature and replay window) before anything is read; then applied
exactly once by `outcomes.apply_paid`. Answers are in the channel's own format: its ack once the outcome
is durably ours (booked, repeated, or taken for auto-refund), its nack otherwise, so it retries.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from aiohttp import web

from channels.errors import BadSignature, MalformedResponse, StaleNotify
from channels.protocol import ChannelStatus, NotifyAnswer
from engine.errors import NotFound
from engine.gateway.context import Gateway
from engine.gateway.metrics import NOTIFIES
from engine.gateway.outcomes import ChannelPaid, apply_paid
from engine.gateway.store import NewException, record_exception
from engine.services import services_of

log = logging.getLogger(__name__)

GATEWAY = web.AppKey("gateway", Gateway)


def _answer(answer: NotifyAnswer) -> web.Response:
    return web.Response(status=answer.status, body=answer.body, content_type=answer.content_type)


async def notify_handler(request: web.Request) -> web.Response:
    gw = services_of(request).gateway
    name = request.match_info["channel"]
    raw = await request.read()
    now = datetime.now(UTC)
    configured = gw.channels.get(name)
    if configured is None:
        log.warning("notify for an unknown channel refused", extra={"channel": name[:64], "bytes": len(raw)})
        async with gw.pool.acquire() as conn:
            await record_exception(conn, NewException("unknown_channel", f"unknown_channel_notify:{name[:64]}",
                                                      f"notify to /channels/{name[:64]}/notify",
                                                      channel=name[:64]), now)
        NOTIFIES.labels("unknown", "unknown_channel").inc()
        raise NotFound("channel", name[:64], "channel")  # not a channel of ours: our error shape, not its format
    channel = configured.adapter
    try:
        event = channel.verify_notify(request.headers, raw, int(time.time()))
    except (BadSignature, StaleNotify, MalformedResponse) as error:
        log.warning("notify refused", extra={"channel": name, "reason": type(error).__name__, "error": str(error),
                                             "peer": request.remote})
        NOTIFIES.labels(name, "refused_" + type(error).__name__).inc()
        return _answer(channel.notify_nack())
    if event.status not in (ChannelStatus.SUCCEEDED, ChannelStatus.REFUNDED):
        log.info("notify without a payment ignored", extra={"channel": name, "status": event.status.value})
        return _answer(channel.notify_ack())
    verdict = await apply_paid(gw, ChannelPaid(name, event.out_trade_no, event.amount_minor, event.currency,
                                               event.channel_txn_id, event.paid_at, "notify"), now)
    return _answer(channel.notify_ack() if verdict.accepted else channel.notify_nack())
