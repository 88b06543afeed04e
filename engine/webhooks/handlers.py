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
from engine.idempotency.records import IdemSlot, Outcome
from engine.services import services_of
from engine.web.decoding import decode_body, decode_query
from engine.web.idempotency import json_response, run_idempotent
from engine.web.request import RAW_BODY, merchant_of
from engine.web.route import POST_ERRORS, RouteSpec
from engine.webhooks import wire as webhook_wire
from engine.webhooks.store import EventRecord, list_events, requeue_event


def event_view(e: EventRecord) -> webhook_wire.Event:
    data: dict[str, Any] = msgspec.json.decode(e.payload)
    return webhook_wire.Event(e.id, e.type, e.created_at, data, e.delivery_status,
                      e.attempts, e.next_attempt_at, e.delivered_at, e.last_error)


async def list_events_handler(request: web.Request) -> web.Response:
    q = decode_query(request.query, webhook_wire.ListEventsQuery)
    ctx, merchant = services_of(request), merchant_of(request)
    async with ctx.pool.acquire() as conn:
        page, has_more = await list_events(conn, merchant.id, q.type, q.limit, q.starting_after)
    return json_response(200, msgspec.json.encode(webhook_wire.EventList([event_view(e) for e in page], has_more)))


async def resend_event_handler(request: web.Request) -> web.Response:
    ctx, merchant, raw = services_of(request), merchant_of(request), request[RAW_BODY]
    decode_body(raw, webhook_wire.ResendEvent)
    event_id = request.match_info["id"]

    async def resend(slot: IdemSlot | None) -> Outcome:
        async with ctx.pool.acquire() as conn:
            event = await requeue_event(conn, merchant.id, event_id, datetime.now(UTC))
        if event is None:
            raise NotFound("event", event_id)
        return Outcome(200, msgspec.json.encode(event_view(event)), False)

    return await run_idempotent(request, ctx, merchant.id, raw, resend)


ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("GET", "/v1/events", list_events_handler, "Webhook events, newest first",
              webhook_wire.EventList, query=webhook_wire.ListEventsQuery),
    RouteSpec("POST", "/v1/events/{id}/resend", resend_event_handler,
              "Deliver a webhook event again (fresh retry window)", webhook_wire.Event, 200, webhook_wire.ResendEvent,
              errors=POST_ERRORS),
)
