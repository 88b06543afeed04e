"""What the HTTP layer attaches to a request for its handler: the signing merchant and the raw body."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from engine.merchants.store import MerchantRecord

MERCHANT = web.RequestKey("payengine.merchant", MerchantRecord)
RAW_BODY = web.RequestKey("payengine.raw_body", bytes)


def merchant_of(request: web.Request) -> MerchantRecord:
    """The merchant whose signature the auth middleware verified (every /v1 route)."""
    return request[MERCHANT]


def now_utc() -> datetime:
    return datetime.now(UTC)
