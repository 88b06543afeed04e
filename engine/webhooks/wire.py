"""Wire types of the webhook event endpoints (msgspec Structs; requests frozen and rejecting unknown fields)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from engine.web.wire import ObjectId, Request

EventTypeName = Annotated[str, Meta(min_length=3, max_length=64, pattern="^[a-z_]+\\.[a-z_]+$")]


DeliveryStatus = Literal["pending", "delivered", "dead"]  # an outbox event's delivery


class ListEventsQuery(Request, frozen=True, forbid_unknown_fields=True):
    type: EventTypeName | None = None
    limit: Annotated[int, Meta(ge=1, le=100)] = 10
    starting_after: ObjectId | None = None


class ResendEvent(Request, frozen=True, forbid_unknown_fields=True):
    pass


# ---------------------------------------------------------------- responses


class Event(msgspec.Struct, frozen=True):
    """A webhook event as the merchant can list it; ``data`` is the object exactly as delivered."""

    id: str
    type: str
    created_at: datetime
    data: dict[str, Any]
    delivery_status: DeliveryStatus
    attempts: int  # in the current delivery window (a re-send starts a new one)
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    last_error: str | None
    object: Literal["event"] = "event"


class EventList(msgspec.Struct, frozen=True):
    data: list[Event]
    has_more: bool
    object: Literal["list"] = "list"
