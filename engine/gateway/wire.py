"""Wire types of the gateway's operator endpoints: exception records and channel health."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

LIST_LIMIT_MAX = 500

# Strings that reach PostgreSQL exclude NUL (a text column cannot hold it).
Filter = Annotated[str, Meta(max_length=64, pattern="^[^\\x00]*$")]


class ExceptionQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    status: Literal["open", "resolved"] | None = None
    kind: Filter | None = None
    payment_id: Filter | None = None
    limit: Annotated[int, Meta(ge=1, le=LIST_LIMIT_MAX)] = 100


class ExceptionResolve(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    resolution: Annotated[str, Meta(min_length=1, max_length=500, pattern="^[^\\x00]*$")]


class ExceptionView(msgspec.Struct, frozen=True):
    id: str
    kind: str
    status: str
    channel: str | None
    payment_id: str | None
    out_trade_no: str | None
    channel_txn_id: str | None
    amount: int | None
    currency: str | None
    detail: str
    occurrences: int
    refund_status: str | None
    out_refund_no: str | None
    refund_txn_no: str | None
    channel_refund_id: str | None
    resolution: str | None
    created_at: datetime
    updated_at: datetime


class ExceptionList(msgspec.Struct, frozen=True):
    data: list[ExceptionView]


class ExceptionResolved(msgspec.Struct, frozen=True):
    id: str
    status: Literal["resolved"]


class ChannelHealthView(msgspec.Struct, frozen=True):
    breaker: str
    samples: int
    success_rate: float | None = None
    p50_latency_ms: float | None = None


class GatewayStatus(msgspec.Struct, frozen=True):
    channels: dict[str, ChannelHealthView]
