"""What the HTTP layer attaches to a request for its handler: the signing merchant and the raw body."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:  # the record's type only: merchants' handlers import this module
    from engine.merchants.store import MerchantRecord

MERCHANT: web.RequestKey[MerchantRecord] = web.RequestKey("payengine.merchant")
RAW_BODY = web.RequestKey("payengine.raw_body", bytes)


def merchant_of(request: web.Request) -> MerchantRecord:
    """The merchant whose signature the auth middleware verified (every /v1 route)."""
    return request[MERCHANT]


def now_utc() -> datetime:
    return datetime.now(UTC)
