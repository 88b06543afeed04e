"""Merchant endpoints for webhook events: list them, and send one again.

GET  /v1/events?type=&limit=&starting_after=   newest first, with delivery status
POST /v1/events/{id}/resend                    queue it for delivery now, with a fresh retry window
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
from aiohttp import web

from engine.errors import NotFound
from engine.http.middleware import RAW_BODY, merchant_of
from engine.payments import wire
from engine.payments.flow import IdemSlot, Outcome
from engine.services import API
from engine.web.decoding import decode_body, decode_query
from engine.web.idempotency import json_response, run_idempotent
from engine.webhooks.store import EventRecord, list_events, requeue_event


def event_view(e: EventRecord) -> wire.Event:
    data: dict[str, Any] = msgspec.json.decode(e.payload)
    return wire.Event(e.id, e.type, e.created_at, data, e.delivery_status,  # type: ignore[arg-type]
                      e.attempts, e.next_attempt_at, e.delivered_at, e.last_error)


async def list_events_handler(request: web.Request) -> web.Response:
    q = decode_query(request.query, wire.ListEventsQuery)
    ctx, merchant = request.app[API], merchant_of(request)
    async with ctx.pool.acquire() as conn:
        page, has_more = await list_events(conn, merchant.id, q.type, q.limit, q.starting_after)
    return json_response(200, msgspec.json.encode(wire.EventList([event_view(e) for e in page], has_more)))


async def resend_event_handler(request: web.Request) -> web.Response:
    ctx, merchant, raw = request.app[API], merchant_of(request), request[RAW_BODY]
    decode_body(raw, wire.ResendEvent)
    event_id = request.match_info["id"]

    async def resend(slot: IdemSlot | None) -> Outcome:
        async with ctx.pool.acquire() as conn:
            event = await requeue_event(conn, merchant.id, event_id, datetime.now(UTC))
        if event is None:
            raise NotFound("event", event_id)
        return Outcome(200, msgspec.json.encode(event_view(event)), False)

    return await run_idempotent(request, ctx, merchant.id, raw, resend)
